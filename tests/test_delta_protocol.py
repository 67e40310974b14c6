"""Delta ADS over real gRPC: a scripted client drives ``DeltaAggregatedResources``.

Same in-process server and config as :mod:`tests.test_ads_protocol`; every
wait is bounded (``MUST`` for what must happen, ``MUST_NOT`` for what must not).
"""
from __future__ import annotations

import asyncio

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from google.rpc import status_pb2

from tests.test_ads_protocol import (CLUSTERS, DEFAULT, LISTENER, MUST, MUST_NOT, ROUTE_NAME, V1, V2, admin, config,
                                     server, write_config)
from translators import type_urls as T

__all__ = ["server"]  # the fixture


def node() -> base_pb2.Node:
    meta = struct_pb2.Struct()
    meta.update({"labels": {"istio": "ingressgateway"}})
    return base_pb2.Node(id="delta-node", metadata=meta)


class DeltaStream:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).DeltaAggregatedResources()
        self.sent_node = False
        self._pending: asyncio.Future | None = None

    async def send(self, type_url: str, *, subscribe=(), unsubscribe=(), initial=None, nonce: str = "",
                   error: str | None = None) -> None:
        req = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, resource_names_subscribe=list(subscribe),
                                                  resource_names_unsubscribe=list(unsubscribe),
                                                  initial_resource_versions=initial or {}, response_nonce=nonce)
        if not self.sent_node:
            req.node.CopyFrom(node())
            self.sent_node = True
        if error is not None:
            req.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await asyncio.wait_for(self.call.write(req), MUST)

    async def _next(self, timeout: float):
        if self._pending is None:
            self._pending = asyncio.ensure_future(self.call.read())
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            return None
        fut, self._pending = self._pending, None
        got = fut.result()
        assert got is not grpc.aio.EOF, "stream ended"
        return got

    async def recv(self, timeout: float = MUST) -> discovery_pb2.DeltaDiscoveryResponse:
        got = await self._next(timeout)
        assert got is not None, "no response"
        return got

    async def nothing(self, timeout: float = MUST_NOT) -> None:
        got = await self._next(timeout)
        assert got is None, f"unexpected {T.short(got.type_url)} {names(got)} removed={list(got.removed_resources)}"

    async def ack(self, resp: discovery_pb2.DeltaDiscoveryResponse) -> None:
        await self.send(resp.type_url, nonce=resp.nonce)


def names(resp: discovery_pb2.DeltaDiscoveryResponse) -> list[str]:
    return sorted(r.name for r in resp.resources)


def versions(resp: discovery_pb2.DeltaDiscoveryResponse) -> dict[str, str]:
    return {r.name: r.version for r in resp.resources}


async def subscribe_all(s: DeltaStream) -> dict[str, discovery_pb2.DeltaDiscoveryResponse]:
    got = {}
    for type_url, subscribe in ((T.CLUSTER, ()), (T.ENDPOINT, CLUSTERS), (T.LISTENER, ()), (T.ROUTE, [ROUTE_NAME])):
        await s.send(type_url, subscribe=subscribe)
        got[type_url] = await s.recv()
        assert got[type_url].type_url == type_url and got[type_url].nonce
        await s.ack(got[type_url])
    return got


async def test_initial_wildcard_and_named_subscriptions(server) -> None:
    channel, _, options = server
    s = DeltaStream(channel)
    got = await subscribe_all(s)
    assert names(got[T.CLUSTER]) == CLUSTERS and names(got[T.ENDPOINT]) == CLUSTERS
    assert names(got[T.LISTENER]) == [LISTENER] and names(got[T.ROUTE]) == [ROUTE_NAME]
    assert all(r.version for resp in got.values() for r in resp.resources), "every resource has its own version"
    await s.nothing()
    [client] = (await admin(options, "clients"))["clients"]
    assert client["mode"] == "delta"
    assert all(t["acked"] == t["sent"] and t["sent"] for t in client["types"].values()), client


async def test_a_change_sends_only_the_changed_resources(server) -> None:
    channel, config_dir, _ = server
    s = DeltaStream(channel)
    got = await subscribe_all(s)
    write_config(config_dir, config(v2_port=40009))
    resp = await s.recv()
    assert resp.type_url == T.ENDPOINT and names(resp) == sorted([DEFAULT, V2]) and not resp.removed_resources
    await s.ack(resp)
    await s.nothing()
    assert versions(resp)[V2] != versions(got[T.ENDPOINT])[V2]


