"""Bootstrap documents for the clients we serve.

``grpc``: the JSON that ``GRPC_XDS_BOOTSTRAP`` points at: one xDS server with
``server_features: ["xds_v3"]``, a node marked ``GENERATOR: grpc``, and the
inbound listener name template xDS-enabled servers use (Istio's).

``envoy``: ADS over gRPC to the control plane -- incremental (``DELTA_GRPC``)
by default, so Envoy receives and applies only what changed; ``ads="sotw"``
gives state-of-the-world (``GRPC``) -- node id and metadata labels (Istio
puts them under ``LABELS``; we write ``labels`` and ``LABELS`` is accepted
too), and ``NAMESPACE``.
"""
from __future__ import annotations

from typing import Mapping

import yaml

from translators.proxyless_view import INBOUND_PREFIX
from xds_server.server import split_address


#: ``--ads`` values and Envoy's ``ads_config.api_type`` for them
ADS_API_TYPES = {"delta": "DELTA_GRPC", "sotw": "GRPC"}


def _envoy_xds_tls(*, ca: str, cert: str | None, key: str | None, sni: str) -> dict:
    """The xDS cluster's TLS: the control plane verified against ``ca`` (and its name), ALPN h2, TLS 1.2+;
    with ``cert``/``key``, the client certificate for mTLS."""
    common: dict = {"alpn_protocols": ["h2"], "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                    "validation_context": {"trusted_ca": {"filename": ca}}}
    if sni:
        common["validation_context"]["match_typed_subject_alt_names"] = [{"san_type": "DNS", "matcher": {"exact": sni}}]
    if cert and key:
        common["tls_certificates"] = [{"certificate_chain": {"filename": cert}, "private_key": {"filename": key}}]
    ctx = {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
           "common_tls_context": common}
    if sni:
        ctx["sni"] = sni
    return {"name": "envoy.transport_sockets.tls", "typed_config": ctx}


def envoy_bootstrap(*, node_id: str, labels: Mapping[str, str], namespace: str = "default",
                    xds_address: str = "127.0.0.1:18000", admin_address: str = "127.0.0.1:9901",
                    cluster: str = "xds-gateway", ads: str = "delta", xds_ca: str | None = None,
                    xds_client_cert: str | None = None, xds_client_key: str | None = None,
                    xds_token: str | None = None, xds_server_name: str = "",
                    service_account: str = "", stats_flush_interval: str | None = None) -> dict:
    """``xds_ca``: TLS to the control plane; with ``xds_client_cert``/``xds_client_key``, mTLS; ``xds_token``:
    a service-account token sent as ``authorization: Bearer`` initial metadata (read when the bootstrap is
    written: regenerate the bootstrap when the token rotates).

    Stats are flushed when the admin interface is asked (``stats_flush_on_admin``), not on Envoy's 5 s
    timer: the timed flush walks every cluster's stats on the main thread, where config updates are applied
    too (at 30,000 clusters, 65 ms of every second, and an update that arrived during a flush waited up to
    ~0.5 s).  Prometheus scrapes of ``/stats/prometheus`` are unaffected; with stats sinks, give
    ``stats_flush_interval`` (e.g. ``"5s"``)."""
    xds_host, xds_port = split_address(xds_address)
    admin_host, admin_port = split_address(admin_address)
    ads_source = {"ads": {}, "resource_api_version": "V3"}
    grpc_service: dict = {"envoy_grpc": {"cluster_name": "xds_cluster"}}
    if xds_token:
        grpc_service["initial_metadata"] = [{"key": "authorization", "value": f"Bearer {xds_token}"}]
    metadata: dict = {"labels": dict(labels), "NAMESPACE": namespace}
    if service_account:
        metadata["SERVICE_ACCOUNT"] = service_account
    xds_cluster: dict = {
        "name": "xds_cluster",
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {
                "connection_keepalive": {"interval": "30s", "timeout": "10s"}}}}},
        "load_assignment": {"cluster_name": "xds_cluster", "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": xds_host, "port_value": xds_port}}}}]}]},
    }
    if xds_ca:
        xds_cluster["transport_socket"] = _envoy_xds_tls(ca=xds_ca, cert=xds_client_cert, key=xds_client_key,
                                                         sni=xds_server_name)
    flush: dict = {"stats_flush_interval": stats_flush_interval} if stats_flush_interval else \
        {"stats_flush_on_admin": True}
    return {
        "node": {"id": node_id, "cluster": cluster, "metadata": metadata},
        **flush,
        "admin": {"address": {"socket_address": {"address": admin_host, "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {"api_type": ADS_API_TYPES[ads], "transport_api_version": "V3",
                           "set_node_on_first_message_only": True,
                           "grpc_services": [grpc_service]},
            "lds_config": ads_source,
            "cds_config": ads_source,
        },
        "static_resources": {"clusters": [xds_cluster]},
    }


def grpc_bootstrap(*, node_id: str, namespace: str = "default", xds_address: str = "127.0.0.1:18000",
                   labels: Mapping[str, str] | None = None, xds_ca: str | None = None,
                   xds_client_cert: str | None = None, xds_client_key: str | None = None,
                   xds_token_file: str | None = None) -> dict:
    """A ``GRPC_XDS_BOOTSTRAP`` document (gRFC A27) for grpcio / grpc-js / grpc-java xDS clients and servers.

    ``xds_ca``: ``channel_creds`` ``tls`` with that CA (gRFC A65's ``tls`` type, certificate files); with a
    client certificate and key, mTLS.  ``xds_token_file``: ``call_creds`` ``jwt_token_file`` (gRFC A97),
    re-read by the client as the file rotates."""
    metadata: dict = {"GENERATOR": "grpc", "NAMESPACE": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    creds: list[dict] = [{"type": "insecure"}]
    if xds_ca:
        config: dict = {"ca_certificate_file": xds_ca}
        if xds_client_cert and xds_client_key:
            config.update(certificate_file=xds_client_cert, private_key_file=xds_client_key)
        creds = [{"type": "tls", "config": config}]
    server: dict = {"server_uri": xds_address, "channel_creds": creds, "server_features": ["xds_v3"]}
    if xds_token_file:
        server["call_creds"] = [{"type": "jwt_token_file", "config": {"jwt_token_file": xds_token_file}}]
    return {
        "xds_servers": [server],
        "node": {"id": node_id, "cluster": "proxyless", "metadata": metadata, "locality": {}},
        "server_listener_resource_name_template": f"{INBOUND_PREFIX}%s",
    }


def dump_yaml(doc: Mapping) -> str:
    return yaml.safe_dump(doc, sort_keys=False)
