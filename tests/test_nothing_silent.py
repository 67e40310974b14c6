"""Nothing is dropped silently: kinds, apiVersions, classes and fields xds-server does not translate
are warnings naming what and where; only malformed values of known fields are errors.

Also the Istio guide's gRPC-Web EnvoyFilter: recognised exactly, and served end to end by a real Envoy.
"""
from __future__ import annotations

import http.client
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from translators.diagnostics import Severity
from translators.known_fields import unknown_fields
from translators.node import NodeInfo
from translators.pipeline import translate
from translators.render import render
from xds_server.sources.documents import parse_text

ROOT = Path(__file__).resolve().parent.parent
W, E, I = Severity.WARNING, Severity.ERROR, Severity.INFO

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: grpc, protocol: GRPC}
    hosts: ["*"]
"""
SERVICE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
"""


def vs(http: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: default}\n"
            "spec:\n  hosts: ['*']\n  gateways: [gw]\n  http:\n" + textwrap.indent(textwrap.dedent(http), "  "))


GRPC_WEB_FILTER = """
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: grpc-web, namespace: istio-system}
spec:
  workloadSelector:
    labels: {istio: ingressgateway}
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: GATEWAY
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
            subFilter:
              name: envoy.filters.http.router
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.grpc_web
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb
"""


def diagnostics(text: str, **kw):
    objects, diags = parse_text(text, file="x.yaml")
    t = translate(objects, **kw)
    return diags + t.diagnostics, t


def found(text: str) -> set[tuple[Severity, str, str]]:
    return {(d.severity, d.code, d.field_path) for d in diagnostics(text)[0]}