async def test_cds_change_is_followed_by_eds_and_removals_are_sent(server) -> None:
    channel, config_dir, _ = server
    s = DeltaStream(channel)
    got = await subscribe_all(s)
    # LB change: every cluster changes; their endpoints follow at the same versions
    write_config(config_dir, config(lb="RANDOM"))
    cds = await s.recv()
    assert cds.type_url == T.CLUSTER and names(cds) == CLUSTERS
    for r in cds.resources:
        c = cluster_pb2.Cluster()
        assert r.resource.Unpack(c) and c.lb_policy == cluster_pb2.Cluster.RANDOM
    await s.ack(cds)
    eds = await s.recv()
    assert eds.type_url == T.ENDPOINT and names(eds) == CLUSTERS
    assert versions(eds) == versions(got[T.ENDPOINT])
    await s.ack(eds)
    # a listener removed: LDS says so in removed_resources
    write_config(config_dir, config(lb="RANDOM", extra_port=True))
    lds = await s.recv()
    assert lds.type_url == T.LISTENER and names(lds) == ["0.0.0.0_9090"]
    await s.ack(lds)
    write_config(config_dir, config(lb="RANDOM"))
    lds = await s.recv()
    assert lds.type_url == T.LISTENER and names(lds) == [] and list(lds.removed_resources) == ["0.0.0.0_9090"]
    await s.ack(lds)
    await s.nothing()


async def test_unsubscribe_then_resubscribe_sends_the_resource_again(server) -> None:
    channel, _, _ = server
    s = DeltaStream(channel)
    await subscribe_all(s)
    await s.send(T.ENDPOINT, unsubscribe=[V1])
    await s.nothing()
    await s.send(T.ENDPOINT, subscribe=[V1])
    resp = await s.recv()
    assert names(resp) == [V1], "go-control-plane #1450: a re-subscribed resource is sent again"
    await s.ack(resp)
    await s.nothing()


async def test_subscribing_to_a_missing_name_says_it_does_not_exist_once(server) -> None:
    channel, _, _ = server
    s = DeltaStream(channel)
    await s.send(T.ENDPOINT, subscribe=["outbound|1||nope.default.svc.cluster.local"])
    resp = await s.recv()
    assert names(resp) == [] and list(resp.removed_resources) == ["outbound|1||nope.default.svc.cluster.local"]
    await s.ack(resp)
    await s.nothing()


async def test_reconnect_with_initial_versions_sends_only_what_differs(server) -> None:
    channel, config_dir, _ = server
    s = DeltaStream(channel)
    got = await subscribe_all(s)
    s.call.cancel()
    write_config(config_dir, config(v2_port=40009))  # changes the v2 and default assignments while away
    await asyncio.sleep(0.5)
    again = DeltaStream(channel)
    await again.send(T.ENDPOINT, subscribe=CLUSTERS, initial=versions(got[T.ENDPOINT]))
    resp = await again.recv()
    assert names(resp) == sorted([DEFAULT, V2]) and not resp.removed_resources
    await again.ack(resp)
    await again.send(T.CLUSTER, initial=versions(got[T.CLUSTER]) | {"outbound|1||gone.example.com": "x"})
    resp = await again.recv()
    assert names(resp) == [] and list(resp.removed_resources) == ["outbound|1||gone.example.com"]
    await again.ack(resp)
    await again.nothing()


async def test_nack_is_recorded_and_never_resent(server) -> None:
    channel, config_dir, options = server
    s = DeltaStream(channel)
    await subscribe_all(s)
    write_config(config_dir, config(prefix="/bad.Route/"))
    bad = await s.recv()
    assert bad.type_url == T.ROUTE
    await s.send(T.ROUTE, nonce=bad.nonce, error="route is bad")
    await s.nothing()
    nacks = (await admin(options, "nacks"))["nacks"]
    assert [(n["type"], n["message"]) for n in nacks] == [("RDS", "route is bad")]
    # an unrelated change: CDS (and EDS) go out, the NACKed route does not
    write_config(config_dir, config(prefix="/bad.Route/", lb="RANDOM"))
    for _ in range(2):
        resp = await s.recv()
        assert resp.type_url in (T.CLUSTER, T.ENDPOINT)
        await s.ack(resp)
    await s.nothing()
    # a fixed route is sent
    write_config(config_dir, config(prefix="/fixed.Route/", lb="RANDOM"))
    fixed = await s.recv()
    assert fixed.type_url == T.ROUTE and "/fixed.Route/" in str(fixed)
    await s.ack(fixed)
    [client] = (await admin(options, "clients"))["clients"]
    assert client["types"]["RDS"]["nacked"] == ""


