"""Gateway API attachment, status and HTTPRoute, as the spec defines them (pure translation; the ported
upstream suite in ``tests/test_gateway_api_conformance.py`` runs the same through a real Envoy)."""
from __future__ import annotations

import pytest

from translators.node import NodeInfo
from translators.pipeline import translate
from translators.render import render
from xds_server.sources.documents import parse_text

GW = "gateway.networking.k8s.io/v1"
NODE = NodeInfo.of(namespace="infra", labels={"gateway.networking.k8s.io/gateway-name": "gw"})

BASE = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: apps, labels: {{team: blue}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: other, labels: {{team: red}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: v1, namespace: infra}}
spec: {{ports: [{{name: grpc, port: 8080, appProtocol: grpc}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: v2, namespace: infra}}
spec: {{ports: [{{name: grpc, port: 8080, appProtocol: grpc}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: v3, namespace: infra}}
spec: {{ports: [{{name: grpc, port: 8080, appProtocol: grpc}}]}}
---
apiVersion: {GW}
kind: Gateway
metadata: {{name: gw, namespace: infra, generation: 7}}
spec:
  gatewayClassName: xds-server
  listeners:
  - {{name: listener-1, port: 80, protocol: HTTP, hostname: bar.com}}
  - {{name: listener-2, port: 80, protocol: HTTP, hostname: foo.bar.com}}
  - {{name: listener-3, port: 80, protocol: HTTP, hostname: "*.bar.com"}}
  - {{name: listener-4, port: 80, protocol: HTTP, hostname: "*.foo.com"}}
  - name: selected
    port: 81
    protocol: HTTP
    allowedRoutes: {{namespaces: {{from: Selector, selector: {{matchLabels: {{team: blue}}}}}}}}
  - name: grpc-only
    port: 82
    protocol: HTTP
    allowedRoutes: {{namespaces: {{from: All}}, kinds: [{{kind: GRPCRoute}}, {{kind: TCPRoute}}]}}
"""


def route(kind: str, name: str, *, ns: str = "infra", parents: str, backend: str = "v1", hostnames: str = "",
          rules: str = "") -> str:
    rules = rules or f"[{{backendRefs: [{{name: {backend}, namespace: infra, port: 8080}}]}}]"
    host = f"\n  hostnames: {hostnames}" if hostnames else ""
    return f"""
---
apiVersion: {GW}
kind: {kind}
metadata: {{name: {name}, namespace: {ns}, generation: 3}}
spec:
  parentRefs: {parents}{host}
  rules: {rules}
"""


GRANT = """
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: to-infra, namespace: infra}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps},
         {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: other},
         {group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: other}]
  to: [{group: "", kind: Service}]
"""


def _translate(text: str):
    objects, diags = parse_text(text, file="t.yaml")
    assert diags == []
    return translate(objects)


def _vhosts(t, port: int) -> dict[str, list[dict]]:
    out = render(t, NODE)
    [rc] = [r for r in out["RDS"] if r["name"] == f"http.{port}"]
    return {v["domains"][0]: v["routes"] for v in rc.get("virtual_hosts", ())}


def _cluster(r: dict) -> str:
    return r["route"]["cluster"].split("|")[-1].split(".")[0]


def test_section_name_binds_to_one_listener_and_hostnames_intersect() -> None:
    """Upstream's grpcroute-listener-hostname-matching: each route only on the listeners it names."""
    text = BASE + route("GRPCRoute", "r1", parents="[{name: gw, sectionName: listener-1}]", backend="v1") + \
        route("GRPCRoute", "r2", parents="[{name: gw, sectionName: listener-2}]", backend="v2") + \
        route("GRPCRoute", "r3", parents="[{name: gw, sectionName: listener-3}, {name: gw, sectionName: listener-4}]",
              backend="v3")
    vhosts = _vhosts(_translate(text), 80)
    assert {h: [_cluster(r) for r in rs] for h, rs in vhosts.items()} == {
        "bar.com": ["v1"], "foo.bar.com": ["v2"], "*.bar.com": ["v3"], "*.foo.com": ["v3"]}


def test_route_hostnames_that_match_no_listener_are_not_attached() -> None:
    t = _translate(BASE + route("HTTPRoute", "nomatch", parents="[{name: gw, sectionName: listener-1}]",
                                hostnames="[other.example]"))
    parent = t.statuses[next(r for r in t.statuses if r.name == "nomatch")]["parents"][0]
    accepted = next(c for c in parent["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "NoMatchingListenerHostname")
    assert accepted["observedGeneration"] == 3
    assert _vhosts(t, 80) == {}  # the only route matched no listener hostname


@pytest.mark.parametrize("ns, reason", [("apps", "Accepted"), ("other", "NotAllowedByListeners")])
def test_allowed_routes_namespace_selector(ns: str, reason: str) -> None:
    t = _translate(BASE + GRANT + route("HTTPRoute", "sel", ns=ns, parents="[{name: gw, namespace: infra, "
                                                                            "sectionName: selected}]"))
    parent = t.statuses[next(r for r in t.statuses if r.name == "sel")]["parents"][0]
    assert next(c for c in parent["conditions"] if c["type"] == "Accepted")["reason"] == reason


def test_allowed_route_kinds_and_invalid_kinds() -> None:
    t = _translate(BASE + GRANT + route("HTTPRoute", "h", ns="other", parents="[{name: gw, namespace: infra, "
                                                                             "sectionName: grpc-only}]")
                   + route("GRPCRoute", "g", ns="other", parents="[{name: gw, namespace: infra, sectionName: grpc-only}]"))
    by_name = {r.name: s for r, s in t.statuses.items()}
    assert next(c for c in by_name["h"]["parents"][0]["conditions"] if c["type"] == "Accepted")["reason"] == \
        "NotAllowedByListeners"
    assert next(c for c in by_name["g"]["parents"][0]["conditions"] if c["type"] == "Accepted")["status"] == "True"
    listener = next(l for l in by_name["gw"]["listeners"] if l["name"] == "grpc-only")
    assert listener["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}]
    resolved = next(c for c in listener["conditions"] if c["type"] == "ResolvedRefs")
    assert (resolved["status"], resolved["reason"]) == ("False", "InvalidRouteKinds")
    assert listener["attachedRoutes"] == 1


def test_gateway_status_has_every_listener_condition_addresses_and_generation() -> None:
    objects, _ = parse_text(BASE + route("GRPCRoute", "r1", parents="[{name: gw, sectionName: listener-1}]"),
                            file="t.yaml")
    t = translate(objects, gateway_addresses=("10.0.0.9",))
    status = next(s for r, s in t.statuses.items() if r.kind == "Gateway")
    assert status["addresses"] == [{"type": "IPAddress", "value": "10.0.0.9"}]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Accepted": "True", "Programmed": "True"}
    assert all(c["observedGeneration"] == 7 for c in status["conditions"])
    l1 = next(l for l in status["listeners"] if l["name"] == "listener-1")
    assert {c["type"]: c["status"] for c in l1["conditions"]} == {
        "Accepted": "True", "ResolvedRefs": "True", "Programmed": "True", "Conflicted": "False"}
    assert l1["attachedRoutes"] == 1
    assert next(l for l in status["listeners"] if l["name"] == "listener-2")["attachedRoutes"] == 0


def test_https_listener_with_a_missing_secret_is_invalid_certificate_ref() -> None:
    text = BASE.replace("  - name: selected", "  - {name: tls, port: 443, protocol: HTTPS, tls: {certificateRefs: "
                        "[{name: missing}]}}\n  - name: selected")
    status = next(s for r, s in _translate(text).statuses.items() if r.kind == "Gateway")
    tls = next(l for l in status["listeners"] if l["name"] == "tls")
    resolved = next(c for c in tls["conditions"] if c["type"] == "ResolvedRefs")
    assert (resolved["status"], resolved["reason"]) == ("False", "InvalidCertificateRef")


def test_a_service_labelled_with_the_gateway_name_gives_its_addresses() -> None:
    text = BASE + """
---
apiVersion: v1
kind: Service
metadata: {name: gw-envoy, namespace: infra, labels: {gateway.networking.k8s.io/gateway-name: gw}}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}
status: {loadBalancer: {ingress: [{ip: 203.0.113.7}]}}
"""
    status = next(s for r, s in _translate(text).statuses.items() if r.kind == "Gateway")
    assert status["addresses"] == [{"type": "IPAddress", "value": "203.0.113.7"}]


HTTP_RULES = """
  - matches: [{path: {type: Exact, value: /exact}}]
    backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /prefix}}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: rewritten.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    backendRefs: [{name: v2, port: 8080, weight: 80}, {name: v3, port: 8080, weight: 20}]
    timeouts: {request: 10s}
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]
  - matches: [{method: POST, headers: [{name: x-env, value: canary}], queryParams: [{name: debug, value: "1"}]}]
    backendRefs: [{name: v3, port: 8080}]
"""


def test_http_route_matches_filters_weights_and_precedence() -> None:
    rules = "\n" + HTTP_RULES.replace("\n  ", "\n    ")
    t = _translate(BASE + route("HTTPRoute", "web", parents="[{name: gw, sectionName: listener-1}]",
                                rules=rules.replace("\n", "\n  ")))
    routes = _vhosts(t, 80)["bar.com"]
    assert [r["match"].get("path") or r["match"].get("path_separated_prefix") or r["match"].get("prefix")
            for r in routes] == ["/exact", "/prefix", "/old", "/"]
    exact, prefix, old, catch = routes
    assert prefix["route"]["weighted_clusters"]["clusters"][0]["weight"] == 80
    assert prefix["route"]["host_rewrite_literal"] == "rewritten.example"
    assert prefix["route"]["regex_rewrite"]["substitution"] == "/"
    assert prefix["route"]["timeout"] == "10s"
    assert old["redirect"]["prefix_rewrite"] == "/new" and old["redirect"]["scheme_redirect"] == "https"
    assert {h["name"] for h in catch["match"]["headers"]} == {"x-env", ":method"}
    assert catch["match"]["query_parameters"][0]["name"] == "debug"


def test_grpc_and_http_routes_share_a_listener_by_precedence() -> None:
    """The ALB guide's case from Gateway API: gRPC and non-gRPC services behind one listener."""
    http = route("HTTPRoute", "web", parents="[{name: gw, sectionName: listener-1}]", backend="v1")
    grpc = route("GRPCRoute", "api", parents="[{name: gw, sectionName: listener-1}]", backend="v2",
                 rules="[{matches: [{method: {service: helloworld.Greeter}}], backendRefs: [{name: v2, port: 8080}]}]")
    routes = _vhosts(_translate(BASE + http + grpc), 80)["bar.com"]
    assert [(r["match"].get("prefix"), _cluster(r)) for r in routes] == [("/helloworld.Greeter/", "v2"), ("/", "v1")]


def _accepted(t, name: str) -> tuple[str, str]:
    parent = t.statuses[next(r for r in t.statuses if r.name == name and r.kind != "Gateway")]["parents"][0]
    c = next(c for c in parent["conditions"] if c["type"] == "Accepted")
    return c["status"], c["reason"]


def test_listener_isolation_a_more_specific_listener_takes_its_hosts() -> None:
    """Upstream's GatewayHTTPListenerIsolation: a request goes to the most specific listener of its port, so
    hosts of a route on ``*.bar.com`` that listener-2 (``foo.bar.com``) covers are not served through it."""
    text = BASE + route("HTTPRoute", "wide", parents="[{name: gw, sectionName: listener-3}]", backend="v1",
                        hostnames="[foo.bar.com, x.bar.com]") + \
        route("HTTPRoute", "narrow", parents="[{name: gw, sectionName: listener-2}]", backend="v2")
    t = _translate(text)
    vhosts = _vhosts(t, 80)
    assert {h: [_cluster(r) for r in rs] for h, rs in vhosts.items()} == {"foo.bar.com": ["v2"], "x.bar.com": ["v1"]}
    status = next(s for r, s in t.statuses.items() if r.kind == "Gateway")
    assert {l["name"]: l["attachedRoutes"] for l in status["listeners"]}["listener-3"] == 1


def test_listener_isolation_route_with_every_host_taken_still_counts_as_attached() -> None:
    t = _translate(BASE + route("HTTPRoute", "taken", parents="[{name: gw, sectionName: listener-3}]",
                                hostnames="[foo.bar.com]"))
    assert _accepted(t, "taken") == ("True", "Accepted")
    assert _vhosts(t, 80) == {}
    status = next(s for r, s in t.statuses.items() if r.kind == "Gateway")
    assert {l["name"]: l["attachedRoutes"] for l in status["listeners"]}["listener-3"] == 1


def test_unsupported_protocol_listener_and_gateway_listeners_not_valid() -> None:
    """Upstream's GatewayListenerUnsupportedProtocol; a route naming that listener is NotAllowedByListeners."""
    text = BASE.replace("  - name: selected", "  - {name: invalid, port: 1111, protocol: INVALID}\n  - name: selected") \
        + f"""
---
apiVersion: {GW}
kind: Gateway
metadata: {{name: only-invalid, namespace: infra, generation: 2}}
spec:
  gatewayClassName: xds-server
  listeners: [{{name: invalid, port: 1111, protocol: INVALID}}]
""" + route("HTTPRoute", "to-invalid", parents="[{name: gw, sectionName: invalid}]")
    t = _translate(text)
    gws = {r.name: s for r, s in t.statuses.items() if r.kind == "Gateway"}
    conds = {n: next(c for c in s["conditions"] if c["type"] == "Accepted") for n, s in gws.items()}
    assert (conds["gw"]["status"], conds["gw"]["reason"]) == ("True", "ListenersNotValid")
    assert (conds["only-invalid"]["status"], conds["only-invalid"]["reason"]) == ("False", "ListenersNotValid")
    invalid = next(l for l in gws["gw"]["listeners"] if l["name"] == "invalid")
    assert invalid["supportedKinds"] == [] and invalid["attachedRoutes"] == 0
    accepted = next(c for c in invalid["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "UnsupportedProtocol")
    assert _accepted(t, "to-invalid") == ("False", "NotAllowedByListeners")


@pytest.mark.parametrize("ns, reason", [("apps", "Accepted"), ("other", "NotAllowedByListeners")])
def test_namespace_selector_on_the_namespace_name_label(ns: str, reason: str) -> None:
    """``kubernetes.io/metadata.name`` is on every Namespace (Kubernetes 1.22+), even when not written."""
    text = BASE.replace("{matchLabels: {team: blue}}", "{matchLabels: {kubernetes.io/metadata.name: apps}}")
    t = _translate(text + GRANT + route("HTTPRoute", "sel", ns=ns, parents="[{name: gw, namespace: infra, "
                                                                           "sectionName: selected}]"))
    assert _accepted(t, "sel")[1] == reason


def test_gateway_class_with_our_controller_name_is_accepted_at_its_generation() -> None:
    t = _translate(BASE + f"""
---
apiVersion: {GW}
kind: GatewayClass
metadata: {{name: another-class, generation: 4}}
spec: {{controllerName: xds-server.io/gateway-controller}}
---
apiVersion: {GW}
kind: GatewayClass
metadata: {{name: not-ours, generation: 1}}
spec: {{controllerName: example.com/other}}
""")
    classes = {r.name: s for r, s in t.statuses.items() if r.kind == "GatewayClass"}
    assert list(classes) == ["another-class"]
    [c] = classes["another-class"]["conditions"]
    assert (c["type"], c["status"], c["observedGeneration"]) == ("Accepted", "True", 4)


def test_a_cross_namespace_certificate_is_served_only_with_a_reference_grant() -> None:
    """A Gateway's certificateRef to a Secret in another namespace: refused without a ReferenceGrant
    (RefNotPermitted); with one, the Envoy of that Gateway gets it as kubernetes://NS/NAME, and nothing
    else from that namespace."""
    from tests.test_tls_translation import secret
    from translators import type_urls

    gateway = f"""
apiVersion: {GW}
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: xds-server
  listeners: [{{name: tls, port: 443, protocol: HTTPS, tls: {{certificateRefs: [{{name: shared, namespace: certs}}]}}}}]
"""
    grant = """
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: gateways, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra}]
  to: [{group: "", kind: Secret, name: shared}]
"""
    base = gateway + "---" + secret("shared", "certs") + "---" + secret("other", "certs")
    for text, served in ((base, False), (base + grant, True)):
        t = _translate(text)
        status = next(s for r, s in t.statuses.items() if r.kind == "Gateway")
        resolved = next(c for c in status["listeners"][0]["conditions"] if c["type"] == "ResolvedRefs")
        assert (resolved["status"] == "True") is served, resolved
        got = t.for_node(NODE)
        assert sorted(got[type_urls.SECRET]) == (["kubernetes://certs/shared"] if served else [])
        assert bool(got[type_urls.LISTENER]) is served