# (name, yaml, expected (severity, code, field path) present, (code) that must be absent)
CASES = [
    ("apiVersion typo", "apiVersion: networking.rypt.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {}",
     [(W, "unsupported-kind", "apiVersion")], []),
    ("unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {}",
     [(W, "unsupported-kind", "kind")], []),
    ("istio kind not translated", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspec: {}",
     [(W, "unsupported-kind", "kind")], []),
    ("Gateway API HTTPRoute", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: h}\n"
     "spec: {rules: [{foo: 1}]}", [(W, "unknown-field", "spec.rules[0].foo")], ["unsupported-kind"]),
    ("other gatewayClassName", "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
     "spec: {gatewayClassName: istio, listeners: [{name: a, port: 80, protocol: HTTP}]}",
     [(W, "other-class", "spec.gatewayClassName")], []),
    ("Namespace stays quiet", "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}", [], ["unsupported-kind"]),
    ("top-level field", GATEWAY.replace("spec:", "spec:\n  foo: 1"), [(W, "unknown-field", "spec.foo")], []),
    ("server field", GATEWAY + "    tlsx: {mode: SIMPLE}\n", [(W, "unknown-field", "spec.servers[0].tlsx")], []),
    ("bind is a real field", GATEWAY + "    bind: 127.0.0.1\n", [], ["unknown-field"]),
    ("misspelt top level", GATEWAY.replace("spec:", "sepc: {}\nspec:"), [(W, "unknown-field", "sepc")], []),
    ("http route field", GATEWAY + "---" + SERVICE + "---\n" + vs(
        "- retry: {attempts: 3}\n  route: [{destination: {host: greeter}}]\n"),
     [(W, "unknown-field", "spec.http[0].retry")], ["invalid"]),
    ("match field", GATEWAY + "---" + SERVICE + "---\n" + vs(
        "- match: [{urii: {prefix: /}}]\n  route: [{destination: {host: greeter}}]\n"),
     [(W, "unknown-field", "spec.http[0].match[0].urii")], ["invalid"]),
    ("string match extra key", GATEWAY + "---" + SERVICE + "---\n" + vs(
        "- match: [{uri: {prefix: /, exactt: /a}}]\n  route: [{destination: {host: greeter}}]\n"),
     [(W, "unknown-field", "spec.http[0].match[0].uri.exactt")], ["invalid"]),
    ("header match typo", GATEWAY + "---" + SERVICE + "---\n" + vs(
        "- match: [{headers: {x-a: {exact: b, regx: c}}}]\n  route: [{destination: {host: greeter}}]\n"),
     [(W, "unknown-field", "spec.http[0].match[0].headers.x-a.regx")], ["invalid"]),
    ("malformed value is still an error", GATEWAY + "---" + SERVICE + "---\n" + vs(
        "- timeout: 5 seconds\n  route: [{destination: {host: greeter}}]\n"),
     [(E, "invalid", "spec.http[0].timeout")], []),
    ("DestinationRule deep field", SERVICE + "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
     "metadata: {name: dr}\nspec:\n  host: greeter\n  trafficPolicy:\n    healthCheck: {}\n"
     "    connectionPool: {http: {http2MaxRequests: 10, maxRequestz: 1}}\n",
     [(W, "unknown-field", "spec.trafficPolicy.healthCheck"),
      (W, "unknown-field", "spec.trafficPolicy.connectionPool.http.maxRequestz")], ["invalid"]),
    ("ServiceEntry endpoint field", SERVICE.replace("{address: 127.0.0.1}", "{address: 127.0.0.1, weigth: 2}"),
     [(W, "unknown-field", "spec.endpoints[0].weigth")], ["invalid"]),
    ("Service spec", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, nme: x}]}",
     [(W, "unknown-field", "spec.ports[0].nme")], []),
    ("Secret", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: Opaque\ndatta: {}\nstringData: {a: b}",
     [(W, "unknown-field", "datta")], []),
    ("GRPCRoute field", "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\n"
     "spec: {parentRefs: [{name: g}], rules: [{matchs: []}]}", [(W, "unknown-field", "spec.rules[0].matchs")], []),
    ("GRPCRoute missing parent", "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\n"
     "spec: {parentRefs: [{name: nowhere}]}", [(W, "unknown-parent", "spec.parentRefs[0].name")], []),
    ("EnvoyFilter gRPC-Web recognised", GRPC_WEB_FILTER, [], ["unsupported-kind", "unknown-field"]),
    ("EnvoyFilter other filter", GRPC_WEB_FILTER.replace("envoy.filters.http.grpc_web", "envoy.filters.http.lua"),
     [(W, "unsupported-kind", "spec.configPatches[0].patch.value.name")], []),
    ("EnvoyFilter sidecar context", GRPC_WEB_FILTER.replace("context: GATEWAY", "context: SIDECAR_INBOUND"),
     [(W, "unsupported-kind", "spec.configPatches[0].match.context")], []),
    ("EnvoyFilter merge patch", GRPC_WEB_FILTER.replace("INSERT_BEFORE", "MERGE"),
     [(W, "unsupported-kind", "spec.configPatches[0].patch.operation")], []),
]


@pytest.mark.parametrize("name,text,expected,absent", CASES, ids=[c[0] for c in CASES])
def test_reported(name: str, text: str, expected: list, absent: list) -> None:
    got = found(text)
    for e in expected:
        assert e in got, f"{e} not in {sorted(got)}"
    for code in absent:
        assert not [g for g in got if g[1] == code], sorted(got)


def test_unknown_kind_warning_says_what_is_translated() -> None:
    d = next(d for d in diagnostics("apiVersion: networking.rypt.io/v1\nkind: VirtualService\nmetadata: {name: v}")[0]
             if d.code == "unsupported-kind")
    assert "VirtualService (networking.rypt.io/v1)" in d.message and "networking.istio.io/v1" in d.message
    assert "gateway.networking.k8s.io Gateway/GRPCRoute/HTTPRoute/ReferenceGrant" in d.message
    other = next(d for d in diagnostics("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
                                        "spec: {gatewayClassName: istio}")[0] if d.code == "other-class")
    assert "gatewayClassName: xds-server" in other.message and "--gateway-class" in other.message


