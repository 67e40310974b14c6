"""LDS: gateway listeners ``0.0.0.0_PORT`` with an HttpConnectionManager fed by RDS.

HCM choices and why:

* ``strip_any_host_port`` -- ``grpc.example.com:8443`` routes exactly like
  ``grpc.example.com`` (the classic Ambassador trap);
* ``codec_type: AUTO`` -- HTTP/1.1 and h2c prior knowledge on one port, so a
  plaintext gRPC client just connects;
* ``stream_idle_timeout: 0`` -- no default kills an idle gRPC stream; dead
  peers are found by HTTP/2 keepalive PINGs instead;
* the router is last; the fault filter sits before it only when a route uses it.
"""
from __future__ import annotations

from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_components_pb2, listener_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from google.protobuf import wrappers_pb2

from translators import ir
from translators.builders.proto import ads_source, duration, pack
from translators.builders.routes import FAULT_FILTER, uses_fault

HCM_FILTER = "envoy.filters.network.http_connection_manager"
ROUTER_FILTER = "envoy.filters.http.router"


def http_filters(*, fault: bool) -> list[hcm.HttpFilter]:
    filters = []
    if fault:
        filters.append(hcm.HttpFilter(name=FAULT_FILTER, typed_config=pack(fault_pb2.HTTPFault())))
    filters.append(hcm.HttpFilter(name=ROUTER_FILTER, typed_config=pack(router_pb2.Router())))
    return filters


def build_api_listener(*, name: str, route_config: str, fault: bool) -> listener_pb2.Listener:
    """A proxyless client's listener (gRFC A27): an ``api_listener`` HCM fed by RDS over ADS."""
    manager = hcm.HttpConnectionManager(
        rds=hcm.Rds(config_source=ads_source(), route_config_name=route_config),
        http_filters=http_filters(fault=fault))
    return listener_pb2.Listener(name=name, api_listener=api_listener_pb2.ApiListener(api_listener=pack(manager)))


def build_inbound_listener(*, name: str, address: str, port: int) -> listener_pb2.Listener:
    """An xDS-enabled gRPC server's listener (gRFC A36).

    The address must equal the one the server listens on; one plaintext filter
    chain whose HCM routes everything with ``non_forwarding_action``.
    """
    route_config = route_pb2.RouteConfiguration(name="inbound|" + str(port), virtual_hosts=[rc.VirtualHost(
        name="inbound", domains=["*"], routes=[rc.Route(match=rc.RouteMatch(prefix="/"),
                                                        non_forwarding_action=rc.NonForwardingAction())])])
    manager = hcm.HttpConnectionManager(stat_prefix=name, route_config=route_config,
                                        http_filters=http_filters(fault=False))
    return listener_pb2.Listener(
        name=name, traffic_direction=base_pb2.INBOUND,
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address=address, port_value=port)),
        filter_chains=[listener_components_pb2.FilterChain(name="inbound-plaintext", filters=[
            listener_components_pb2.Filter(name=HCM_FILTER, typed_config=pack(manager))])])


def build_gateway_listener(listener: ir.HttpListener) -> listener_pb2.Listener:
    manager = hcm.HttpConnectionManager(
        stat_prefix=listener.name,
        codec_type=hcm.HttpConnectionManager.AUTO,
        rds=hcm.Rds(config_source=ads_source(), route_config_name=listener.route_config),
        http_filters=http_filters(fault=uses_fault(listener.virtual_hosts)),
        strip_any_host_port=True,
        use_remote_address=wrappers_pb2.BoolValue(value=True),
        stream_idle_timeout=duration(0),
        http2_protocol_options=protocol_pb2.Http2ProtocolOptions(
            connection_keepalive=protocol_pb2.KeepaliveSettings(interval=duration(30), timeout=duration(10))),
    )
    return listener_pb2.Listener(
        name=listener.name,
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address="0.0.0.0", port_value=listener.port)),
        filter_chains=[listener_components_pb2.FilterChain(filters=[listener_components_pb2.Filter(
            name=HCM_FILTER, typed_config=pack(manager))])],
    )
