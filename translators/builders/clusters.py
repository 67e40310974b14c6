"""CDS: one Envoy Cluster per IR cluster.

gRPC works on the first try because a port whose protocol is GRPC, GRPC-WEB
or HTTP2 (or whose name starts with ``grpc``/``http2``) gets explicit HTTP/2
upstream options -- the step every Ambassador, Istio and ALB guide warns about.
Circuit breakers default to Istio's "effectively unlimited" values, so
Envoy's 1024-request default never throttles a busy gateway by surprise.
"""
from __future__ import annotations

from functools import lru_cache

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import base_pb2, health_check_pb2, protocol_pb2
from envoy.type.v3 import range_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import wrappers_pb2

from translators import ir
from translators.builders.endpoints import build_load_assignment
from translators.builders.proto import ads_source, duration, pack

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
UNLIMITED = 2**32 - 1
CONNECT_TIMEOUT_S = 10.0

_LB = {
    None: cluster_pb2.Cluster.LEAST_REQUEST,  # Istio's default
    "LEAST_REQUEST": cluster_pb2.Cluster.LEAST_REQUEST,
    "ROUND_ROBIN": cluster_pb2.Cluster.ROUND_ROBIN,
    "RANDOM": cluster_pb2.Cluster.RANDOM,
    "RING_HASH": cluster_pb2.Cluster.RING_HASH,
    "MAGLEV": cluster_pb2.Cluster.MAGLEV,
}


_LB_PROXYLESS = {
    "ROUND_ROBIN": cluster_pb2.Cluster.ROUND_ROBIN,
    "LEAST_REQUEST": cluster_pb2.Cluster.LEAST_REQUEST,
    "RING_HASH": cluster_pb2.Cluster.RING_HASH,
}


def _u32(value: int) -> wrappers_pb2.UInt32Value:
    return wrappers_pb2.UInt32Value(value=value)


def _protocol_options(cluster: ir.Cluster) -> hpo.HttpProtocolOptions:
    policy = cluster.policy
    common = protocol_pb2.HttpProtocolOptions()
    if policy.idle_timeout_s is not None:
        common.idle_timeout.CopyFrom(duration(policy.idle_timeout_s))
    if policy.max_requests_per_connection:
        common.max_requests_per_connection.CopyFrom(_u32(policy.max_requests_per_connection))
    opts = hpo.HttpProtocolOptions(common_http_protocol_options=common)
    if cluster.h2:
        opts.explicit_http_config.http2_protocol_options.CopyFrom(protocol_pb2.Http2ProtocolOptions(
            connection_keepalive=protocol_pb2.KeepaliveSettings(interval=duration(30), timeout=duration(10))))
    else:
        opts.use_downstream_protocol_config.SetInParent()
    return opts


def _outlier(o: ir.OutlierDetection) -> outlier_detection_pb2.OutlierDetection:
    out = outlier_detection_pb2.OutlierDetection()
    if o.consecutive_5xx is not None:
        out.consecutive_5xx.CopyFrom(_u32(o.consecutive_5xx))
        if o.consecutive_5xx == 0:
            out.enforcing_consecutive_5xx.CopyFrom(_u32(0))
    if o.consecutive_gateway_errors is not None:
        out.consecutive_gateway_failure.CopyFrom(_u32(o.consecutive_gateway_errors))
        out.enforcing_consecutive_gateway_failure.CopyFrom(_u32(100))
    if o.interval_s is not None:
        out.interval.CopyFrom(duration(o.interval_s))
    if o.base_ejection_time_s is not None:
        out.base_ejection_time.CopyFrom(duration(o.base_ejection_time_s))
    if o.max_ejection_percent is not None:
        out.max_ejection_percent.CopyFrom(_u32(o.max_ejection_percent))
    return out


