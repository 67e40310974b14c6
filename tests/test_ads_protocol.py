"""The ADS server over real gRPC: a scripted client drives ``StreamAggregatedResources``.

The server runs in-process (``xds_server.server.serve``) on free ports, watching
a config directory the test owns (a Gateway, ServiceEntry, DestinationRule and
VirtualService in one file, rewritten atomically to change it).  Each wait is
bounded: :data:`MUST` seconds for what must happen, :data:`MUST_NOT` seconds
for what must not.
"""
from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from google.rpc import status_pb2

from tests.harness import free_port
from translators import type_urls as T
from translators.pipeline import translate
from xds_server.ads import AdsServer
from xds_server.cache import SnapshotCache
from xds_server.server import ServeOptions, serve
from xds_server.sources.documents import parse_text

MUST = 5.0
MUST_NOT = 0.5

HOST = "greeter.default.svc.cluster.local"
DEFAULT, V1, V2 = (f"outbound|50051|{subset}|{HOST}" for subset in ("", "v1", "v2"))
CLUSTERS = sorted([DEFAULT, V1, V2])
LISTENER = "0.0.0.0_8080"
ROUTE_NAME = "http.8080"


def config(*, prefix: str = "/helloworld.Greeter/", lb: str = "ROUND_ROBIN", v2_port: int = 40002,
           extra_port: bool = False) -> str:
    """Gateway + ServiceEntry + DestinationRule + VirtualService; each keyword changes one xDS type:
    ``prefix`` RDS, ``lb`` CDS, ``v2_port`` EDS, ``extra_port`` LDS."""
    extra = "\n  - port: {number: 9090, name: grpc2, protocol: GRPC}\n    hosts: [\"*\"]" if extra_port else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 8080, name: grpc, protocol: GRPC}}
    hosts: ["*"]{extra}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: 40001}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {v2_port}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: greeter, namespace: default}}
spec:
  host: greeter
  trafficPolicy: {{loadBalancer: {{simple: {lb}}}}}
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{{uri: {{prefix: {prefix}}}}}]
    route:
    - destination: {{host: greeter, subset: v1}}
      weight: 80
    - destination: {{host: greeter, subset: v2}}
      weight: 20
"""


def write_config(directory: Path, text: str) -> None:
    """Replace the watched config file in one atomic step (the ``.tmp`` suffix is not watched)."""
    tmp = directory / "config.tmp"
    tmp.write_text(text)
    tmp.replace(directory / "config.yaml")


def node() -> base_pb2.Node:
    meta = struct_pb2.Struct()
    meta.update({"labels": {"istio": "ingressgateway"}})
    return base_pb2.Node(id="test-node", metadata=meta)


_MESSAGES = {T.CLUSTER: cluster_pb2.Cluster, T.LISTENER: listener_pb2.Listener,
             T.ROUTE: route_pb2.RouteConfiguration, T.ENDPOINT: endpoint_pb2.ClusterLoadAssignment}


def decode(resp: discovery_pb2.DiscoveryResponse) -> list:
    out = []
    for any_msg in resp.resources:
        msg = _MESSAGES[resp.type_url]()
        assert any_msg.Unpack(msg), any_msg.type_url
        out.append(msg)
    return out


def names_of(resp: discovery_pb2.DiscoveryResponse) -> list[str]:
    return sorted(m.cluster_name if resp.type_url == T.ENDPOINT else m.name for m in decode(resp))


class Stream:
    """A scripted ADS client on one stream; the first request carries the node."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        self.sent_node = False
        self._pending: asyncio.Future | None = None

    async def send(self, type_url: str, *, names=(), version: str = "", nonce: str = "",
                   error: str | None = None) -> None:
        req = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names), version_info=version,
                                             response_nonce=nonce)
        if not self.sent_node:
            req.node.CopyFrom(node())
            self.sent_node = True
        if error is not None:
            req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await asyncio.wait_for(self.call.write(req), MUST)

    async def _next(self, timeout: float) -> discovery_pb2.DiscoveryResponse | None:
        """The next response, or None after ``timeout``.  A pending read is kept for the next call,
        never cancelled (cancelling a read would cancel the whole gRPC call)."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(self.call.read())
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            return None
        fut, self._pending = self._pending, None
        got = fut.result()
        assert got is not grpc.aio.EOF, f"stream ended: {await self.call.code()} {await self.call.details()}"
        return got

    async def recv(self, timeout: float = MUST) -> discovery_pb2.DiscoveryResponse:
        got = await self._next(timeout)
        assert got is not None, f"no response within {timeout}s"
        return got

    async def nothing(self, timeout: float = MUST_NOT) -> None:
        got = await self._next(timeout)
        assert got is None, f"unexpected response {T.short(got.type_url)} {got.version_info} {names_of(got)}"

    async def ack(self, resp: discovery_pb2.DiscoveryResponse, names=()) -> None:
        await self.send(resp.type_url, names=names, version=resp.version_info, nonce=resp.nonce)

    async def nack(self, resp: discovery_pb2.DiscoveryResponse, message: str, names=(), version: str = "") -> None:
        await self.send(resp.type_url, names=names, version=version, nonce=resp.nonce, error=message)


#: what a fully subscribed stream asks for, per type (LDS/CDS wildcard)
SUBSCRIPTION = {T.CLUSTER: (), T.ENDPOINT: tuple(CLUSTERS), T.LISTENER: (), T.ROUTE: (ROUTE_NAME,)}


async def subscribe_all(s: Stream) -> dict[str, discovery_pb2.DiscoveryResponse]:
    """Subscribe to CDS, EDS, LDS, RDS in Envoy's order, ACKing each response."""
    got = {}
    for type_url in T.PUSH_ORDER[:4]:
        await s.send(type_url, names=SUBSCRIPTION[type_url])
        got[type_url] = await s.recv()
        assert got[type_url].type_url == type_url
        await s.ack(got[type_url], names=SUBSCRIPTION[type_url])
    return got


