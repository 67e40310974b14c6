"""Unit tests for the pure helpers: field readers, hosts, node info, redaction, documents."""
from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2

from translators.diagnostics import Reporter
from translators.ir import is_h2_port
from translators import fields
from translators.hosts import Registry, fqdn, intersect, matches, split_namespaced
from translators.ir import Service, ServicePort
from xds_server.nodes import node_info
from xds_server.redact import redact
from xds_server.sources.documents import LoadError, parse_text


def rep() -> Reporter:
    return Reporter(file="f.yaml", ref=None)


@pytest.mark.parametrize("text,seconds", [
    ("1s", 1.0), ("100ms", 0.1), ("1.5s", 1.5), ("1m30s", 90.0), ("2h", 7200.0), ("0s", 0.0), ("250us", None),
])
def test_duration(text: str, seconds: float | None) -> None:
    r = rep()
    assert fields.duration(text, "spec.timeout", r) == seconds
    assert r.failed == (seconds is None)


@pytest.mark.parametrize("value", ["5 seconds", "10", 10, "-1s", "s"])
def test_duration_rejects(value) -> None:
    r = rep()
    assert fields.duration(value, "spec.timeout", r) is None
    assert r.items[0].field_path == "spec.timeout"


@pytest.mark.parametrize("regex,ok", [("/a.*", True), ("(?=x)", False), ("(a)\\1", False), ("[", False), ("(?P<n>a)", True)])
def test_regex_is_checked_for_re2(regex: str, ok: bool) -> None:
    r = rep()
    assert (fields.regex(regex, "x", r) is not None) == ok


def test_string_match_exactly_one() -> None:
    r = rep()
    assert fields.string_match({"exact": "a", "prefix": "b"}, "m", r) is None
    assert "exactly one" in r.items[0].message
    assert fields.string_match({}, "m", rep()).kind == "present"


@pytest.mark.parametrize("pattern,host,expected", [
    ("*", "a.b", True), ("*.example.com", "api.example.com", True), ("*.example.com", "example.com", False),
    ("api.example.com", "api.example.com", True), ("*.example.com", "*.api.example.com", True),
    ("a.example.com", "b.example.com", False),
])
def test_host_matches(pattern: str, host: str, expected: bool) -> None:
    assert matches(pattern, host) is expected


def test_intersect_picks_the_more_specific() -> None:
    assert intersect("*", "api.example.com") == "api.example.com"
    assert intersect("api.example.com", "*.example.com") == "api.example.com"
    assert intersect("a.com", "b.com") is None


def test_split_namespaced() -> None:
    assert split_namespaced("prod/*.example.com", default_namespace="gw") == ("prod", "*.example.com")
    assert split_namespaced("./api.example.com", default_namespace="gw") == ("gw", "api.example.com")
    assert split_namespaced("*", default_namespace="gw") == ("*", "*")


def test_registry_resolution() -> None:
    reg = Registry([Service("greeter.default.svc.cluster.local", "default", (ServicePort(50051),)),
                    Service("api.partner.example", "default", (ServicePort(443),))])
    assert reg.resolve("greeter", "default") == "greeter.default.svc.cluster.local"
    assert reg.resolve("greeter.default", "other") == "greeter.default.svc.cluster.local"
    assert reg.resolve("api.partner.example", "x") == "api.partner.example"
    assert reg.resolve("unknown", "ns") == "unknown.ns.svc.cluster.local"
    assert fqdn("x", "y") == "x.y.svc.cluster.local"


@pytest.mark.parametrize("protocol,name,h2", [
    ("GRPC", "", True), ("grpc-web", "", True), ("HTTP2", "", True), ("", "grpc", True), ("", "grpc-api", True),
    ("", "http2-admin", True), ("", "grpc-web", True), ("HTTP", "grpc", False) if False else ("HTTP", "web", False),
    ("", "http", False), ("TCP", "", False),
])
def test_h2_detection(protocol: str, name: str, h2: bool) -> None:
    assert is_h2_port(protocol=protocol, name=name) is h2


def _node(meta: dict, user_agent: str = "envoy") -> base_pb2.Node:
    s = struct_pb2.Struct()
    s.update(meta)
    return base_pb2.Node(id="n", metadata=s, user_agent_name=user_agent)


