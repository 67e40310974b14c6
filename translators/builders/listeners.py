"""LDS: gateway listeners ``0.0.0.0_PORT`` with an HttpConnectionManager fed by RDS.

A listener binds ``0.0.0.0`` unless its Gateway servers set ``bind`` (then it is
named ``ADDRESS_PORT`` and binds ADDRESS, as in Istio).

HCM choices and why:

* ``strip_any_host_port`` -- ``grpc.example.com:8443`` routes exactly like
  ``grpc.example.com`` (the classic Ambassador trap);
* ``codec_type: AUTO`` -- HTTP/1.1 and h2c prior knowledge on one port, so a
  plaintext gRPC client just connects;
* ``stream_idle_timeout: 0`` -- no default kills an idle gRPC stream; dead
  peers are found by HTTP/2 keepalive PINGs instead;
* the router is last; the fault filter sits before it only when a route uses it;
* gRPC-Web: ``grpc_web`` then ``cors`` before the router, on GRPC-WEB ports and
  wherever a route carries a corsPolicy;
* TLS: one filter chain per HTTPS server, chosen by SNI, with certificates
  from SDS (``kubernetes://NAME``) and ALPN ``h2``, ``http/1.1``.
"""
from __future__ import annotations

from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_components_pb2, listener_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import substitution_format_string_pb2
from envoy.config.core.v3 import grpc_method_list_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as grpc_stats_pb2
from envoy.extensions.filters.http.grpc_web.v3 import grpc_web_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from google.protobuf import wrappers_pb2

from translators import ir
from translators.builders.proto import ads_source, duration, pack
from translators.builders.routes import FAULT_FILTER, uses_fault

HCM_FILTER = "envoy.filters.network.http_connection_manager"
ROUTER_FILTER = "envoy.filters.http.router"
GRPC_WEB_FILTER = "envoy.filters.http.grpc_web"
CORS_FILTER = "envoy.filters.http.cors"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
TLS_TRANSPORT = "envoy.transport_sockets.tls"


GRPC_STATS_FILTER = "envoy.filters.http.grpc_stats"
#: Istio's default access log format, with the gRPC status next to the HTTP status
ACCESS_LOG_FORMAT = ('[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
                     '%GRPC_STATUS% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
                     '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %ROUTE_NAME%\n')


def grpc_stats_filter(listener: ir.HttpListener) -> hcm.HttpFilter:
    """gRPC stats on every gateway connection manager, as Istio inserts them: per cluster
    ``grpc.{success,failure,total}`` and per status ``grpc.<code>``, upstream timing (``enable_upstream_stats``);
    per method (``grpc.<service>.<method>.*``) for the methods listed, or all with the Gateway's
    ``xds-server.io/grpc-stats-all-methods: "true"``."""
    config = grpc_stats_pb2.FilterConfig(enable_upstream_stats=True, emit_filter_state=True)
    if listener.grpc_stats_all:
        config.stats_for_all_methods.value = True
    else:
        config.individual_method_stats_allowlist.services.extend(
            grpc_method_list_pb2.GrpcMethodList.Service(name=s, method_names=list(m))
            for s, m in listener.grpc_stats_methods)
    return hcm.HttpFilter(name=GRPC_STATS_FILTER, typed_config=pack(config))


def access_log() -> accesslog_pb2.AccessLog:
    return accesslog_pb2.AccessLog(name="envoy.access_loggers.stdout", typed_config=pack(stream_pb2.StdoutAccessLog(
        log_format=substitution_format_string_pb2.SubstitutionFormatString(
            text_format_source=base_pb2.DataSource(inline_string=ACCESS_LOG_FORMAT)))))


def http_filters(*, fault: bool, grpc_web: bool = False, cors: bool = False,
                 grpc_stats: hcm.HttpFilter | None = None) -> list[hcm.HttpFilter]:
    """Filter order: fault, grpc_web, cors, grpc_stats, router (the router is always last)."""
    filters = []
    if fault:
        filters.append(hcm.HttpFilter(name=FAULT_FILTER, typed_config=pack(fault_pb2.HTTPFault())))
    if grpc_web:
        filters.append(hcm.HttpFilter(name=GRPC_WEB_FILTER, typed_config=pack(grpc_web_pb2.GrpcWeb())))
    if cors:
        filters.append(hcm.HttpFilter(name=CORS_FILTER, typed_config=pack(cors_pb2.Cors())))
    if grpc_stats is not None:
        filters.append(grpc_stats)
    filters.append(hcm.HttpFilter(name=ROUTER_FILTER, typed_config=pack(router_pb2.Router())))
    return filters


_TLS_VERSION = {"": common_pb2.TlsParameters.TLS_AUTO, "TLSV1_0": common_pb2.TlsParameters.TLSv1_0,
                "TLSV1_1": common_pb2.TlsParameters.TLSv1_1, "TLSV1_2": common_pb2.TlsParameters.TLSv1_2,
                "TLSV1_3": common_pb2.TlsParameters.TLSv1_3}


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    return secret_pb2.SdsSecretConfig(name=name, sds_config=ads_source())


