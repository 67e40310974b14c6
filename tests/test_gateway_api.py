"""Gateway API: GRPCRoute into the same IR as VirtualService, checked against Istio's conversion
goldens (``tests/corpus/istio-gateway-api``) and the spec's ReferenceGrant rules."""
from __future__ import annotations

from pathlib import Path

import pytest

from translators import type_urls as T
from translators.node import NodeInfo
from translators.pipeline import translate
from translators.render import render
from xds_server.sources.documents import parse_text
from xds_server.sources.files import load_dirs

CORPUS = Path(__file__).resolve().parent / "corpus" / "istio-gateway-api"
HTTPBIN = """
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: default}
spec: {ports: [{name: grpc, port: 80, appProtocol: grpc}]}
"""
GATEWAY_NODE = NodeInfo.of(namespace="istio-system", labels={"gateway.networking.k8s.io/gateway-name": "gateway"})


def test_grpc_route_matches_istio_conversion(tmp_path: Path) -> None:
    (tmp_path / "httpbin.yaml").write_text(HTTPBIN)
    objects, _ = load_dirs([CORPUS / "grpc.yaml", tmp_path])
    translation = translate(objects, gateway_class="istio")
    out = render(translation, GATEWAY_NODE)
    assert [l["name"] for l in out["LDS"]] == ["0.0.0.0_80"]
    [rc] = out["RDS"]
    vhosts = {v["domains"][0]: v["routes"] for v in rc["virtual_hosts"]}
    assert set(vhosts) == {"first.domain.example", "another.domain.example"}
    first, second = vhosts["first.domain.example"]
    assert first["match"] == {"prefix": "/foo/", "headers": [{"name": "my-header", "string_match": {"exact": "some-value"}}]}
    # append (APPEND_IF_EXISTS_OR_ADD is the default, so it is not printed)
    assert first["request_headers_to_add"] == [{"header": {"key": "my-added-header", "value": "added-value"}}]
    assert first["request_headers_to_remove"] == ["my-removed-header"]
    assert first["route"]["cluster"] == "outbound|80||httpbin.default.svc.cluster.local"
    assert second["match"] == {"safe_regex": {"regex": "/[^/]+/bar"}}
    statuses = {str(k): v for k, v in translation.statuses.items()}
    route_status = statuses["GRPCRoute/default/grpc"]["parents"][0]
    assert [(c["type"], c["status"]) for c in route_status["conditions"]] == [("Accepted", "True"), ("ResolvedRefs", "True")]
    assert statuses["Gateway/istio-system/gateway"]["listeners"][0]["attachedRoutes"] == 1
    # an Istio-labelled Envoy does not get Gateway API listeners, and vice versa
    assert render(translation, NodeInfo.of(labels={"istio": "ingressgateway"}))["LDS"] == []


def test_missing_backend_is_backend_not_found_and_unavailable() -> None:
    objects, _ = load_dirs([CORPUS / "http-grpc-same-host.yaml"])
    translation = translate(objects, gateway_class="istio")
    statuses = {str(k): v for k, v in translation.statuses.items()}
    grpc_routes = [v for k, v in statuses.items() if k.startswith("GRPCRoute/")]
    conditions = {c["type"]: c for c in grpc_routes[0]["parents"][0]["conditions"]}
    assert conditions["ResolvedRefs"]["status"] == "False" and conditions["ResolvedRefs"]["reason"] == "BackendNotFound"
    out = render(translation, NodeInfo.of(namespace="istio-system", labels={"gateway.networking.k8s.io/gateway-name": "gateway"}))
    assert "blackhole|refused-backend" in {c["name"] for c in out["CDS"]}


CROSS_NS = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  gatewayClassName: xds-server
  listeners: [{name: grpc, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: backend}
spec: {ports: [{name: grpc, port: 50051}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: r, namespace: apps}
spec:
  parentRefs: [{name: gw, namespace: edge}]
  rules:
  - matches: [{method: {service: pkg.Api, method: Call}}]
    backendRefs:
    - {name: api, namespace: backend, port: 50051, weight: 80}
    - {name: api, namespace: backend, port: 50051, weight: 20}
"""

GRANT = """
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-apps, namespace: backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: apps}]
  to: [{group: "", kind: Service}]
"""


@pytest.mark.parametrize("grant,cluster,resolved", [
    ("", "blackhole|refused-backend", ("False", "RefNotPermitted")),
    (GRANT, "outbound|50051||api.backend.svc.cluster.local", ("True", "ResolvedRefs")),
])
def test_cross_namespace_backend_needs_a_reference_grant(grant: str, cluster: str, resolved: tuple) -> None:
    objects, _ = parse_text(CROSS_NS + grant, file="x.yaml")
    translation = translate(objects)
    node = NodeInfo.of(namespace="edge", labels={"gateway.networking.k8s.io/gateway-name": "gw"})
    rc = translation.for_node(node)[T.ROUTE]["http.8080"]
    [vhost] = rc.virtual_hosts
    [route] = vhost.routes
    assert route.match.path == "/pkg.Api/Call"
    assert [(w.name, w.weight.value) for w in route.route.weighted_clusters.clusters] == [(cluster, 80), (cluster, 20)]
    conditions = {c["type"]: c for c in translation.statuses[next(k for k in translation.statuses if k.kind == "GRPCRoute")]
                  ["parents"][0]["conditions"]}
    assert (conditions["ResolvedRefs"]["status"], conditions["ResolvedRefs"]["reason"]) == resolved
    assert conditions["Accepted"]["status"] == "True"


def test_gateway_of_another_class_is_not_ours() -> None:
    objects, _ = parse_text(CROSS_NS.replace("gatewayClassName: xds-server", "gatewayClassName: other"), file="x.yaml")
    translation = translate(objects)
    node = NodeInfo.of(namespace="edge", labels={"gateway.networking.k8s.io/gateway-name": "gw"})
    assert translation.for_node(node)[T.LISTENER] == {}
    [status] = [v for k, v in translation.statuses.items() if k.kind == "GRPCRoute"]
    assert status["parents"][0]["conditions"][0]["reason"] == "NoMatchingParent"


def test_invalid_istio_objects_get_a_status_an_istio_user_recognises() -> None:
    text = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken, namespace: default}
spec:
  hosts: ["*"]
  http: [{timeout: soon, route: [{destination: {host: x, port: {number: 1}}}]}]
"""
    objects, _ = parse_text(text, file="k8s:VirtualService.networking.istio.io/default/broken")
    translation = translate(objects)
    [status] = [v for k, v in translation.statuses.items() if k.name == "broken"]
    assert status["validationMessages"][0]["level"] == "ERROR"
    assert "spec.http[0].timeout" in status["validationMessages"][0]["message"]
    assert status["conditions"][0]["type"] == "Reconciled" and status["conditions"][0]["status"] == "False"