def build_proxyless_cluster(cluster: ir.Cluster) -> cluster_pb2.Cluster:
    """The same cluster for a gRPC client: only what gRFCs A27/A42/A48/A50/A32 define.

    No HTTP protocol options (gRPC always speaks HTTP/2), circuit breakers carry
    only ``max_requests`` (A32), default load balancing is ROUND_ROBIN.
    """
    policy = cluster.policy
    out = cluster_pb2.Cluster(name=cluster.name, lb_policy=_LB_PROXYLESS.get(policy.lb, cluster_pb2.Cluster.ROUND_ROBIN))
    if policy.http2_max_requests:
        out.circuit_breakers.thresholds.append(circuit_breaker_pb2.CircuitBreakers.Thresholds(
            max_requests=_u32(policy.http2_max_requests)))
    _discovery_and_outliers(out, cluster, dns_type=cluster_pb2.Cluster.LOGICAL_DNS)  # gRPC supports LOGICAL_DNS (A37)
    return out


def _discovery_and_outliers(out: cluster_pb2.Cluster, cluster: ir.Cluster, *, dns_type: int) -> None:
    """EDS over ADS, or DNS with the assignment inline; outlier detection when configured."""
    if cluster.discovery == "STRICT_DNS":
        out.type = dns_type
        out.load_assignment.CopyFrom(build_load_assignment(cluster))
    else:
        out.type = cluster_pb2.Cluster.EDS
        out.eds_cluster_config.eds_config.CopyFrom(ads_source())
        out.eds_cluster_config.service_name = cluster.name
    if cluster.policy.outlier is not None:
        out.outlier_detection.CopyFrom(_outlier(cluster.policy.outlier))


@lru_cache(maxsize=4096)
def _template(policy: ir.TrafficPolicy, h2: bool, discovery: str) -> cluster_pb2.Cluster:
    """Everything a cluster gets from its policy and protocol: built once per distinct combination
    (a thousand services with the same DestinationRule shape share one template)."""
    shape = ir.Cluster("", "", 0, "", h2, policy, discovery, ())
    if policy.circuit_breakers is not None:
        thresholds = [circuit_breaker_pb2.CircuitBreakers.Thresholds(
            priority=base_pb2.HIGH if cb.priority == "HIGH" else base_pb2.DEFAULT,
            max_connections=_u32(UNLIMITED if cb.max_connections is None else cb.max_connections),
            max_pending_requests=_u32(UNLIMITED if cb.max_pending_requests is None else cb.max_pending_requests),
            max_requests=_u32(UNLIMITED if cb.max_requests is None else cb.max_requests),
            max_retries=_u32(UNLIMITED if cb.max_retries is None else cb.max_retries)) for cb in policy.circuit_breakers]
    else:
        thresholds = [circuit_breaker_pb2.CircuitBreakers.Thresholds(
            priority=base_pb2.DEFAULT, max_connections=_u32(UNLIMITED), max_pending_requests=_u32(UNLIMITED),
            max_requests=_u32(policy.http2_max_requests or UNLIMITED), max_retries=_u32(UNLIMITED))]
    out = cluster_pb2.Cluster(
        connect_timeout=duration(CONNECT_TIMEOUT_S if policy.connect_timeout_s is None else policy.connect_timeout_s),
        lb_policy=_LB[policy.lb],
        circuit_breakers=circuit_breaker_pb2.CircuitBreakers(thresholds=thresholds),
    )
    out.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(pack(_protocol_options(shape)))
    if policy.ring_minimum_size is not None and policy.lb == "RING_HASH":
        out.ring_hash_lb_config.minimum_ring_size.value = policy.ring_minimum_size
    if policy.maglev_table_size is not None and policy.lb == "MAGLEV":
        out.maglev_lb_config.table_size.value = policy.maglev_table_size
    if policy.warmup_s is not None:  # slow start: new endpoints ramp up over the window
        window = duration(policy.warmup_s)
        if policy.lb == "ROUND_ROBIN":
            out.round_robin_lb_config.slow_start_config.slow_start_window.CopyFrom(window)
        elif policy.lb in (None, "LEAST_REQUEST"):
            out.least_request_lb_config.slow_start_config.slow_start_window.CopyFrom(window)
    if discovery == "STRICT_DNS":
        out.type = cluster_pb2.Cluster.STRICT_DNS
        out.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
    else:
        out.type = cluster_pb2.Cluster.EDS
        out.eds_cluster_config.eds_config.CopyFrom(ads_source())
    if policy.outlier is not None:
        out.outlier_detection.CopyFrom(_outlier(policy.outlier))
    for hc in policy.health_checks or ():
        out.health_checks.append(_health_check(hc))
    return out