@pytest.fixture
async def server(tmp_path: Path, request: pytest.FixtureRequest):
    """``(channel, config dir, options)`` of a running in-process server.  An ``indirect`` parameter
    ``(vhds, config text)`` turns VHDS for Delta Envoys on (off by default, so RDS carries the virtual hosts
    these tests look at) and starts from that config."""
    vhds, text = getattr(request, "param", (False, config()))
    write_config(tmp_path, text)
    options = ServeOptions(config_dirs=[tmp_path], xds_address=f"127.0.0.1:{free_port()}",
                           admin_address=f"127.0.0.1:{free_port()}", debounce_quiet=0.02, debounce_max=0.2,
                           vhds=vhds)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(options, stop_event=stop))
    channel = grpc.aio.insecure_channel(options.xds_address)
    try:
        await asyncio.wait_for(channel.channel_ready(), MUST)
        yield channel, tmp_path, options
    finally:
        await channel.close()
        stop.set()
        await asyncio.wait_for(task, MUST)


async def admin(options: ServeOptions, path: str) -> dict:
    """GET ``/debug/<path>`` off the event loop (the server runs on this loop)."""
    def get() -> dict:
        with urllib.request.urlopen(f"http://{options.admin_address}/debug/{path}", timeout=MUST) as r:
            return json.loads(r.read())
    return await asyncio.wait_for(asyncio.to_thread(get), MUST)


# ---------------------------------------------------------------------------------------------- subscriptions

async def test_wildcard_and_named_subscriptions(server) -> None:
    channel, _, _ = server
    s = Stream(channel)
    got = await subscribe_all(s)
    assert names_of(got[T.CLUSTER]) == CLUSTERS
    assert names_of(got[T.ENDPOINT]) == CLUSTERS
    assert names_of(got[T.LISTENER]) == [LISTENER]
    assert names_of(got[T.ROUTE]) == [ROUTE_NAME]
    for resp in got.values():
        assert resp.version_info and resp.nonce
    assert len({r.nonce for r in got.values()}) == 4, "nonces are unique per response"
    # everything ACKed: nothing more comes
    await s.nothing()


@pytest.mark.parametrize("type_url", [T.LISTENER, T.CLUSTER])
async def test_star_is_wildcard_for_lds_and_cds(server, type_url: str) -> None:
    channel, _, _ = server
    s = Stream(channel)
    await s.send(type_url, names=["*"])
    resp = await s.recv()
    assert names_of(resp) == (CLUSTERS if type_url == T.CLUSTER else [LISTENER])


@pytest.mark.parametrize("type_url,names,expected", [
    (T.ROUTE, [ROUTE_NAME, "does-not-exist"], [ROUTE_NAME]),
    (T.ENDPOINT, [V1, "outbound|1||nope.default.svc.cluster.local"], [V1]),
], ids=["RDS", "EDS"])
async def test_named_request_gets_only_named_resources(server, type_url, names, expected) -> None:
    channel, _, _ = server
    s = Stream(channel)
    await s.send(type_url, names=names)
    resp = await s.recv()
    assert resp.type_url == type_url and resp.version_info and resp.nonce
    assert names_of(resp) == expected