async def test_sotw_and_delta_serve_the_same_resources(server) -> None:
    from tests.test_ads_protocol import Stream, subscribe_all as sotw_subscribe_all
    channel, _, _ = server
    delta_got = await subscribe_all(DeltaStream(channel))
    sotw_got = await sotw_subscribe_all(Stream(channel))
    for type_url in (T.CLUSTER, T.ENDPOINT, T.LISTENER, T.ROUTE):
        assert sorted(r.resource.SerializeToString() for r in delta_got[type_url].resources) == \
            sorted(a.SerializeToString() for a in sotw_got[type_url].resources)


# ---------------------------------------------------------------------------------------------- VHDS

def vhds_names(resp: discovery_pb2.DeltaDiscoveryResponse) -> list[str]:
    return [n for n in names(resp)]


async def subscribe_vhds(s: DeltaStream) -> dict[str, discovery_pb2.DeltaDiscoveryResponse]:
    got = await subscribe_all(s)
    # Envoy's VHDS subscribes to the route configuration's name as a namespace (vhds.cc)
    await s.send(T.VIRTUAL_HOST, subscribe=[ROUTE_NAME])
    got[T.VIRTUAL_HOST] = await s.recv()
    await s.ack(got[T.VIRTUAL_HOST])
    return got


def _vhost(resource) -> "route_components_pb2.VirtualHost":  # noqa: ANN001
    from envoy.config.route.v3 import route_components_pb2
    vh = route_components_pb2.VirtualHost()
    assert resource.resource.Unpack(vh)
    return vh


def two_hosts(*, prefix: str = "/helloworld.Greeter/", second: bool = True) -> str:
    """:func:`config` with the VirtualService on ``a.example.com`` and, with ``second``, another on
    ``b.example.com``: two virtual hosts."""
    text = config(prefix=prefix).replace('hosts: ["*"]\n  gateways: [gw]', 'hosts: [a.example.com]\n  gateways: [gw]')
    if second:
        text += """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: second, namespace: default}
spec:
  hosts: [b.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: greeter, subset: v1}}]}]
"""
    return text


VHDS_SERVER = pytest.mark.parametrize("server", [(True, two_hosts())], indirect=True)
VHDS_ONE_HOST = pytest.mark.parametrize("server", [(True, two_hosts(second=False))], indirect=True)


@VHDS_SERVER
async def test_vhds_route_configuration_names_vhds_and_hosts_come_by_namespace(server) -> None:
    from envoy.config.core.v3 import config_source_pb2
    from envoy.config.route.v3 import route_pb2
    channel, config_dir, options = server
    s = DeltaStream(channel)
    got = await subscribe_vhds(s)
    rc = route_pb2.RouteConfiguration()
    assert got[T.ROUTE].resources[0].resource.Unpack(rc)
    assert not rc.virtual_hosts and rc.vhds.config_source.HasField("ads")
    assert rc.vhds.config_source.resource_api_version == config_source_pb2.V3
    vh = got[T.VIRTUAL_HOST]
    assert vhds_names(vh) == [f"{ROUTE_NAME}/a.example.com:8080", f"{ROUTE_NAME}/b.example.com:8080"]
    assert not vh.removed_resources, "a namespace is not a resource: never reported absent"
    assert {tuple(_vhost(r).domains) for r in vh.resources} == {("a.example.com",), ("b.example.com",)}
    # Envoy keys hosts (and applies removals) by VirtualHost.name: it is the resource name
    assert all(_vhost(r).name == r.name for r in vh.resources)
    await s.nothing()
    [client] = (await admin(options, "clients"))["clients"]
    assert client["types"]["VHDS"]["resources"] == 2 and client["types"]["VHDS"]["acked"]


@VHDS_SERVER
async def test_vhds_a_route_edit_sends_one_host_and_no_route_configuration(server) -> None:
    channel, config_dir, _ = server
    s = DeltaStream(channel)
    await subscribe_vhds(s)
    write_config(config_dir, two_hosts(prefix="/other.Service/"))
    resp = await s.recv()
    assert resp.type_url == T.VIRTUAL_HOST and vhds_names(resp) == [f"{ROUTE_NAME}/a.example.com:8080"]
    assert _vhost(resp.resources[0]).routes[0].match.prefix == "/other.Service/"
    await s.ack(resp)
    await s.nothing()  # RDS did not change: the configuration only names VHDS


