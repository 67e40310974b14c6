"""Watch scenarios as tables of events: the real ``kubernetes`` client against a scripted API server.

Each row: what the API server answers to successive lists and watches, and what
the config store must hold afterwards.
"""
from __future__ import annotations

import asyncio
import logging

import pytest
from kubernetes import client as k8s_client

from k8s_watch.kinds import KINDS, WatchedKind
from k8s_watch.source import KubernetesSource
from tests.fake_apiserver import FakeApiServer, Script, bookmark, event, obj
from xds_server.store import ConfigStore

VS = next(k for k in KINDS if k.kind == "VirtualService")
GROUPS = {"networking.istio.io": [("v1", ["gateways", "virtualservices", "destinationrules", "serviceentries"])]}


def vs(name: str, rv: str, prefix: str = "/a/") -> dict:
    return obj("VirtualService", name, rv=rv, spec={"hosts": ["*"], "http": [
        {"match": [{"uri": {"prefix": prefix}}], "route": [{"destination": {"host": "x", "port": {"number": 1}}}]}]})


SCENARIOS = [
    # name, lists, watches, expected {name: prefix}, expected watch resourceVersions, relists
    ("initial list",
     [("10", [vs("a", "5"), vs("b", "6")])], [[]],
     {"a": "/a/", "b": "/a/"}, ["10"], 0),
    ("add, modify and delete events",
     [("10", [vs("a", "5")])],
     [[event("ADDED", vs("b", "11")), event("MODIFIED", vs("a", "12", prefix="/changed/")),
       event("DELETED", vs("b", "13"))]],
     {"a": "/changed/"}, ["10"], 0),
    ("410 mid-stream, then a relist that reveals a deletion",
     [("10", [vs("a", "5"), vs("b", "6")]), ("20", [vs("a", "5")])],
     [[event("ADDED", vs("c", "11")), {"type": "ERROR", "object": {"kind": "Status", "code": 410}}], []],
     {"a": "/a/"}, ["10", "20"], 1),
    ("410 as the watch's HTTP status",
     [("10", [vs("a", "5")]), ("30", [vs("d", "29")])], [[410], []],
     {"d": "/a/"}, ["10", "30"], 1),
    ("a bookmark advances the resourceVersion used after a drop",
     [("10", [vs("a", "5")])], [[bookmark("50"), "drop"], []],
     {"a": "/a/"}, ["10", "50"], 0),
    ("a dropped connection resumes from the last event",
     [("10", [vs("a", "5")])], [[event("ADDED", vs("b", "11")), "drop"], [event("ADDED", vs("c", "12"))]],
     {"a": "/a/", "b": "/a/", "c": "/a/"}, ["10", "11"], 0),
]


def _state(store: ConfigStore) -> dict[str, str]:
    objects, _ = store.objects()
    return {o.name: o.spec["http"][0]["match"][0]["uri"]["prefix"] for o in objects if o.kind == "VirtualService"}


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _source(server: FakeApiServer, store: ConfigStore, kinds: list[WatchedKind]) -> KubernetesSource:
    api = k8s_client.ApiClient(k8s_client.Configuration(host=server.url))
    source = KubernetesSource(store=store, api=api, kinds=kinds, watch_timeout=5)
    for r in source.reflectors:  # fast, deterministic backoff for tests
        r.backoff.base = 0.05
        r.backoff.rng.seed(1)
    return source


@pytest.mark.parametrize("name,lists,watches,expected,rvs,relists", SCENARIOS, ids=[s[0] for s in SCENARIOS])
async def test_watch_scenario(name, lists, watches, expected, rvs, relists) -> None:
    with FakeApiServer(groups=GROUPS, scripts={"virtualservices": Script(lists=lists, watches=watches)}) as server:
        store = ConfigStore()
        source = _source(server, store, [VS])
        source.start()
        try:
            await asyncio.wait_for(source.ready_event.wait(), 10)
            await _until(lambda: _state(store) == expected and len(server.watch_requests("virtualservices")) >= len(rvs))
            watches_made = server.watch_requests("virtualservices")
            assert [w.get("resourceVersion") for w in watches_made[:len(rvs)]] == rvs
            assert all(w.get("allowWatchBookmarks") == "true" for w in watches_made)
            assert source.reflectors[0].relists == relists
        finally:
            source.stop()


async def test_kind_without_crd_is_skipped_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    grpcroute = next(k for k in KINDS if k.kind == "GRPCRoute")
    with FakeApiServer(groups=GROUPS, scripts={"virtualservices": Script(lists=[("1", [vs("a", "1")])])}) as server:
        store = ConfigStore()
        source = _source(server, store, [VS, grpcroute])
        with caplog.at_level(logging.INFO, logger="k8s_watch.reflector"):
            source.start()
            try:
                await asyncio.wait_for(source.ready_event.wait(), 10)
                await asyncio.sleep(0.5)
            finally:
                source.stop()
        lines = [r.getMessage() for r in caplog.records if "GRPCRoute" in r.getMessage()]
        assert len(lines) == 1 and "not installed" in lines[0]
        assert source.installed == {"VirtualService.networking.istio.io": True,
                                    "GRPCRoute.gateway.networking.k8s.io": False}
        assert [p for p, _ in server.requests if "grpcroutes" in p] == []


async def test_not_ready_until_every_kind_has_listed() -> None:
    dr = next(k for k in KINDS if k.kind == "DestinationRule")
    slow = Script(lists=[("1", [])])
    with FakeApiServer(groups=GROUPS, scripts={"virtualservices": Script(), "destinationrules": slow}) as server:
        store = ConfigStore()
        source = _source(server, store, [VS, dr])
        assert not source.ready
        source.start()
        try:
            await asyncio.wait_for(source.ready_event.wait(), 10)
            assert source.ready
        finally:
            source.stop()


def test_backoff_is_jittered_and_capped() -> None:
    from k8s_watch.reflector import Backoff
    import random
    b = Backoff(base=0.5, cap=4.0, rng=random.Random(7))
    delays = [b.next() for _ in range(8)]
    assert all(0.25 <= d < 6.0 for d in delays)
    assert delays[-1] <= 6.0 and len(set(round(d, 6) for d in delays)) == 8
    b.reset()
    assert b.next() < 0.75