@pytest.mark.parametrize("type_url", [T.LISTENER, T.CLUSTER, T.ROUTE, T.ENDPOINT], ids=T.short)
async def test_ack_gets_no_further_response(server, type_url: str) -> None:
    channel, _, _ = server
    s = Stream(channel)
    names = SUBSCRIPTION[type_url]
    await s.send(type_url, names=names)
    resp = await s.recv()
    assert resp.version_info and resp.nonce and resp.resources
    await s.ack(resp, names=names)
    await s.nothing()
    clients = (await admin(server[2], "clients"))["clients"]
    assert clients[0]["types"][T.short(type_url)]["acked"] == resp.version_info


async def test_ack_with_changed_names_responds(server) -> None:
    channel, _, _ = server
    s = Stream(channel)
    await s.send(T.ENDPOINT, names=[V1])
    first = await s.recv()
    assert names_of(first) == [V1]
    await s.ack(first, names=[V1, V2])
    second = await s.recv()
    assert names_of(second) == [V1, V2] and second.nonce != first.nonce
    assert second.version_info != first.version_info, "the version is per subscription"
    await s.ack(second, names=[V1, V2])
    await s.nothing()


# ---------------------------------------------------------------------------------------------- NACK

async def test_nack_is_recorded_and_never_resent(server) -> None:
    channel, config_dir, options = server
    s = Stream(channel)
    got = await subscribe_all(s)
    bad = got[T.ROUTE]
    await s.nack(bad, "route is bad", names=[ROUTE_NAME], version=got[T.ROUTE].version_info)
    await s.nothing()
    nacks = (await admin(options, "nacks"))["nacks"]
    assert [(n["type"], n["version"], n["message"], n["node"]) for n in nacks] == \
        [("RDS", bad.version_info, "route is bad", "test-node")]
    clients = (await admin(options, "clients"))["clients"]
    assert clients[0]["types"]["RDS"]["nacked"] == bad.version_info
    # a new snapshot that changes only clusters: CDS is pushed, the NACKed RDS version is not re-sent
    write_config(config_dir, config(lb="RANDOM"))
    resp = await s.recv()
    assert resp.type_url == T.CLUSTER and resp.version_info != got[T.CLUSTER].version_info
    await s.ack(resp)
    eds = await s.recv()  # the changed clusters' endpoints follow (cluster warming)
    assert eds.type_url == T.ENDPOINT
    await s.ack(eds, names=SUBSCRIPTION[T.ENDPOINT])
    await s.nothing()


async def test_cds_change_is_followed_by_eds_even_when_endpoints_did_not_change(server) -> None:
    """Envoy keeps an updated EDS cluster warming until it gets its ClusterLoadAssignment
    (xds_protocol, "Eventual consistency considerations")."""
    channel, config_dir, _ = server
    s = Stream(channel)
    got = await subscribe_all(s)
    write_config(config_dir, config(lb="RANDOM"))
    cds = await s.recv()
    assert cds.type_url == T.CLUSTER
    assert all(c.lb_policy == cluster_pb2.Cluster.RANDOM for c in decode(cds))
    await s.ack(cds)
    eds = await s.recv()
    assert eds.type_url == T.ENDPOINT and names_of(eds) == CLUSTERS
    assert eds.version_info == got[T.ENDPOINT].version_info, "the endpoints themselves did not change"
    assert sorted(r.SerializeToString() for r in eds.resources) == \
        sorted(r.SerializeToString() for r in got[T.ENDPOINT].resources)
    await s.ack(eds, names=SUBSCRIPTION[T.ENDPOINT])
    await s.nothing()


async def test_endpoint_edit_sends_only_the_changed_assignments(server) -> None:
    """SotW EDS: absence means unchanged, so a push carries only the assignments that changed."""
    channel, config_dir, _ = server
    s = Stream(channel)
    await subscribe_all(s)
    write_config(config_dir, config(v2_port=40009))
    eds = await s.recv()
    assert eds.type_url == T.ENDPOINT
    assert names_of(eds) == sorted([DEFAULT, V2]), "v1's assignment did not change"
    await s.ack(eds, names=SUBSCRIPTION[T.ENDPOINT])
    await s.nothing()


async def test_nack_then_fixed_config_is_pushed(server) -> None:
    channel, config_dir, options = server
    s = Stream(channel)
    await s.send(T.ROUTE, names=[ROUTE_NAME])
    bad = await s.recv()
    await s.nack(bad, "route is bad", names=[ROUTE_NAME])
    await s.nothing()
    write_config(config_dir, config(prefix="/fixed.Greeter/"))
    fixed = await s.recv()
    assert fixed.type_url == T.ROUTE and fixed.version_info != bad.version_info
    assert "/fixed.Greeter/" in str(decode(fixed)[0])
    await s.ack(fixed, names=[ROUTE_NAME])
    await s.nothing()
    rds = (await admin(options, "clients"))["clients"][0]["types"]["RDS"]
    assert rds["acked"] == fixed.version_info and rds["nacked"] == ""


