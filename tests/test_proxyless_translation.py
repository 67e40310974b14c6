"""Proxyless translation against Istio's grpcgen expectations (``tests/corpus/istio-docs-grpc``),
and the shape of what gRPC clients get (gRFC A27/A28/A31/A44/A42)."""
from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import json_format

from translators import type_urls
from translators.node import NodeInfo
from translators.pipeline import translate
from xds_server.sources.documents import parse_text
from xds_server.sources.files import load_dirs

CORPUS = Path(__file__).resolve().parent / "corpus" / "istio-docs-grpc"
PREFIX = "pilot__pkg__networking__grpcgen__grpcgen_test.go__"
NODE = NodeInfo.of(flavour="grpc", namespace="test")


def rds(file: str, name: str) -> dict:
    objects, _ = load_dirs([CORPUS / f"{PREFIX}{file}.transcribed.yaml"])
    msg = translate(objects).resolve(NODE, type_urls.ROUTE, name)
    assert msg is not None, f"no RDS {name}"
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def test_virtual_host_filtering() -> None:
    out = rds("TestGRPCRDSVirtualHostFiltering", "outbound|8080||svc-a.test.svc.cluster.local")
    [vhost] = out["virtual_hosts"]
    assert "svc-a.test.svc.cluster.local" in vhost["domains"]
    assert not any("svc-b" in d or "svc-c" in d for d in vhost["domains"])


def test_virtual_service_reroutes() -> None:
    out = rds("TestGRPCRDSWithVirtualService", "outbound|8080||svc-a.test.svc.cluster.local")
    [vhost] = out["virtual_hosts"]
    assert "svc-a.test.svc.cluster.local" in vhost["domains"]
    assert vhost["routes"][0]["route"]["cluster"] == "outbound|8080||svc-b.test.svc.cluster.local"


def test_wildcard_virtual_service_host() -> None:
    out = rds("TestGRPCRDSWithWildcardVirtualServiceHost", "outbound|80||foo.example.com")
    [vhost] = out["virtual_hosts"]
    assert "*.example.com" in vhost["domains"] or "*.example.com:80" in vhost["domains"]
    assert "foo.example.com" not in vhost["domains"] and "foo.example.com:80" not in vhost["domains"]
    assert vhost["routes"][0]["route"]["cluster"] == "outbound|80||api.example.net"


def test_subset_route_name() -> None:
    out = rds("TestGRPCRDSSubsetRouteFiltering", "outbound|8080|v1|svc-a.test.svc.cluster.local")
    [vhost] = out["virtual_hosts"]
    assert "svc-a.test.svc.cluster.local" in vhost["domains"]


def test_same_short_name_different_namespaces() -> None:
    out = rds("TestGRPCRDSSameShortNameDifferentNamespaces", "outbound|8080||svc.ns1.svc.cluster.local")
    [vhost] = out["virtual_hosts"]
    assert "svc.ns1.svc.cluster.local" in vhost["domains"]
    assert not any("ns2" in d for d in vhost["domains"])


CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, labels: {version: v1}, locality: us/east-1a}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter, namespace: default}
spec:
  host: greeter
  trafficPolicy:
    connectionPool: {http: {http2MaxRequests: 100, maxRequestsPerConnection: 5}}
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter]
  http:
  - match: [{uri: {prefix: /helloworld.Greeter/}, headers: {x-env: {exact: canary}}}]
    timeout: 3s
    retries: {attempts: 4, perTryTimeout: 1s, retryOn: "5xx,unavailable,resource-exhausted"}
    fault: {delay: {fixedDelay: 100ms, percent: 100}}
    headers: {request: {set: {x-a: b}}}
    route: [{destination: {host: greeter, subset: v1}}]
  - match: [{queryParams: {a: {exact: b}}}]
    route: [{destination: {host: greeter}}]
  - redirect: {uri: /elsewhere}
"""


def _proxyless():
    objects, _ = parse_text(CONFIG, file="c.yaml")
    node = NodeInfo.of(flavour="grpc", namespace="default")
    return translate(objects), node


def test_proxyless_listener_names_and_rds() -> None:
    translation, node = _proxyless()
    for name in ("greeter:50051", "greeter.default:50051", "greeter.default.svc:50051",
                 "greeter.default.svc.cluster.local:50051"):
        listener = translation.resolve(node, type_urls.LISTENER, name)
        assert listener is not None and listener.name == name
        d = json_format.MessageToDict(listener, preserving_proto_field_name=True)
        hcm = d["api_listener"]["api_listener"]
        assert hcm["rds"]["route_config_name"] == "outbound|50051||greeter.default.svc.cluster.local"
        assert [f["name"] for f in hcm["http_filters"]] == ["envoy.filters.http.fault", "envoy.filters.http.router"]
    assert translation.resolve(node, type_urls.LISTENER, "nothing:1") is None
    assert translation.resolve(node, type_urls.LISTENER, "greeter:9999") is None


def test_proxyless_routes_leave_out_what_grpc_clients_reject() -> None:
    translation, node = _proxyless()
    rc = json_format.MessageToDict(translation.resolve(node, type_urls.ROUTE, "outbound|50051||greeter.default.svc.cluster.local"),
                                   preserving_proto_field_name=True)
    [vhost] = rc["virtual_hosts"]
    assert "greeter:50051" in vhost["domains"] and "greeter.default.svc.cluster.local:50051" in vhost["domains"]
    [route] = vhost["routes"]  # the queryParams route and the redirect are left out
    action = route["route"]
    assert action["max_stream_duration"] == {"max_stream_duration": "3s"}  # A31
    assert "timeout" not in action
    assert action["retry_policy"]["retry_on"] == "unavailable,resource-exhausted"  # A44: gRPC codes only
    assert action["retry_policy"]["num_retries"] == 4 and "per_try_timeout" not in action["retry_policy"]
    assert action["hash_policy"] == [{"header": {"header_name": "x-user"}}]  # A42
    assert "request_headers_to_add" not in route
    assert "envoy.filters.http.fault" in route["typed_per_filter_config"]


def test_proxyless_cluster_and_endpoints() -> None:
    translation, node = _proxyless()
    res = translation.for_node(node)
    cluster = json_format.MessageToDict(res[type_urls.CLUSTER]["outbound|50051|v1|greeter.default.svc.cluster.local"],
                                        preserving_proto_field_name=True)
    assert cluster["type"] == "EDS" and cluster["lb_policy"] == "RING_HASH"
    assert cluster["circuit_breakers"] == {"thresholds": [{"max_requests": 100}]}  # A32: only max_requests
    assert "typed_extension_protocol_options" not in cluster
    cla = json_format.MessageToDict(res[type_urls.ENDPOINT]["outbound|50051|v1|greeter.default.svc.cluster.local"],
                                    preserving_proto_field_name=True)
    [locality] = cla["endpoints"]
    assert locality["locality"] == {"region": "us", "zone": "east-1a"} and locality["load_balancing_weight"] == 1


def test_inbound_listener_for_xds_servers() -> None:
    translation, node = _proxyless()
    name = "xds.istio.io/grpc/lds/inbound/0.0.0.0:50051"
    d = json_format.MessageToDict(translation.resolve(node, type_urls.LISTENER, name), preserving_proto_field_name=True)
    assert d["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 50051}
    [chain] = d["filter_chains"]
    hcm = chain["filters"][0]["typed_config"]
    assert hcm["route_config"]["virtual_hosts"][0]["routes"][0]["non_forwarding_action"] == {}