def downstream_tls(chain: ir.TlsChain) -> tls_pb2.DownstreamTlsContext:
    """TLS termination with ALPN h2 + http/1.1, so gRPC clients negotiate HTTP/2."""
    t = chain.tls
    common = tls_pb2.CommonTlsContext(
        tls_certificate_sds_secret_configs=[_sds(ir.sds_name(t.sds_credential))],
        alpn_protocols=list(t.alpn) or ["h2", "http/1.1"],
        tls_params=common_pb2.TlsParameters(tls_minimum_protocol_version=_TLS_VERSION[t.min_version],
                                            tls_maximum_protocol_version=_TLS_VERSION[t.max_version],
                                            cipher_suites=list(t.cipher_suites)))
    ctx = tls_pb2.DownstreamTlsContext(common_tls_context=common)
    if t.mode == "MUTUAL":
        ctx.require_client_certificate.value = t.require_client_certificate
        default = common_pb2.CertificateValidationContext(match_typed_subject_alt_names=[
            common_pb2.SubjectAltNameMatcher(san_type=common_pb2.SubjectAltNameMatcher.DNS,
                                             matcher=string_pb2.StringMatcher(exact=san))
            for san in t.subject_alt_names])
        ctx.common_tls_context.combined_validation_context.CopyFrom(tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            default_validation_context=default,
            validation_context_sds_secret_config=_sds(ir.sds_name(t.ca_credential or t.credential_name) + "-cacert")))
    return ctx


def build_api_listener(*, name: str, route_config: str, fault: bool) -> listener_pb2.Listener:
    """A proxyless client's listener (gRFC A27): an ``api_listener`` HCM fed by RDS over ADS."""
    manager = hcm.HttpConnectionManager(
        rds=hcm.Rds(config_source=ads_source(), route_config_name=route_config),
        http_filters=http_filters(fault=fault))
    return listener_pb2.Listener(name=name, api_listener=api_listener_pb2.ApiListener(api_listener=pack(manager)))


def build_unroutable_api_listener(*, name: str) -> listener_pb2.Listener:
    """A proxyless listener for a name that cannot be routed (a bare name of a service with several ports):
    its route configuration has no routes, so the client's calls fail at once with UNAVAILABLE instead of
    waiting 15 s for gRPC's resource-does-not-exist timer (a SotW response that omits a never-seen
    resource does not end that wait; gRFC A27)."""
    manager = hcm.HttpConnectionManager(
        route_config=route_pb2.RouteConfiguration(name=f"unroutable|{name}", virtual_hosts=[
            rc.VirtualHost(name="unroutable", domains=["*"])]),
        http_filters=http_filters(fault=False))
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
        http_filters=http_filters(fault=listener.fault if listener.fault is not None else
                                  uses_fault(listener.virtual_hosts), grpc_web=listener.grpc_web,
                                  cors=listener.cors, grpc_stats=grpc_stats_filter(listener)),
        access_log=[access_log()] if listener.access_log else [],
        strip_any_host_port=not listener.keep_port,
        use_remote_address=wrappers_pb2.BoolValue(value=True),
        stream_idle_timeout=duration(0),
        http2_protocol_options=protocol_pb2.Http2ProtocolOptions(
            connection_keepalive=protocol_pb2.KeepaliveSettings(interval=duration(30), timeout=duration(10))),
    )
    hcm_filter = listener_components_pb2.Filter(name=HCM_FILTER, typed_config=pack(manager))
    out = listener_pb2.Listener(
        name=listener.name,
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address=listener.address,
                                                                             port_value=listener.port)),
    )
    if not listener.tls_chains:
        out.filter_chains.append(listener_components_pb2.FilterChain(filters=[hcm_filter]))
        return out
    out.listener_filters.append(listener_components_pb2.ListenerFilter(
        name=TLS_INSPECTOR, typed_config=pack(tls_inspector_pb2.TlsInspector())))
    for chain in listener.tls_chains:
        out.filter_chains.append(listener_components_pb2.FilterChain(
            filter_chain_match=listener_components_pb2.FilterChainMatch(server_names=list(chain.server_names)),
            transport_socket=base_pb2.TransportSocket(name=TLS_TRANSPORT, typed_config=pack(downstream_tls(chain))),
            filters=[hcm_filter]))
    return out


def build_tcp_listener(listener: ir.TcpListener) -> listener_pb2.Listener:
    """A PASSTHROUGH port: TLS is not terminated; SNI picks a TCP proxy to the backend."""
    out = listener_pb2.Listener(
        name=listener.name,
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address=listener.address,
                                                                             port_value=listener.port)),
        listener_filters=[listener_components_pb2.ListenerFilter(name=TLS_INSPECTOR,
                                                                 typed_config=pack(tls_inspector_pb2.TlsInspector()))])
    for server_names, clusters in listener.chains:
        proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=f"{listener.name}.passthrough")
        if len(clusters) == 1:
            proxy.cluster = clusters[0].cluster
        else:
            proxy.weighted_clusters.clusters.extend(tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(
                name=c.cluster, weight=c.weight) for c in clusters)
        out.filter_chains.append(listener_components_pb2.FilterChain(
            filter_chain_match=listener_components_pb2.FilterChainMatch(server_names=list(server_names)),
            filters=[listener_components_pb2.Filter(name="envoy.filters.network.tcp_proxy", typed_config=pack(proxy))]))
    return out
