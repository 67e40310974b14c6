"""Unit tests: shadowed-route analysis, Gateway host intersection, ``bind``, Secret namespaces."""
from __future__ import annotations

import trustme

from translators import ir, type_urls
from translators.diagnostics import Severity
from translators.hosts import split_namespaced
from translators.gateway_view import _server_allows
from translators.node import NodeInfo
from translators.pipeline import translate
from translators.route_analysis import analyze, matches_everything
from xds_server.sources.documents import parse_text

NODE = NodeInfo.of(labels={"istio": "ingressgateway"})

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: grpc, protocol: GRPC}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
"""

# Modelled on Istio's gRPC docs examples: a routing VirtualService and a resilience one for the same host.
GRPC_ROUTING = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: grpc-routing, namespace: default}
spec:
  hosts: [grpc.example.com]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /helloworld.Greeter/SayHello}}]
    route: [{destination: {host: greeter}}]
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: greeter}}]
"""
GRPC_RESILIENCE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: grpc-resilience, namespace: default}
spec:
  hosts: [grpc.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: greeter}}]
    retries: {attempts: 3, retryOn: unavailable}
    timeout: 10s
"""


def diagnostics(*docs: str, code: str | None = None) -> list:
    objects, diags = parse_text("---".join(docs), file="c.yaml")
    assert not diags
    out = translate(objects).diagnostics
    return [d for d in out if code is None or d.code == code]


def test_grpc_docs_examples_loaded_together_report_the_shadowed_routes() -> None:
    [d] = diagnostics(GATEWAY, GRPC_ROUTING, GRPC_RESILIENCE, code="shadowed-route")
    assert d.severity is Severity.WARNING
    assert str(d.object_ref) == "VirtualService/default/grpc-routing" and d.file == "c.yaml"
    assert d.field_path == "spec.http[0]"
    assert "'default/grpc-routing/http[0]', 'default/grpc-routing/http[1]'" in d.message
    assert "route 'default/grpc-resilience/http[0]' of VirtualService/default/grpc-resilience" in d.message
    assert "grpc.example.com (port 8080)" in d.message


def test_each_alone_is_clean() -> None:
    assert diagnostics(GATEWAY, GRPC_ROUTING, code="shadowed-route") == []
    assert diagnostics(GATEWAY, GRPC_RESILIENCE, code="shadowed-route") == []


def test_catch_all_last_is_fine_and_only_later_routes_are_shadowed() -> None:
    vs = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: one, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /a/}}]
    route: [{destination: {host: greeter}}]
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: greeter}}]
  - name: never
    match: [{uri: {prefix: /b/}}]
    route: [{destination: {host: greeter}}]
"""
    [d] = diagnostics(GATEWAY, vs, code="shadowed-route")
    assert "'never'" in d.message and "'default/one/http[1]' of this same object" in d.message
    assert "/a/" not in d.message and "http[0]" not in d.message
    assert d.field_path == ""  # a named route has no derivable index


def test_what_counts_as_matching_everything() -> None:
    every = [ir.RouteMatch(), ir.RouteMatch(path=ir.StringMatch("prefix", "/")),
             ir.RouteMatch(path=ir.StringMatch("regex", ".*")), ir.RouteMatch(port=8080)]
    narrow = [ir.RouteMatch(path=ir.StringMatch("prefix", "/x")), ir.RouteMatch(path=ir.StringMatch("exact", "/")),
              ir.RouteMatch(path=ir.StringMatch("prefix", "/"),
                            headers=(ir.HeaderMatch("x", ir.StringMatch("exact", "1")),)),
              ir.RouteMatch(query_params=(ir.HeaderMatch("q", ir.StringMatch("exact", "1")),))]
    assert all(matches_everything(ir.Route("r", m)) for m in every)
    assert not any(matches_everything(ir.Route("r", m)) for m in narrow)


def test_routes_on_other_hosts_or_ports_are_not_shadowed() -> None:
    other = GRPC_ROUTING.replace("grpc.example.com", "other.example.com")
    assert diagnostics(GATEWAY, other, GRPC_RESILIENCE, code="shadowed-route") == []
    ported = GRPC_RESILIENCE.replace("- route:", "- match: [{port: 9090}]\n    route:")
    assert diagnostics(GATEWAY, GRPC_ROUTING, ported, code="shadowed-route") == []