def test_node_info_labels_namespace_flavour() -> None:
    info = node_info(_node({"labels": {"istio": "ingressgateway"}, "NAMESPACE": "edge"}))
    assert (info.flavour, info.namespace, info.label_map) == ("envoy", "edge", {"istio": "ingressgateway"})
    assert node_info(_node({"LABELS": {"app": "gw"}})).label_map == {"app": "gw"}
    assert node_info(_node({})).namespace == "default"
    assert node_info(_node({"GENERATOR": "grpc"})).flavour == "grpc"
    assert node_info(_node({}, user_agent="gRPC Python")).flavour == "grpc"


def test_redact_private_keys() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    text = f"Failed to load private key: {key} and private_key: {{inline_string: 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'}}"
    out = redact(text)
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in out
    assert "[redacted]" in out


def test_documents_multi_doc_list_and_errors() -> None:
    text = """
apiVersion: v1
kind: List
items:
- {apiVersion: networking.istio.io/v1, kind: Gateway, metadata: {name: a}, spec: {}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: x}
spec: {hosts: [h]}
---
just a string
---
kind: Gateway
metadata: {name: c}
"""
    objects, diags = parse_text(text, file="cfg.yaml")
    assert [str(o.ref) for o in objects] == ["Gateway/default/a", "VirtualService/x/b"]
    assert objects[0].ref.group == "networking.istio.io"
    assert [d.format() for d in diags] == [
        "cfg.yaml: document 3: expected a mapping with apiVersion and kind, got str",
        "cfg.yaml: apiVersion: document 4 (Gateway) has no apiVersion",
    ]


def test_documents_bad_yaml_names_line() -> None:
    with pytest.raises(LoadError) as exc:
        parse_text("a: [1, 2\nb: c\n", file="bad.yaml")
    assert exc.value.diagnostic.format().startswith("bad.yaml: invalid YAML: line ")


def test_route_configuration_assembled_from_cached_virtual_hosts_is_byte_identical() -> None:
    """One edited route re-serializes one virtual host; the bytes equal a from-scratch build."""
    from translators.builders.routes import assemble_route_configuration, build_route_configuration
    from translators.gateway_view import gateway_listeners
    from translators.pipeline import translate
    from bench.config_gen import config
    model = translate(config(30)).model
    [listener] = gateway_listeners(model, labels={"istio": "ingressgateway"}, namespace="default")
    expected = build_route_configuration(listener.route_config, listener.virtual_hosts,
                                         grpc_web=listener.grpc_web).SerializeToString(deterministic=True)
    first: dict = {}
    built = assemble_route_configuration(listener.route_config, listener.virtual_hosts, grpc_web=listener.grpc_web,
                                         previous={}, current=first)
    assert built.SerializeToString() == expected
    [parts] = [v for k, v in first.items() if k[0] == "route-configuration-parts"]
    assert len(parts[1]) == 30  # one cached entry (bytes, cluster refs) per virtual host
    again: dict = {}
    reused = assemble_route_configuration(listener.route_config, listener.virtual_hosts,
                                          grpc_web=listener.grpc_web, previous=first, current=again)
    assert reused is built, "the same virtual hosts give the very same assembled configuration"
    one_changed = listener.virtual_hosts[:-1] + (type(listener.virtual_hosts[-1])(
        name=listener.virtual_hosts[-1].name, domains=listener.virtual_hosts[-1].domains,
        routes=listener.virtual_hosts[-1].routes),)
    again = {}
    partly = assemble_route_configuration(listener.route_config, one_changed, grpc_web=listener.grpc_web,
                                          previous=first, current=again)
    assert partly.SerializeToString() == expected
    [new_parts] = [v for k, v in again.items() if k[0] == "route-configuration-parts"]
    reused_parts = [i for i, (a, b) in enumerate(zip(parts[1], new_parts[1])) if a is b]
    assert len(reused_parts) == 29, "unchanged virtual hosts reuse their bytes"
    # a host that comes or goes: the others still reuse theirs
    fewer = listener.virtual_hosts[1:]
    gone = assemble_route_configuration(listener.route_config, fewer, grpc_web=listener.grpc_web, previous=again,
                                        current={})
    assert gone.SerializeToString() == build_route_configuration(
        listener.route_config, fewer, grpc_web=listener.grpc_web).SerializeToString(deterministic=True)
    assert built.name == listener.route_config and len(built.virtual_hosts) == 30  # parsed on demand
    assert "outbound|50051|v1|svc-3.default.svc.cluster.local" in built.cluster_refs