def test_unknown_field_does_not_take_the_route_down() -> None:
    diags, t = diagnostics(GATEWAY + "---" + SERVICE + "---\n" + vs(
        "- retry: {attempts: 3}\n  match: [{uri: {prefix: /a, extra: 1}}]\n  route: [{destination: {host: greeter}}]\n"))
    assert not [d for d in diags if d.severity is E]
    assert [r.match.path for hr in t.model.http_routes for r in hr.routes]


def test_string_match_of_only_unknown_keys_is_an_error() -> None:
    """Reading ``{prefx: /a}`` as "any URI" would widen the route: a malformed value, so an error."""
    got = found(GATEWAY + "---" + SERVICE + "---\n" + vs(
        "- match: [{uri: {prefx: /a}}]\n  route: [{destination: {host: greeter}}]\n"))
    assert (E, "invalid", "spec.http[0].match[0].uri") in got
    assert (W, "unknown-field", "spec.http[0].match[0].uri.prefx") in got


def test_route_status_conditions_are_diagnostics() -> None:
    text = ("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: theirs}\n"
            "spec: {gatewayClassName: istio, listeners: [{name: a, port: 80, protocol: HTTP}]}\n---\n"
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\n"
            "spec: {parentRefs: [{name: theirs}]}")
    d = next(d for d in diagnostics(text)[0] if d.code == "route-status")
    assert d.severity is W and d.field_path == "status.parents[0]"
    assert d.format().startswith("x.yaml: GRPCRoute/default/r: status.parents[0]: warning: Accepted=False (NoMatchingParent)")


def test_known_fields_paths_and_free_form_maps() -> None:
    spec = {"hosts": ["a"], "http": [{"match": [{"headers": {"any-name": {"exact": "x"}}, "sourceLabels": {"k": "v"}}],
                                      "headers": {"request": {"set": {"free": "form"}}}, "retry": {}}],
            "exportTo": ["."], "export_to": ["."]}
    assert unknown_fields(group="networking.istio.io", kind="VirtualService", doc_or_spec=spec) == ["spec.http[0].retry"]
    assert unknown_fields(group="example.com", kind="Widget", doc_or_spec={"x": 1}) == []
    se = {"endpoints": [{"address": "1.2.3.4", "ports": {"anything": 1}, "labels": {"a": "b"}}],
          "workloadSelector": {"labels": {"a": "b"}}}
    assert unknown_fields(group="networking.istio.io", kind="ServiceEntry", doc_or_spec=se) == []
    gw = {"gatewayClassName": "x", "listeners": [{"name": "a", "port": 1, "protocol": "HTTP",
                                                  "allowedRoutes": {"namespaces": {"from": "Selector",
                                                                                   "selector": {"matchLabels": {"a": "b"}}}}}]}
    assert unknown_fields(group="gateway.networking.k8s.io", kind="Gateway", doc_or_spec=gw) == []


def _listener_filters(t, labels: dict[str, str], namespace: str = "default") -> dict[str, list[str]]:
    out = render(t, NodeInfo.of(labels=labels, namespace=namespace))
    names = {}
    for l in out["LDS"]:
        for chain in l.get("filter_chains", []):
            for f in chain.get("filters", []):
                hcm = f.get("typed_config", {})
                names[l["name"]] = [h["name"] for h in hcm.get("http_filters", [])]
    return names


def test_grpc_web_envoy_filter_adds_the_filter_to_selected_gateways_only() -> None:
    base = GATEWAY + "---" + SERVICE + "---\n" + vs("- route: [{destination: {host: greeter}}]\n")
    _, t = diagnostics(base + "---" + GRPC_WEB_FILTER)
    assert t.model.grpc_web and t.model.grpc_web[0].namespace == ""  # root namespace: every namespace
    assert "envoy.filters.http.grpc_web" in _listener_filters(t, {"istio": "ingressgateway"})["0.0.0.0_8080"]
    _, plain = diagnostics(base)
    assert "envoy.filters.http.grpc_web" not in _listener_filters(plain, {"istio": "ingressgateway"})["0.0.0.0_8080"]
    # a filter in another namespace without a selector does not reach gateways in default
    other = GRPC_WEB_FILTER.replace("namespace: istio-system", "namespace: other").replace(
        "  workloadSelector:\n    labels: {istio: ingressgateway}\n", "")
    _, t2 = diagnostics(base + "---" + other)
    assert "envoy.filters.http.grpc_web" not in _listener_filters(t2, {"istio": "ingressgateway"})["0.0.0.0_8080"]
    assert t2.model.grpc_web[0].selects({}, "other") and not t2.model.grpc_web[0].selects({}, "default")


