"""The store, the debounced controller and last-accepted-version semantics."""
from __future__ import annotations

import asyncio

from translators import type_urls
from translators.node import NodeInfo
from xds_server.cache import SnapshotCache
from xds_server.controller import Controller
from xds_server.sources.documents import parse_text
from xds_server.store import ConfigStore
from tests.configs import GATEWAY_AND_SERVICE, ROUTE

GATEWAY = NodeInfo.of(labels={"istio": "ingressgateway"})

BASE = GATEWAY_AND_SERVICE

VS = ROUTE


def _load(store: ConfigStore, origin: str, text: str) -> None:
    objects, diags = parse_text(text, file=origin)
    store.replace(origin, objects, diags)


def _prefixes(cache: SnapshotCache) -> list[str]:
    route = cache.get(GATEWAY).get(type_urls.ROUTE)["http.8080"].message
    return [r.match.prefix for vh in route.virtual_hosts for r in vh.routes]


def test_broken_update_keeps_last_accepted_version() -> None:
    async def scenario() -> None:
        store, cache = ConfigStore(), SnapshotCache()
        controller = Controller(store=store, cache=cache)
        _load(store, "base.yaml", BASE)
        _load(store, "vs.yaml", VS % ("/a.A/", ""))
        await controller.step()
        assert _prefixes(cache) == ["/a.A/"]
        _load(store, "vs.yaml", VS % ("/b.B/", ", timeout: forever"))
        await controller.step()
        assert _prefixes(cache) == ["/a.A/"], "the last good version must keep serving"
        messages = [d.format() for d in controller.diagnostics]
        assert "vs.yaml: VirtualService/default/vs: spec.http[0].timeout: must be a duration such as '1s' or '100ms', got 'forever'" in messages
        assert any("last accepted version keeps serving" in m for m in messages)
        _load(store, "vs.yaml", VS % ("/c.C/", ""))
        await controller.step()
        assert _prefixes(cache) == ["/c.C/"]
        assert not [d for d in controller.diagnostics if d.severity.value == "error"]

    asyncio.run(scenario())


def test_debounce_coalesces_a_burst() -> None:
    async def scenario() -> None:
        store, cache = ConfigStore(), SnapshotCache()
        controller = Controller(store=store, cache=cache, quiet=0.1, max_delay=1.0)
        _load(store, "base.yaml", BASE)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop_event=stop))
        try:
            await asyncio.wait_for(_until(lambda: controller.translations == 1), 5)
            for i in range(20):  # a burst: 20 changes 10 ms apart
                _load(store, "vs.yaml", VS % (f"/s{i}.S/", ""))
                await asyncio.sleep(0.01)
            await asyncio.wait_for(_until(lambda: controller.translations >= 2 and _prefixes(cache) == ["/s19.S/"]), 5)
            await asyncio.sleep(0.3)
            # the first change after a quiet spell goes out at once (leading edge); the rest of the burst
            # is coalesced into one more translation
            assert controller.translations <= 3, "a burst of changes must be coalesced"
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def test_a_single_edit_after_a_quiet_spell_is_not_held_for_the_quiet_period() -> None:
    async def scenario() -> None:
        store, cache = ConfigStore(), SnapshotCache()
        controller = Controller(store=store, cache=cache, quiet=0.5, max_delay=2.0, leading=0.01)
        _load(store, "base.yaml", BASE)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop_event=stop))
        try:
            await asyncio.wait_for(_until(lambda: controller.translations == 1), 5)
            await asyncio.sleep(0.6)  # quiet
            loop = asyncio.get_running_loop()
            start = loop.time()
            _load(store, "vs.yaml", VS % ("/one.Edit/", ""))
            await asyncio.wait_for(_until(lambda: _prefixes(cache) == ["/one.Edit/"]), 5)
            assert loop.time() - start < 0.3, "a lone edit waits `leading`, not the 0.5 s quiet period"
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def test_debounce_max_delay_bounds_a_steady_stream() -> None:
    async def scenario() -> None:
        store, cache = ConfigStore(), SnapshotCache()
        controller = Controller(store=store, cache=cache, quiet=0.2, max_delay=0.5)
        _load(store, "base.yaml", BASE)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop_event=stop))
        try:
            await asyncio.wait_for(_until(lambda: controller.translations == 1), 5)
            loop = asyncio.get_running_loop()
            start = loop.time()
            i = 0
            while controller.translations < 2 and loop.time() - start < 3:  # changes every 50 ms never go quiet
                _load(store, "vs.yaml", VS % (f"/s{i}.S/", ""))
                i += 1
                await asyncio.sleep(0.05)
            assert controller.translations >= 2
            assert loop.time() - start < 1.5, "max_delay must force a translation during a steady stream"
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