def _health_check(hc: ir.HealthCheck) -> health_check_pb2.HealthCheck:
    """Active checks at the interval written, also while the cluster has no traffic (Envoy's default
    ``no_traffic_interval`` is 60 s, which would hide a dead replica for a minute)."""
    out = health_check_pb2.HealthCheck(
        timeout=duration(hc.timeout_s), interval=duration(hc.interval_s), no_traffic_interval=duration(hc.interval_s),
        unhealthy_threshold=_u32(hc.unhealthy_threshold), healthy_threshold=_u32(hc.healthy_threshold))
    if hc.kind == "GRPC":
        out.grpc_health_check.CopyFrom(health_check_pb2.HealthCheck.GrpcHealthCheck(
            service_name=hc.grpc_service, authority=hc.authority))
    elif hc.kind == "HTTP":
        http = health_check_pb2.HealthCheck.HttpHealthCheck(path=hc.http_path, host=hc.authority)
        http.expected_statuses.extend(range_pb2.Int64Range(start=a, end=b) for a, b in hc.expected_statuses)
        out.http_health_check.CopyFrom(http)
    else:
        out.tcp_health_check.SetInParent()
    return out


def build_cluster(cluster: ir.Cluster) -> cluster_pb2.Cluster:
    policy = cluster.policy
    out = cluster_pb2.Cluster()
    out.CopyFrom(_template(policy, cluster.h2, cluster.discovery))
    out.name = cluster.name
    if cluster.discovery == "STRICT_DNS":
        out.load_assignment.CopyFrom(build_load_assignment(cluster))
    else:
        out.eds_cluster_config.service_name = cluster.name
    if policy.tls is not None:
        out.transport_socket.CopyFrom(base_pb2.TransportSocket(
            name="envoy.transport_sockets.tls", typed_config=pack(upstream_tls(cluster, policy.tls))))
    return out


def upstream_tls(cluster: ir.Cluster, t: ir.UpstreamTls) -> tls_pb2.UpstreamTlsContext:
    """TLS origination; ALPN h2 for gRPC ports (the Ambassador guide's ``alpn_protocols: ["h2"]`` step)."""
    common = tls_pb2.CommonTlsContext(alpn_protocols=["h2"] if cluster.h2 else [])
    if t.credential_name:
        name = ir.sds_name(t.credential_name)
        if t.mode == "MUTUAL":
            common.tls_certificate_sds_secret_configs.append(secret_pb2.SdsSecretConfig(name=name, sds_config=ads_source()))
        if not t.insecure_skip_verify:
            ca = ir.sds_name(t.ca_credential) if t.ca_credential else name
            common.validation_context_sds_secret_config.CopyFrom(
                secret_pb2.SdsSecretConfig(name=ca + "-cacert", sds_config=ads_source()))
    elif t.ca_pem and not t.insecure_skip_verify:
        common.validation_context.trusted_ca.inline_bytes = t.ca_pem
    elif t.ca_credential and not t.insecure_skip_verify:
        common.validation_context_sds_secret_config.CopyFrom(
            secret_pb2.SdsSecretConfig(name=ir.sds_name(t.ca_credential) + "-cacert", sds_config=ads_source()))
    else:
        if t.mode == "MUTUAL":
            common.tls_certificates.append(common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(filename=t.client_certificate),
                private_key=base_pb2.DataSource(filename=t.private_key)))
        if t.ca_certificates and not t.insecure_skip_verify:
            common.validation_context.trusted_ca.filename = t.ca_certificates
    if t.subject_alt_names and not t.insecure_skip_verify and not t.credential_name:
        # a SAN with a scheme (spiffe://..., a BackendTLSPolicy ``type: URI``) is a URI SAN; hostnames are DNS
        common.validation_context.match_typed_subject_alt_names.extend(
            common_pb2.SubjectAltNameMatcher(
                san_type=common_pb2.SubjectAltNameMatcher.URI if ":" in s else common_pb2.SubjectAltNameMatcher.DNS,
                matcher=string_pb2.StringMatcher(exact=s)) for s in t.subject_alt_names)
    return tls_pb2.UpstreamTlsContext(sni=t.sni or cluster.host, common_tls_context=common)