async def test_nacked_private_key_is_redacted(server) -> None:
    channel, _, options = server
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj" \
           "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu"
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    s = Stream(channel)
    await s.send(T.CLUSTER)
    resp = await s.recv()
    await s.nack(resp, f"Failed to load private key from <inline>: {pem}\nnext line")
    await s.nothing()
    raw = json.dumps(await admin(options, "nacks"))
    nacks = json.loads(raw)["nacks"]
    assert len(nacks) == 1 and nacks[0]["type"] == "CDS"
    message = nacks[0]["message"]
    assert "[redacted]" in message and "Failed to load private key" in message and "next line" in message
    for secret in (body[:40], body[-40:], "BEGIN PRIVATE KEY"):
        assert secret not in raw


# ---------------------------------------------------------------------------------------------- stale nonce

async def test_stale_nonce_is_ignored(server) -> None:
    channel, _, options = server
    s = Stream(channel)
    await s.send(T.ROUTE, names=[ROUTE_NAME])
    first = await s.recv()
    # a changed subscription with a stale nonce: no response ...
    await s.send(T.ROUTE, names=[ROUTE_NAME, "other"], nonce="not-" + first.nonce)
    await s.nothing()
    # ... and no state change: an ACK of the current nonce with the original names is just an ACK
    await s.ack(first, names=[ROUTE_NAME])
    await s.nothing()
    # a stale NACK is not recorded
    await s.send(T.ROUTE, names=[ROUTE_NAME], nonce="not-" + first.nonce, error="stale complaint")
    await s.nothing()
    assert (await admin(options, "nacks"))["nacks"] == []
    rds = (await admin(options, "clients"))["clients"][0]["types"]["RDS"]
    assert rds == {"sent": first.version_info, "acked": first.version_info, "nacked": "", "subscribed": [ROUTE_NAME]}


# ---------------------------------------------------------------------------------------------- pushes

async def test_route_edit_pushes_rds_only(server) -> None:
    channel, config_dir, _ = server
    s = Stream(channel)
    got = await subscribe_all(s)
    write_config(config_dir, config(prefix="/changed.Greeter/"))
    resp = await s.recv()
    assert resp.type_url == T.ROUTE and resp.version_info != got[T.ROUTE].version_info
    assert names_of(resp) == [ROUTE_NAME] and "/changed.Greeter/" in str(decode(resp)[0])
    await s.ack(resp, names=[ROUTE_NAME])
    await s.nothing()


async def test_file_change_pushes_in_make_before_break_order(server) -> None:
    """One edit that changes all four types arrives as CDS, EDS, LDS, RDS."""
    channel, config_dir, _ = server
    s = Stream(channel)
    got = await subscribe_all(s)
    write_config(config_dir, config(lb="RANDOM", v2_port=40003, extra_port=True, prefix="/changed.Greeter/"))
    pushed = []
    for _ in range(4):
        resp = await s.recv()
        pushed.append(resp)
        await s.ack(resp, names=SUBSCRIPTION[resp.type_url])
    assert [r.type_url for r in pushed] == [T.CLUSTER, T.ENDPOINT, T.LISTENER, T.ROUTE], \
        [T.short(r.type_url) for r in pushed]
    for resp in pushed:
        assert resp.version_info != got[resp.type_url].version_info
    assert names_of(pushed[2]) == sorted([LISTENER, "0.0.0.0_9090"])
    assert names_of(pushed[3]) == [ROUTE_NAME]
    await s.nothing()


# ---------------------------------------------------------------------------------------------- reconnect

async def test_reconnect_with_previous_version_gets_a_full_response(server) -> None:
    channel, _, _ = server
    s = Stream(channel)
    first = await subscribe_all(s)
    s.call.cancel()
    again = Stream(channel)
    for type_url in T.PUSH_ORDER[:4]:
        await again.send(type_url, names=SUBSCRIPTION[type_url], version=first[type_url].version_info)
        resp = await again.recv()
        assert resp.type_url == type_url
        assert names_of(resp) == names_of(first[type_url]) and resp.resources
        assert resp.version_info == first[type_url].version_info and resp.nonce
        await again.ack(resp, names=SUBSCRIPTION[type_url])
    await again.nothing()


# ---------------------------------------------------------------------------------------------- first snapshot

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
            await s.nothing()
            objects, diags = parse_text(config(), file="config.yaml")
            assert not diags
            cache.publish(translate(objects), generation=1)
            got = {}
            for _ in range(2):
                resp = await s.recv()
                assert resp.version_info and resp.nonce
                got[resp.type_url] = names_of(resp)
            assert got == {T.LISTENER: [LISTENER], T.CLUSTER: CLUSTERS}
    finally:
        await grpc_server.stop(0)