def test_analysis_is_pure_and_deduplicates_across_hosts() -> None:
    gw = GATEWAY.replace('hosts: ["*"]', "hosts: [a.example.com, b.example.com]")
    vs = GRPC_ROUTING.replace("hosts: [grpc.example.com]", 'hosts: ["*"]')
    resilience = GRPC_RESILIENCE.replace("hosts: [grpc.example.com]", 'hosts: ["*"]')
    objects, _ = parse_text("---".join([gw, vs, resilience]), file="c.yaml")
    model = translate(objects).model
    first, second = analyze(model), analyze(model)
    assert first == second
    [d] = [d for d in first if d.code == "shadowed-route"]
    assert "a.example.com (port 8080), b.example.com (port 8080)" in d.message


WEB = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: default}}
spec:
  hosts: [web.example.com]
  gateways: [gw]
  http:
  - match: [{{headers: {{content-type: {{prefix: application/grpc-web}}}}}}]
    corsPolicy:
      allowOrigins: [{{exact: "https://app.example.com"}}]
      allowHeaders: [content-type, x-grpc-web, x-user-agent, grpc-timeout]
      exposeHeaders: [grpc-status, grpc-message, grpc-status-details-bin]
    route: [{{destination: {{host: greeter}}}}]
  - route: [{{destination: {{host: greeter}}}}]
{catch_all_cors}
"""


def test_grpc_web_cors_route_before_a_catch_all_without_cors_warns() -> None:
    [d] = diagnostics(GATEWAY, WEB.format(catch_all_cors=""), code="grpc-web-preflight-shadowed")
    assert str(d.object_ref) == "VirtualService/default/web" and d.field_path == "spec.http[0]"
    assert "catch-all route 'default/web/http[1]' of VirtualService/default/web" in d.message
    assert "OPTIONS" in d.message


def test_catch_all_with_its_own_cors_policy_handles_preflights() -> None:
    cors = '    corsPolicy: {allowOrigins: [{exact: "https://app.example.com"}]}'
    assert diagnostics(GATEWAY, WEB.format(catch_all_cors=cors), code="grpc-web-preflight-shadowed") == []


# --------------------------------------------------------------------------- hosts


def test_a_star_host_is_intersected_with_every_server_host() -> None:
    server = ir.GatewayServer(80, "http", "HTTP", (("*", "a.example.com"), ("*", "b.example.com")))
    assert _server_allows(server, vs_namespace="default", vs_host="*") == ["a.example.com", "b.example.com"]
    assert _server_allows(server, vs_namespace="default", vs_host="b.example.com") == ["b.example.com"]
    assert _server_allows(server, vs_namespace="default", vs_host="c.example.com") == []
    scoped = ir.GatewayServer(80, "http", "HTTP", (split_namespaced("other/a.example.com", default_namespace="x"),
                                                   ("*", "*.example.com")))
    assert _server_allows(scoped, vs_namespace="default", vs_host="*") == ["*.example.com"]


def test_both_server_hosts_get_a_virtual_host() -> None:
    gw = GATEWAY.replace('hosts: ["*"]', "hosts: [a.example.com, b.example.com]")
    vs = GRPC_RESILIENCE.replace("hosts: [grpc.example.com]", 'hosts: ["*"]')
    objects, _ = parse_text(gw + "---" + vs, file="c.yaml")
    [rc] = translate(objects).for_node(NODE)[type_urls.ROUTE].values()
    assert sorted(d for v in rc.virtual_hosts for d in v.domains) == ["a.example.com", "b.example.com"]


# --------------------------------------------------------------------------- bind


def _bind_gateway(*binds: str) -> str:
    servers = "".join(f"  - port: {{number: 8080, name: grpc-{i}, protocol: GRPC}}\n    hosts: ['*']\n" +
                      (f"    bind: {b!r}\n" if b is not None else "") for i, b in enumerate(binds))
    return ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n"
            "spec:\n  selector: {istio: ingressgateway}\n  servers:\n" + servers)


def _listeners(*binds: str) -> dict:
    objects, _ = parse_text(_bind_gateway(*binds) + "---" + GRPC_RESILIENCE.replace(
        "hosts: [grpc.example.com]", 'hosts: ["*"]'), file="c.yaml")
    t = translate(objects)
    return t.for_node(NODE)[type_urls.LISTENER], t.for_node(NODE)[type_urls.ROUTE], t.diagnostics


def test_bind_sets_the_listener_address_and_istio_names() -> None:
    listeners, routes, _ = _listeners(None, "127.0.0.1", "::1", "0.0.0.0")
    assert {n: l.address.socket_address.address for n, l in listeners.items()} == {
        "0.0.0.0_8080": "0.0.0.0", "127.0.0.1_8080": "127.0.0.1", "::1_8080": "::1"}
    assert sorted(routes) == ["http.8080", "http.8080.127.0.0.1", "http.8080.::1"]
    from translators.builders.proto import pack  # noqa: F401 - the HCM's RDS name must follow the listener
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
    manager = hcm.HttpConnectionManager()
    listeners["127.0.0.1_8080"].filter_chains[0].filters[0].typed_config.Unpack(manager)
    assert manager.rds.route_config_name == "http.8080.127.0.0.1"


def test_a_bad_bind_is_an_error_and_unix_sockets_are_unsupported() -> None:
    _, _, diags = _listeners("not-an-ip")
    assert any(d.severity is Severity.ERROR and d.field_path == "spec.servers[0].bind" for d in diags)
    listeners, _, diags = _listeners("unix:///var/run/gw.sock", None)
    assert list(listeners) == ["0.0.0.0_8080"]
    assert any(d.code == "unsupported" and d.field_path == "spec.servers[0].bind" for d in diags)


# --------------------------------------------------------------------------- Secret namespaces


_CA = trustme.CA()
_CERT = _CA.issue_cert("secure.example.com")


def _pem_block(pem: bytes) -> str:
    return "\n".join("    " + line for line in pem.decode().strip().splitlines())


def _secret(name: str, namespace: str, *, ca: bool = False) -> str:
    extra = f"  ca.crt: |\n{_pem_block(_CA.cert_pem.bytes())}\n" if ca else ""
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
            "type: kubernetes.io/tls\nstringData:\n"
            f"  tls.crt: |\n{_pem_block(b''.join(p.bytes() for p in _CERT.cert_chain_pems))}\n"
            f"  tls.key: |\n{_pem_block(_CERT.private_key_pem.bytes())}\n" + extra)


def _tls_gateway(mode: str = "SIMPLE") -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: default}\n"
            "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
            "  - port: {number: 8443, name: https, protocol: HTTPS}\n    hosts: [secure.example.com]\n"
            f"    tls: {{mode: {mode}, credentialName: edge-cert}}\n")


def _secret_diags(*docs: str) -> list:
    objects, _ = parse_text("\n---\n".join(docs), file="s.yaml")
    return [d for d in translate(objects).diagnostics if d.code in ("unknown-secret", "secret-namespace")]


def test_secret_in_another_namespace_is_info_naming_the_envoy_namespace() -> None:
    [d] = _secret_diags(_tls_gateway(), _secret("edge-cert", "istio-system"))
    assert d.severity is Severity.INFO and d.field_path == "spec.servers[0].tls.credentialName"
    assert "found in istio-system" in d.message
    assert "run the Envoy with `xds-server bootstrap envoy --namespace istio-system`" in d.message


def test_secret_in_the_gateway_namespace_is_silent_and_missing_everywhere_warns() -> None:
    assert _secret_diags(_tls_gateway(), _secret("edge-cert", "default")) == []
    [d] = _secret_diags(_tls_gateway(), _secret("other-cert", "istio-system"))
    assert d.severity is Severity.WARNING and "in any namespace" in d.message


def test_mutual_needs_the_ca_in_a_namespace_that_has_the_cert() -> None:
    [d] = _secret_diags(_tls_gateway("MUTUAL"), _secret("edge-cert", "istio-system"))
    assert d.severity is Severity.WARNING and "client CA" in d.message
    [d] = _secret_diags(_tls_gateway("MUTUAL"), _secret("edge-cert", "istio-system", ca=True))
    assert d.severity is Severity.INFO and "--namespace istio-system" in d.message