def test_hosts_that_differ_only_in_case_are_one_virtual_host() -> None:
    """Envoy compares domains case-insensitively and rejects a route configuration with the same domain
    twice: two spellings of one host merge into one virtual host instead."""
    from translators.node import NodeInfo
    from translators.pipeline import translate
    from translators.render import render
    from xds_server.sources.documents import parse_text

    text = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: grpc, protocol: GRPC}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: upper, namespace: default}
spec: {hosts: [Dup.Example.com], gateways: [gw], http: [{match: [{uri: {prefix: /a/}}], route: [{destination: {host: a}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: lower, namespace: default}
spec: {hosts: [dup.example.com], gateways: [gw], http: [{match: [{uri: {prefix: /b/}}], route: [{destination: {host: b}}]}]}
"""
    objects, _ = parse_text(text, file="t.yaml")
    out = render(translate(objects), NodeInfo.of(labels={"istio": "ingressgateway"}))
    [rc] = out["RDS"]
    assert [v["domains"] for v in rc["virtual_hosts"]] == [["dup.example.com"]]
    assert [r["match"]["prefix"] for r in rc["virtual_hosts"][0]["routes"]] == ["/b/", "/a/"]


def test_an_istio_server_keeps_its_port_name_whatever_its_hosts() -> None:
    """The hosts loop once reused the port name's variable: the server's name became its last host."""
    from translators.pipeline import translate

    objects, _ = parse_text("""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: grpc, protocol: GRPC}, hosts: ["*", "other/a.example.com"]}]
""", file="gw.yaml")
    [gw] = translate(objects).model.gateways
    [server] = gw.servers
    assert server.port_name == "grpc" and server.hosts == (("*", "*"), ("other", "a.example.com"))


def test_virtual_host_bytes_joined_in_field_order_equal_protobufs() -> None:
    """A virtual host's entry is joined from its name, domains, cached route bytes and TLS flag; it equals
    protobuf's own serialization, also for a shared route tuple, no routes, several domains and require_tls."""
    from envoy.config.route.v3 import route_components_pb2 as rc
    from translators import ir
    from translators.builders.routes import _vhost_entry, build_route
    from translators.gateway_view import gateway_listeners
    from translators.pipeline import translate
    from bench.config_gen import config
    from translators.wire import field
    from translators.references import route_cluster_names
    from envoy.config.route.v3 import route_pb2
    model = translate(config(3)).model
    [listener] = gateway_listeners(model, labels={"istio": "ingressgateway"}, namespace="default")
    routes = listener.virtual_hosts[0].routes + listener.virtual_hosts[1].routes
    memo: dict = {}
    hosts = [ir.VirtualHost(name="a.example.com:8080", domains=("a.example.com", "a.example.com:8080"), routes=routes),
             ir.VirtualHost(name="a.example.com:8443", domains=("a.example.com",), routes=routes, require_tls=True),
             ir.VirtualHost(name="empty", domains=("*",), routes=())]
    for v in hosts:
        expected = rc.VirtualHost(name=v.name, domains=list(v.domains), routes=[build_route(r, grpc_web=False)
                                                                               for r in v.routes],
                                  require_tls=rc.VirtualHost.ALL if v.require_tls else rc.VirtualHost.NONE)
        entry = _vhost_entry(v, False, None, memo)
        assert entry[1] == field(2, expected.SerializeToString(deterministic=True)), v.name
        assert entry[2] == {c for _, c in route_cluster_names([route_pb2.RouteConfiguration(virtual_hosts=[expected])])}
    assert sum(1 for k in memo if k[0] == "routes") == 2, "the two hosts with the same routes share their bytes"