def test_duplicate_objects_first_loaded_origin_keeps_the_object_and_both_files_are_warned() -> None:
    store = ConfigStore()
    _load(store, "b.yaml", VS % ("/b/", ""))
    _load(store, "a.yaml", VS % ("/a/", ""))  # sorts first, but was loaded later: it cannot take vs over
    objects, diags = store.objects()
    assert [o.source for o in objects] == ["b.yaml"]
    assert sorted(d.format() for d in diags) == [
        "a.yaml: VirtualService/default/vs: metadata.name: warning: also defined in b.yaml, which was loaded "
        "first and keeps it; this definition is ignored",
        "b.yaml: VirtualService/default/vs: metadata.name: warning: also defined in a.yaml; this definition "
        "(loaded first) wins"]
    # the owner going away hands the object to the other file
    store.remove("b.yaml")
    objects, diags = store.objects()
    assert [o.source for o in objects] == ["a.yaml"] and diags == []


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def test_endpoint_only_change_reuses_listeners_and_routes() -> None:
    """The EDS fast path: an EndpointSlice change rebuilds endpoints, not LDS/RDS."""
    from translators.pipeline import translate
    from translators import type_urls as T

    base = BASE + "---" + VS % ("/a.A/", "") + """
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {ports: [{name: grpc, port: 50051}]}
"""
    slice_v1 = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}
ports: [{name: grpc, port: 9000}]
endpoints:
- {addresses: [10.0.0.1], conditions: {ready: true}, zone: zone-a}
- {addresses: [10.0.0.2], conditions: {ready: false}}
"""
    objects, _ = parse_text(base, file="b.yaml")
    slice_objects, _ = parse_text(slice_v1, file="s.yaml")
    first = translate(objects + slice_objects)
    own1 = first.for_node(GATEWAY)
    cla = own1[T.ENDPOINT]["outbound|50051||api.default.svc.cluster.local"]
    [locality] = cla.endpoints
    assert [e.endpoint.address.socket_address.address for e in locality.lb_endpoints] == ["10.0.0.1"]  # ready only
    assert locality.locality.zone == "zone-a"

    scaled, _ = parse_text(slice_v1.replace("ready: false", "ready: true"), file="s.yaml")
    second = translate(objects + scaled, accepted=first.accepted, previous=first)
    own2 = second.for_node(GATEWAY)
    assert own2[T.ROUTE]["http.8080"] is own1[T.ROUTE]["http.8080"]
    assert own2[T.LISTENER]["0.0.0.0_8080"] is own1[T.LISTENER]["0.0.0.0_8080"]
    assert own2[T.CLUSTER]["outbound|50051||svc.default.svc.cluster.local"] is \
        own1[T.CLUSTER]["outbound|50051||svc.default.svc.cluster.local"]
    localities = own2[T.ENDPOINT]["outbound|50051||api.default.svc.cluster.local"].endpoints
    assert sorted(e.endpoint.address.socket_address.address for l in localities for e in l.lb_endpoints) == [
        "10.0.0.1", "10.0.0.2"]