@VHDS_ONE_HOST
async def test_vhds_hosts_added_and_removed(server) -> None:
    channel, config_dir, _ = server
    s = DeltaStream(channel)
    got = await subscribe_vhds(s)
    assert vhds_names(got[T.VIRTUAL_HOST]) == [f"{ROUTE_NAME}/a.example.com:8080"]
    write_config(config_dir, two_hosts())
    resp = await s.recv()
    assert resp.type_url == T.VIRTUAL_HOST and vhds_names(resp) == [f"{ROUTE_NAME}/b.example.com:8080"]
    assert not resp.removed_resources
    await s.ack(resp)
    write_config(config_dir, two_hosts(second=False))
    resp = await s.recv()
    assert resp.type_url == T.VIRTUAL_HOST and not resp.resources
    assert list(resp.removed_resources) == [f"{ROUTE_NAME}/b.example.com:8080"]
    await s.ack(resp)
    await s.nothing()


@VHDS_SERVER
async def test_vhds_reconnect_with_initial_versions_and_unsubscribe(server) -> None:
    channel, config_dir, _ = server
    s = DeltaStream(channel)
    got = await subscribe_vhds(s)
    held = versions(got[T.VIRTUAL_HOST])
    # a new stream that kept both hosts, one at a stale version: only that one is sent
    stale = dict(held, **{f"{ROUTE_NAME}/b.example.com:8080": "stale"})
    s2 = DeltaStream(channel)
    await s2.send(T.VIRTUAL_HOST, subscribe=[ROUTE_NAME], initial=stale)
    resp = await s2.recv()
    assert vhds_names(resp) == [f"{ROUTE_NAME}/b.example.com:8080"] and not resp.removed_resources
    await s2.ack(resp)
    # unsubscribing the namespace: later edits are not sent
    await s.send(T.VIRTUAL_HOST, unsubscribe=[ROUTE_NAME])
    write_config(config_dir, two_hosts(prefix="/other.Service/"))
    await s.nothing()


@VHDS_SERVER
async def test_vhds_opened_as_envoy_opens_it_naming_nothing(server) -> None:
    """Envoy 1.40 opens VHDS with a request that names nothing (its watch map sorts hosts into route
    configurations by namespace): that is the legacy wildcard, answered with every host."""
    channel, config_dir, _ = server
    s = DeltaStream(channel)
    await subscribe_all(s)
    await s.send(T.VIRTUAL_HOST)
    resp = await s.recv()
    assert vhds_names(resp) == [f"{ROUTE_NAME}/a.example.com:8080", f"{ROUTE_NAME}/b.example.com:8080"]
    await s.ack(resp)
    write_config(config_dir, two_hosts(second=False))
    resp = await s.recv()
    assert list(resp.removed_resources) == [f"{ROUTE_NAME}/b.example.com:8080"] and not resp.resources
    await s.ack(resp)
    await s.nothing()


@VHDS_SERVER
async def test_vhds_is_for_delta_envoys_only_sotw_envoys_of_the_same_gateway_get_rds(server) -> None:
    """A Delta Envoy and a SotW Envoy with the same labels are two node classes: the SotW one gets its
    virtual hosts inside RDS (Envoy takes VHDS only over Delta), and an edit reaches both."""
    from envoy.config.route.v3 import route_pb2
    from tests.test_ads_protocol import Stream, subscribe_all as sotw_subscribe_all
    channel, config_dir, _ = server
    d = DeltaStream(channel)
    await subscribe_vhds(d)
    s = Stream(channel)
    got = await sotw_subscribe_all(s)
    rc = route_pb2.RouteConfiguration()
    assert got[T.ROUTE].resources[0].Unpack(rc)
    assert not rc.HasField("vhds") and sorted(vh.domains[0] for vh in rc.virtual_hosts) == \
        ["a.example.com", "b.example.com"]
    write_config(config_dir, two_hosts(prefix="/other.Service/"))
    resp = await d.recv()
    assert resp.type_url == T.VIRTUAL_HOST and vhds_names(resp) == [f"{ROUTE_NAME}/a.example.com:8080"]
    sotw = await s.recv()
    assert sotw.type_url == T.ROUTE and sotw.resources[0].Unpack(rc)
    assert any(r.match.prefix == "/other.Service/" for vh in rc.virtual_hosts for r in vh.routes)
