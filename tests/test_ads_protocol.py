"""The ADS server over real gRPC: a scripted client drives ``StreamAggregatedResources``.

The server runs in-process (``xds_server.server.serve``) on free ports with a
config directory the test owns.  Each wait is bounded: 5 s for what must
happen, 0.5 s for what must not.
"""
from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from google.rpc import status_pb2

from tests.configs import GATEWAY_AND_SERVICE, ROUTE
from tests.harness import free_port
from translators import type_urls as T
from translators.pipeline import translate
from xds_server.ads import AdsServer
from xds_server.cache import SnapshotCache
from xds_server.server import ServeOptions, serve
from xds_server.sources.documents import parse_text

CONFIG = GATEWAY_AND_SERVICE

ROUTES = ROUTE % ("/%s/", "")

MUST = 5.0
MUST_NOT = 0.5


def node(labels: dict[str, str] | None = None) -> base_pb2.Node:
    meta = struct_pb2.Struct()
    meta.update({"labels": labels or {"istio": "ingressgateway"}})
    return base_pb2.Node(id="test-node", metadata=meta)


class Stream:
    """A scripted ADS client on one stream."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        self.sent_node = False
        self._pending: asyncio.Future | None = None

    async def send(self, type_url: str, *, names=(), version: str = "", nonce: str = "", error: str | None = None) -> None:
        req = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names), version_info=version,
                                             response_nonce=nonce)
        if not self.sent_node:
            req.node.CopyFrom(node())
            self.sent_node = True
        if error is not None:
            req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.call.write(req)

    async def _next(self, timeout: float) -> discovery_pb2.DiscoveryResponse | None:
        """The next response, or None after ``timeout``; a pending read is kept, never cancelled
        (cancelling a read would cancel the whole gRPC call)."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(self.call.read())
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            return None
        fut, self._pending = self._pending, None
        return fut.result()

    async def recv(self, timeout: float = MUST) -> discovery_pb2.DiscoveryResponse:
        got = await self._next(timeout)
        assert got is not None, f"no response within {timeout}s"
        return got

    async def nothing(self, timeout: float = MUST_NOT) -> None:
        got = await self._next(timeout)
        assert got is None, f"unexpected response {got.type_url} {got.version_info}"

    async def ack(self, resp: discovery_pb2.DiscoveryResponse, names=()) -> None:
        await self.send(resp.type_url, names=names, version=resp.version_info, nonce=resp.nonce)


def names_of(resp: discovery_pb2.DiscoveryResponse) -> list[str]:
    from envoy.config.cluster.v3 import cluster_pb2
    from envoy.config.endpoint.v3 import endpoint_pb2
    from envoy.config.listener.v3 import listener_pb2
    from envoy.config.route.v3 import route_pb2
    cls = {T.CLUSTER: cluster_pb2.Cluster, T.LISTENER: listener_pb2.Listener, T.ROUTE: route_pb2.RouteConfiguration,
           T.ENDPOINT: endpoint_pb2.ClusterLoadAssignment}[resp.type_url]
    out = []
    for any_msg in resp.resources:
        msg = cls()
        any_msg.Unpack(msg)
        out.append(getattr(msg, "name", "") or getattr(msg, "cluster_name", ""))
    return out


@pytest.fixture
async def server(tmp_path: Path):
    (tmp_path / "base.yaml").write_text(CONFIG)
    (tmp_path / "routes.yaml").write_text(ROUTES % "a.A")
    options = ServeOptions(config_dirs=[tmp_path], xds_address=f"127.0.0.1:{free_port()}",
                           admin_address=f"127.0.0.1:{free_port()}", debounce_quiet=0.02, debounce_max=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(options, stop_event=stop))
    channel = grpc.aio.insecure_channel(options.xds_address)
    await asyncio.wait_for(channel.channel_ready(), MUST)
    yield channel, tmp_path, options
    await channel.close()
    stop.set()
    await asyncio.wait_for(task, MUST)


async def admin(options: ServeOptions, path: str) -> dict:
    """GET an admin endpoint off the event loop (the server runs on this loop)."""
    def get() -> dict:
        with urllib.request.urlopen(f"http://{options.admin_address}/debug/{path}", timeout=2) as r:
            return json.loads(r.read())
    return await asyncio.to_thread(get)


async def subscribe_all(s: Stream) -> dict[str, discovery_pb2.DiscoveryResponse]:
    got = {}
    await s.send(T.CLUSTER)
    got[T.CLUSTER] = await s.recv()
    await s.ack(got[T.CLUSTER])
    await s.send(T.ENDPOINT, names=names_of(got[T.CLUSTER]))
    got[T.ENDPOINT] = await s.recv()
    await s.ack(got[T.ENDPOINT], names=names_of(got[T.CLUSTER]))
    await s.send(T.LISTENER)
    got[T.LISTENER] = await s.recv()
    await s.ack(got[T.LISTENER])
    await s.send(T.ROUTE, names=["http.8080"])
    got[T.ROUTE] = await s.recv()
    await s.ack(got[T.ROUTE], names=["http.8080"])
    return got


