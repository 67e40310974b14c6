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


def envoy_bootstrap(*, node_id: str, labels: Mapping[str, str], namespace: str = "default",
                    xds_address: str = "127.0.0.1:18000", admin_address: str = "127.0.0.1:9901",
                    cluster: str = "xds-gateway", ads: str = "delta") -> dict:
    xds_host, xds_port = split_address(xds_address)
    admin_host, admin_port = split_address(admin_address)
    ads_source = {"ads": {}, "resource_api_version": "V3"}
    return {
        "node": {"id": node_id, "cluster": cluster,
                 "metadata": {"labels": dict(labels), "NAMESPACE": namespace}},
        "admin": {"address": {"socket_address": {"address": admin_host, "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {"api_type": ADS_API_TYPES[ads], "transport_api_version": "V3",
                           "set_node_on_first_message_only": True,
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]},
            "lds_config": ads_source,
            "cds_config": ads_source,
        },
        "static_resources": {"clusters": [{
            "name": "xds_cluster",
            "type": "STRICT_DNS",
            "connect_timeout": "1s",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {
                    "connection_keepalive": {"interval": "30s", "timeout": "10s"}}}}},
            "load_assignment": {"cluster_name": "xds_cluster", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": xds_host, "port_value": xds_port}}}}]}]},
        }]},
    }


def grpc_bootstrap(*, node_id: str, namespace: str = "default", xds_address: str = "127.0.0.1:18000",
                   labels: Mapping[str, str] | None = None) -> dict:
    """A ``GRPC_XDS_BOOTSTRAP`` document (gRFC A27) for grpcio / grpc-js / grpc-java xDS clients and servers."""
    metadata: dict = {"GENERATOR": "grpc", "NAMESPACE": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "xds_servers": [{"server_uri": xds_address, "channel_creds": [{"type": "insecure"}],
                         "server_features": ["xds_v3"]}],
        "node": {"id": node_id, "cluster": "proxyless", "metadata": metadata, "locality": {}},
        "server_listener_resource_name_template": f"{INBOUND_PREFIX}%s",
    }


def dump_yaml(doc: Mapping) -> str:
    return yaml.safe_dump(doc, sort_keys=False)
