"""An unexpected exception on one object is an error on that object; the rest translates and serves.

The parsers are made to fail on purpose (a stand-in for a bug we have not found yet): the failing
object gets ``internal error translating kind/ns/name``, every other object translates, and the
server's ``/debug/diagnostics`` and ``/readyz`` say what happened while the last good snapshot keeps
serving.
"""
from __future__ import annotations

import asyncio

import pytest

from tests.test_ads_protocol import CLUSTERS, config
from translators import engine
from translators.pipeline import translate
from xds_server.cache import SnapshotCache
from xds_server.controller import Controller
from xds_server.sources.documents import parse_text
from xds_server.store import ConfigStore

EXTRA = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: boom, namespace: default}
spec:
  hosts: [boom.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: greeter, subset: v1}}]}]
"""


@pytest.fixture
def exploding_virtual_service(monkeypatch):
    real = engine.parse_virtual_service

    def parse(obj, rep, **kw):  # noqa: ANN001, ANN202
        if obj.name == "boom":
            raise ZeroDivisionError("a bug")
        return real(obj, rep, **kw)
    monkeypatch.setattr(engine, "parse_virtual_service", parse)


def test_an_exception_on_one_object_is_an_error_on_it_and_the_rest_translates(exploding_virtual_service) -> None:
    objects, _ = parse_text(config() + EXTRA, file="c.yaml")
    t = translate(objects)
    errors = [d for d in t.diagnostics if d.code == "internal"]
    assert [d.format() for d in errors] == [
        "c.yaml: VirtualService/default/boom: internal error translating VirtualService/default/boom: "
        "ZeroDivisionError: a bug"]
    assert [hr.ref.name for hr in t.model.http_routes] == ["greeter"]
    assert sorted(c.name for c in t.model.clusters) == CLUSTERS


def test_a_failing_translation_keeps_the_last_snapshot_and_says_so(monkeypatch) -> None:
    async def scenario() -> None:
        store, cache = ConfigStore(), SnapshotCache()
        controller = Controller(store=store, cache=cache, quiet=0.01, max_delay=0.05)
        objects, _ = parse_text(config(), file="c.yaml")
        store.replace("c.yaml", objects)
        await controller.step()
        assert cache.ready and controller.diagnostics == []
        good = cache.generation

        def broken(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            raise RuntimeError("translator bug")
        monkeypatch.setattr("xds_server.controller.translate", broken)
        objects, _ = parse_text(config(prefix="/changed.Greeter/"), file="c.yaml")
        store.replace("c.yaml", objects)
        await controller.step()
        assert cache.ready and cache.generation == good, "the last good snapshot keeps serving"
        [failure] = [d for d in controller.diagnostics if d.code == "internal"]
        assert "translation failed: RuntimeError: translator bug; the last good snapshot keeps serving" \
            in failure.message
    asyncio.run(scenario())


def test_a_failing_first_translation_leaves_the_server_not_ready(monkeypatch) -> None:
    async def scenario() -> None:
        store, cache = ConfigStore(), SnapshotCache()
        controller = Controller(store=store, cache=cache)
        monkeypatch.setattr("xds_server.controller.translate", lambda *a, **kw: 1 / 0)
        store.replace("c.yaml", parse_text(config(), file="c.yaml")[0])
        await controller.step()
        assert not cache.ready, "/readyz stays 503: no snapshot was ever built"
        assert "nothing is served until a translation succeeds" in controller.diagnostics[0].message
    asyncio.run(scenario())