async def test_wildcard_and_named_subscriptions(server) -> None:
    channel, _, _ = server
    s = Stream(channel)
    got = await subscribe_all(s)
    assert names_of(got[T.CLUSTER]) == ["outbound|50051||svc.default.svc.cluster.local"]
    assert names_of(got[T.LISTENER]) == ["0.0.0.0_8080"]
    assert names_of(got[T.ROUTE]) == ["http.8080"]
    for resp in got.values():
        assert resp.version_info and resp.nonce
    # ACKed everything: nothing more comes
    await s.nothing()


async def test_named_request_gets_only_named_resources(server) -> None:
    channel, _, _ = server
    s = Stream(channel)
    await s.send(T.ROUTE, names=["http.8080", "does-not-exist"])
    resp = await s.recv()
    assert names_of(resp) == ["http.8080"]


async def test_nack_is_recorded_and_never_resent(server) -> None:
    channel, _, options = server
    s = Stream(channel)
    await s.send(T.ROUTE, names=["http.8080"])
    first = await s.recv()
    await s.send(T.ROUTE, names=["http.8080"], version="", nonce=first.nonce, error="route is bad")
    await s.nothing(1.0)
    nacks = (await admin(options, "nacks"))["nacks"]
    assert [(n["type"], n["version"], n["message"]) for n in nacks] == [("RDS", first.version_info, "route is bad")]
    clients = (await admin(options, "clients"))["clients"]
    assert clients[0]["types"]["RDS"]["nacked"] == first.version_info


async def test_stale_nonce_is_ignored(server) -> None:
    channel, _, _ = server
    s = Stream(channel)
    await s.send(T.ROUTE, names=["http.8080"])
    first = await s.recv()
    await s.send(T.ROUTE, names=["http.8080", "other"], version="", nonce="not-" + first.nonce)
    await s.nothing()


async def test_file_change_pushes_in_make_before_break_order(server) -> None:
    """A change that touches all four types: a new port (LDS), its routes (RDS), a new service (CDS, EDS)."""
    channel, config, _ = server
    s = Stream(channel)
    got = await subscribe_all(s)
    eds_names = names_of(got[T.CLUSTER])
    changed = (CONFIG.replace('hosts: ["*"]}]', 'hosts: ["*"]}, {port: {number: 9090, name: grpc2, protocol: GRPC}, '
                              'hosts: ["*"]}]')                                   # LDS: a new listener
               .replace("endpoints: [{address: 127.0.0.1}]", "endpoints: [{address: 127.0.0.2}]")  # EDS
               + "---" + ROUTES % "changed.C"                                      # RDS
               + "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc}\n"
                 "spec: {host: svc, trafficPolicy: {loadBalancer: {simple: RANDOM}}}\n")  # CDS
    tmp = config / "all.tmp"
    tmp.write_text(changed)  # one atomic write; its VirtualService "vs" wins over routes.yaml's (sort order)
    tmp.rename(config / "base.yaml")
    order = []
    while len(order) < 4:
        resp = await s.recv()
        order.append(resp.type_url)
        await s.ack(resp, names={T.CLUSTER: (), T.LISTENER: (), T.ENDPOINT: eds_names,
                                 T.ROUTE: ["http.8080"]}[resp.type_url])
    assert order == [T.CLUSTER, T.ENDPOINT, T.LISTENER, T.ROUTE], [T.short(t) for t in order]


async def test_route_edit_pushes_rds_only(server) -> None:
    channel, config, _ = server
    s = Stream(channel)
    got = await subscribe_all(s)
    (config / "routes.yaml").write_text(ROUTES % "c.C")
    resp = await s.recv()
    assert resp.type_url == T.ROUTE and resp.version_info != got[T.ROUTE].version_info
    await s.ack(resp, names=["http.8080"])
    await s.nothing()


async def test_reconnect_with_previous_version_gets_a_full_response(server) -> None:
    channel, _, _ = server
    s = Stream(channel)
    first = await subscribe_all(s)
    s.call.cancel()
    again = Stream(channel)
    await again.send(T.CLUSTER, version=first[T.CLUSTER].version_info)
    resp = await again.recv()
    assert names_of(resp) == names_of(first[T.CLUSTER]) and resp.version_info == first[T.CLUSTER].version_info


async def test_client_waits_for_the_first_snapshot_and_never_gets_an_empty_config() -> None:
    cache = SnapshotCache()
    ads = AdsServer(cache=cache)
    grpc_server = grpc.aio.server()
    grpc_server.add_generic_rpc_handlers((ads.handler(),))
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            s = Stream(channel)
            await s.send(T.LISTENER)
            await s.send(T.CLUSTER)
            await s.nothing(0.5)
            objects, _ = parse_text(CONFIG + "---" + ROUTES % "a.A", file="c.yaml")
            cache.publish(translate(objects), generation=1)
            got = {}
            for _ in range(2):
                resp = await s.recv()
                got[resp.type_url] = names_of(resp)
            assert got == {T.LISTENER: ["0.0.0.0_8080"], T.CLUSTER: ["outbound|50051||svc.default.svc.cluster.local"]}
    finally:
        await grpc_server.stop(0)