def _validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    (tmp_path / "c.yaml").write_text(text)
    return subprocess.run([sys.executable, "-m", "xds_server", "validate", str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_validate_prints_warnings_and_exits_zero_errors_exit_one(tmp_path: Path) -> None:
    text = (GATEWAY.replace("spec:", "spec:\n  foo: 1") + "---\n"
            "apiVersion: networking.rypt.io/v1\nkind: VirtualService\nmetadata: {name: typo}\nspec: {}\n---\n"
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\n"
            "spec: {parentRefs: [{name: missing}]}\n")
    r = _validate(tmp_path, text)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Gateway/default/gw: spec.foo: warning: unknown field" in r.stdout
    assert "VirtualService/default/typo: apiVersion: warning: VirtualService (networking.rypt.io/v1)" in r.stdout
    assert "GRPCRoute/default/r: spec.parentRefs[0].name: warning: no Gateway default/missing" in r.stdout
    assert "status.parents[0]: Accepted=False (NoMatchingParent)" in r.stdout
    assert ", 0 errors," in r.stderr
    bad = _validate(tmp_path, GATEWAY.replace("protocol: GRPC", "protocol: QUIC"))
    assert bad.returncode == 1 and "spec.servers[0].port.protocol" in bad.stdout


# --------------------------------------------------------------------------- end to end


@pytest.mark.e2e
def test_e2e_istio_guide_grpc_web_envoy_filter(tmp_path: Path) -> None:
    from protos import helloworld_pb2
    from tests.harness import Backends, ControlPlane, Envoy, free_port, wait_until

    port = free_port()
    config = tmp_path / "config"
    config.mkdir()
    with Backends(replica="web", workdir=tmp_path, route_guide=False) as backend:
        backend.wait_ready()
        (config / "c.yaml").write_text(
            GATEWAY.replace("8080", str(port)) + "---" + SERVICE.replace(
                "{address: 127.0.0.1}", f"{{address: 127.0.0.1, ports: {{grpc: {backend.greeter_port}}}}}")
            + "---\n" + vs("- route: [{destination: {host: greeter, port: {number: 50051}}}]\n")
            + "---" + GRPC_WEB_FILTER)
        with ControlPlane(config_dirs=[config], workdir=tmp_path) as cp:
            cp.wait_ready()
            with Envoy(control_plane=cp, workdir=tmp_path) as envoy:
                envoy.wait_ready()
                message = helloworld_pb2.HelloRequest(name="web").SerializeToString()
                body = b"\x00" + struct.pack(">I", len(message)) + message

                def post():
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    try:
                        conn.request("POST", "/helloworld.Greeter/SayHello", body=body, headers={
                            "content-type": "application/grpc-web+proto", "x-grpc-web": "1"})
                        resp = conn.getresponse()
                        return resp.status, resp.getheader("content-type") or "", resp.read()
                    except OSError:
                        return None
                    finally:
                        conn.close()

                got = wait_until(lambda: (r := post()) and r[0] == 200 and r, timeout=30, what="gRPC-Web via Envoy")
                status, ctype, data = got
                assert ctype.startswith("application/grpc-web")
                frames, i = [], 0
                while i < len(data):
                    flag, length = data[i], struct.unpack(">I", data[i + 1:i + 5])[0]
                    frames.append((flag, data[i + 5:i + 5 + length]))
                    i += 5 + length
                assert [f for f, _ in frames] == [0x00, 0x80], frames
                assert helloworld_pb2.HelloReply.FromString(frames[0][1]).message == "Hello web from web"
                assert b"grpc-status:0" in frames[1][1].replace(b" ", b"")
