"""Property-based fuzzing of the config path: YAML text -> objects -> translation -> snapshots -> Envoy.

Inputs start from valid seed documents (``tests/configs.py``, ``tests/e2e_config.py``, ``tests/corpus/`` and
the small seeds below) covering every kind the translator handles, then mutate field types and values,
structure and the YAML text itself (aliases, self-referencing aliases, ``kind: List``, several documents,
non-mapping documents).

Properties:

1. no exception escapes ``parse_text`` + ``translate`` (``LoadError`` is the documented error for non-YAML),
   ``render`` or the CLI's ``validate`` (``xds_server.cli.main(["validate", DIR])``, in-process); an
   ``internal`` diagnostic (a crash caught by the per-object safety net) counts as a crash too;
2. the snapshots :class:`~xds_server.cache.SnapshotCache` builds for an Envoy gateway node and a proxyless
   node are ``consistent()``, and every listener a proxyless client can ask for names routes and clusters
   that exist;
3. for a few accepted configs, the real Envoy accepts a static bootstrap made from ``render`` output
   (``envoy --mode validate``).

``make test`` runs a bounded, derandomized sample (a few hundred examples).  ``make fuzz`` runs many more
with a random seed (``FUZZ_EXAMPLES``, ``FUZZ_SEED``).  Crashes found so far are in ``CRASHERS`` below as
minimal YAML texts; those that still fail are ``xfail`` (not strict) until their fixes land, and the random
tests skip over inputs that reproduce one of those known crash sites, so they keep looking for new ones.
"""
from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from tests import configs, e2e_config
from translators import type_urls
from translators.diagnostics import Severity
from translators.node import GRPC, NodeInfo
from translators.pipeline import translate
from translators.references import listener_route_names, route_cluster_names
from translators.render import render
from xds_server import cli
from xds_server.cache import SnapshotCache
from xds_server.sources.documents import LoadError, parse_text

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
ENVOY = Path(sys.executable).parent / "envoy"

GATEWAY_NODE = NodeInfo.of(labels={"istio": "ingressgateway"}, namespace="default")
PROXYLESS_NODE = NodeInfo.of(flavour=GRPC, namespace="default")

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
LONG_RUN = FUZZ_EXAMPLES > 0

# ---------------------------------------------------------------------------------------------- seeds


def _self_signed() -> tuple[str, str]:
    """A real certificate and key, so the Envoy check can load the SDS secret."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw.example.com")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("gw.example.com")]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


CERT, KEY = _self_signed()

TLS_GATEWAY = f"""
apiVersion: v1
kind: Secret
metadata: {{name: gw-cert, namespace: default}}
type: kubernetes.io/tls
data:
  tls.crt: {base64.b64encode(CERT.encode()).decode()}
  tls.key: {base64.b64encode(KEY.encode()).decode()}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tls-gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 8443, name: https, protocol: HTTPS}}
    hosts: [gw.example.com]
    tls: {{mode: SIMPLE, credentialName: gw-cert}}
  - port: {{number: 8081, name: http, protocol: HTTP}}
    hosts: [gw.example.com]
    tls: {{httpsRedirect: true}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tls-routes, namespace: default}}
spec:
  hosts: [gw.example.com]
  gateways: [tls-gw]
  http:
  - match: [{{uri: {{prefix: /a}}, headers: {{x-a: {{regex: "a.*"}}}}, port: 8443}}]
    rewrite: {{uri: /b}}
    route: [{{destination: {{host: web, port: {{number: 80}}}}}}]
  - fault: {{abort: {{percentage: {{value: 50}}, grpcStatus: UNAVAILABLE}}}}
    route: [{{destination: {{host: web}}}}]
    corsPolicy: {{allowOrigins: [{{exact: "https://x.example.com"}}], allowMethods: [POST]}}
    headers: {{request: {{set: {{x-b: "1"}}, remove: [x-c]}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: web, namespace: default}}
spec:
  host: web.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: {{consistentHash: {{httpHeaderName: x-user}}}}
    connectionPool: {{http: {{http2MaxRequests: 100, maxRetries: 3}}, tcp: {{connectTimeout: 2s}}}}
    outlierDetection: {{consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}
    portLevelSettings: [{{port: {{number: 80}}, loadBalancer: {{simple: RANDOM}}}}]
  subsets: [{{name: v1, labels: {{version: v1}}}}]
"""

KUBERNETES_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: grpc}, {name: grpc-b, port: 9090}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: grpc-b, port: 9090}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  zone: us-east-1a
- addresses: [10.0.0.2]
  conditions: {ready: false}
"""

GATEWAY_API = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: xds-server}
spec: {controllerName: example.com/xds-server}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  gatewayClassName: xds-server
  listeners:
  - {name: grpc, port: 8080, protocol: HTTP, hostname: "*.example.com", allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: backend}
spec: {ports: [{name: grpc, port: 50051, appProtocol: grpc}]}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-apps, namespace: backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: apps}]
  to: [{group: "", kind: Service}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: r, namespace: apps}
spec:
  parentRefs: [{name: gw, namespace: edge, sectionName: grpc}]
  hostnames: [api.example.com]
  rules:
  - matches:
    - method: {service: helloworld.Greeter, method: SayHello}
      headers: [{name: x-v, value: "1"}]
    - method: {type: RegularExpression, service: "route.*"}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-a, value: b}], remove: [x-c]}
    backendRefs: [{name: api, namespace: backend, port: 50051, weight: 3}]
  - backendRefs: [{name: api, namespace: backend, port: 50051}]
"""


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


N_HANDWRITTEN = 5


def _seed_bundles() -> list[list[dict]]:
    ports = dict(gateway_port=8080, a_greeter=50061, b_greeter=50062, a_route_guide=50071, b_route_guide=50072,
                 greeter_prefix="/helloworld.Greeter/", greeter_subset="v1")
    texts = [configs.GATEWAY_AND_SERVICE + "---" + configs.ROUTE % ("/", ""),
             "---".join(e2e_config.render(t, **ports) for t in (e2e_config.GATEWAY, e2e_config.SERVICES,
                                                                 e2e_config.ROUTES)),
             TLS_GATEWAY + "---" + KUBERNETES_SERVICE, GATEWAY_API, KUBERNETES_SERVICE]
    files = sorted((CORPUS / "istio-samples").glob("*.yaml")) + sorted(
        p for p in (CORPUS / "istio-docs-grpc").glob("*.yaml") if "cds_test.go" not in p.name)
    files += [CORPUS / "istio-gateway-api" / n for n in ("grpc.yaml", "http-grpc-same-host.yaml")]
    assert len(texts) == N_HANDWRITTEN
    texts += [p.read_text() for p in files]
    return [docs for docs in map(_docs, texts) if docs]


SEEDS = _seed_bundles()
SEED_DOCS = [d for bundle in SEEDS for d in bundle]
KINDS = {d.get("kind") for d in SEED_DOCS}
assert KINDS >= {"Gateway", "VirtualService", "DestinationRule", "ServiceEntry", "Service", "EndpointSlice", "Secret",
                 "GRPCRoute", "ReferenceGrant"}, KINDS

# ------------------------------------------------------------------------------------------ mutations

SPECIAL_INTS = [-1, 0, 1, 65535, 65536, 2**31 - 1, 2**31, 2**32, 2**63, -2**63, 10**30]
SPECIAL_STRINGS = ["", " ", "*", "-1", "0", "1.5", "null", "true", "~", "0x1F", "1e999", "☃", "é" * 300,
                   "a" * 5000, "/", "//", "[", "*.", "a:b", "ns/name", "\t", "\u202e", "🙂", "x\ny",
                   "GRPC", "HTTPS", "MUTUAL", "RegularExpression", "v1", "default"]

scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(SPECIAL_INTS), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=12))
weird = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=3)),
    max_leaves=6)


def _paths(node: Any, out: list, depth: int = 0) -> list:
    """Every (container, key) below ``node`` (containers are dicts and lists)."""
    if depth > 12:
        return out
    items = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
    for k, v in items:
        out.append((node, k))
        if isinstance(v, (dict, list)) and v is not node:
            _paths(v, out, depth + 1)
    return out


def _swap_type(v: Any) -> Any:
    """The same value in another type: 80 -> "80", "80" -> 80, x -> [x], x -> {x: x}..."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return int(v) if v.lstrip("-").isdigit() else [v]
    if isinstance(v, list):
        return {str(i): x for i, x in enumerate(v)}
    if isinstance(v, dict):
        return list(v.values())
    return {}


OPS = ["replace", "replace", "swap_type", "delete", "delete", "add_unknown", "wrap_list", "wrap_map", "unwrap",
       "null", "alias", "self_ref", "duplicate"]


@st.composite
def mutated_docs(draw, max_mutations: int = 4) -> list:
    # the hand-written bundles cover the most features: pick them as often as all the corpus files together
    pool = draw(st.sampled_from([SEEDS[:N_HANDWRITTEN], SEEDS]))
    bundles = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2))
    docs = copy.deepcopy([d for b in bundles for d in b])
    docs += copy.deepcopy(draw(st.lists(st.sampled_from(SEED_DOCS), max_size=1)))
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = _paths(docs, [])
        if not paths:
            break
        # one document first, then a path in it: small documents get mutated as often as big ones
        doc = docs[draw(st.integers(0, len(docs) - 1))] if docs and draw(st.booleans()) else docs
        paths = _paths(doc, []) if isinstance(doc, (dict, list)) else paths
        paths = paths or _paths(docs, [])
        container, key = paths[draw(st.integers(0, len(paths) - 1))]
        value = container[key]
        op = draw(st.sampled_from(OPS))
        if op == "replace":
            container[key] = draw(weird)
        elif op == "swap_type":
            container[key] = _swap_type(value)
        elif op == "delete":
            del container[key]
        elif op == "add_unknown":
            target = value if isinstance(value, dict) else container if isinstance(container, dict) else None
            if target is not None:
                target[draw(st.sampled_from(["unknownField", "x", "", "spec", "kind", "port"]))] = draw(weird)
        elif op == "wrap_list":
            container[key] = [value]
        elif op == "wrap_map":
            container[key] = {draw(st.sampled_from(["value", "exact", "number", "x"])): value}
        elif op == "unwrap":
            if isinstance(value, list) and value:
                container[key] = value[0]
            elif isinstance(value, dict) and value:
                container[key] = next(iter(value.values()))
        elif op == "null":
            container[key] = None
        elif op == "alias":  # another subtree by reference: the YAML dumper writes &id001 / *id001
            other, okey = paths[draw(st.integers(0, len(paths) - 1))]
            container[key] = other[okey]
        elif op == "self_ref":  # a self-referencing alias: &id001 {x: *id001}
            if isinstance(value, dict):
                value[draw(st.sampled_from(["spec", "metadata", "x", "match"]))] = value
            elif isinstance(value, list):
                value.append(value)
        elif op == "duplicate" and isinstance(container, list):
            container.append(copy.deepcopy(value) if draw(st.booleans()) else value)
    return docs


NON_MAPPING_DOCS = [5, "a string", [1, 2], True, 3.5, None, [{"kind": "Service"}]]
RAW_SNIPPETS = [
    "a: &a [*a]\n",
    "&a {apiVersion: v1, kind: Service, metadata: {name: s}, spec: *a}\n",
    "base: &b {apiVersion: v1, kind: Service}\nmerged: {<<: *b, metadata: {name: m}}\n",
    "apiVersion: v1\nkind: List\nitems: 5\n",
    "apiVersion: v1\nkind: List\nitems: [5, null, x, [1]]\n",
    "apiVersion: v1\nkind: ServiceList\nitems: {a: 1}\n",
    "--- !!binary aGVsbG8=\n",
    "- &x [*x, *x]\n",
    "...\n",
    "{",
    "\t: x\n",
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
]


def _dump(docs: list, *, unicode: bool) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=unicode)


@st.composite
def yaml_texts(draw, max_mutations: int = 4) -> str:
    docs = draw(mutated_docs(max_mutations))
    shape = draw(st.sampled_from(["multi", "multi", "multi", "list", "list_bad", "extra_docs", "snippet"]))
    if shape == "list":  # kind: List, possibly with non-mapping items
        items = docs + draw(st.lists(st.sampled_from(NON_MAPPING_DOCS), max_size=2))
        docs = [{"apiVersion": "v1", "kind": draw(st.sampled_from(["List", "ServiceList", "ConfigMapList"])),
                 "items": items}]
    elif shape == "list_bad":  # kind: List whose items are not a list
        docs = [{"apiVersion": "v1", "kind": "List", "items": draw(weird)}] + docs
    elif shape == "extra_docs":
        for d in draw(st.lists(st.sampled_from(NON_MAPPING_DOCS), min_size=1, max_size=3)):
            docs.insert(draw(st.integers(0, len(docs))), d)
    try:
        text = _dump(docs, unicode=draw(st.booleans()))
    except (yaml.YAMLError, RecursionError, ValueError, TypeError):
        reject()
    if shape == "snippet":
        text += "---\n" + draw(st.sampled_from(RAW_SNIPPETS))
    return text


# ------------------------------------------------------------------------------------------ properties

class Crash(AssertionError):
    pass


@contextlib.contextmanager
def _unmasked() -> Iterator[None]:
    """Let exceptions through the translator's per-object safety net (``diagnostics.isolated``),
    so a crash shows its real traceback instead of an ``internal`` diagnostic."""
    from translators import diagnostics as dialect

    original = getattr(dialect, "isolated", None)
    if original is None:
        yield
        return

    def raising(parser, obj, rep, *args, **kwargs):
        return parser(obj, rep, *args, **kwargs)

    dialect.isolated = raising
    try:
        yield
    finally:
        dialect.isolated = original


def crash_site(exc: BaseException) -> tuple[str, str, str, str]:
    """(exception type, file, function, source line) of the innermost frame inside this repository."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(ROOT) in f.filename and "/tests/" not in
              f.filename and ".venv" not in f.filename]
    if not frames:
        return type(exc).__name__, "", "", ""
    f = frames[-1]
    return type(exc).__name__, os.path.relpath(f.filename, ROOT), f.name, (f.line or "").strip()


def translate_checked(text: str):
    """Properties 1 and 2 for one YAML text; returns the translation (None for non-YAML)."""
    try:
        objects, _ = parse_text(text, file="fuzz.yaml")
    except LoadError:
        return None
    translation = translate(objects)
    internal = [d.format() for d in translation.diagnostics if d.code == "internal"]
    assert not internal, f"crash caught by the safety net: {internal}"
    problems: list[str] = []
    cache = SnapshotCache(on_inconsistent=lambda node, p: problems.extend(f"{node}: {x}" for x in p))
    cache.publish(translation, generation=1)
    for node in (GATEWAY_NODE, PROXYLESS_NODE):
        snap = cache.get(node)
        assert snap is not None and not problems, problems
        assert snap.consistent() == []
        render(translation, node)  # what `xds-server render` prints
    _check_proxyless_names(translation)
    # what `serve` does on a reload: the same text parsed again, translated incrementally
    again, _ = parse_text(text, file="fuzz.yaml")
    incremental = translate(again, accepted=translation.accepted, previous=translation)
    assert [d.format() for d in incremental.diagnostics if d.code == "internal"] == []
    for node in (GATEWAY_NODE, PROXYLESS_NODE):
        assert _cache_problems(incremental, node) == []
    return translation


def _cache_problems(translation, node: NodeInfo) -> list[str]:
    problems: list[str] = []
    cache = SnapshotCache(on_inconsistent=lambda _node, p: problems.extend(p))
    cache.publish(translation, generation=2)
    snap = cache.get(node)
    return problems if snap is not None or problems else ["no snapshot"]


def _check_proxyless_names(translation) -> None:
    """Every listener a proxyless client may name (host:port of each service) refers to an RDS that
    resolves, whose clusters exist in CDS."""
    clusters = translation.for_node(PROXYLESS_NODE)[type_urls.CLUSTER]
    for svc in translation.model.services[:20]:
        for port in svc.ports[:4]:
            listener = translation.resolve(PROXYLESS_NODE, type_urls.LISTENER, f"{svc.host}:{port.number}")
            if listener is None:
                continue
            for rds_name in listener_route_names([listener]):
                rc = translation.resolve(PROXYLESS_NODE, type_urls.ROUTE, rds_name)
                assert rc is not None, f"proxyless listener {listener.name} names missing RDS {rds_name}"
                for _, cluster in route_cluster_names([rc]):
                    assert cluster in clusters, f"proxyless RDS {rds_name} names missing cluster {cluster}"


def validate_cli(text: str) -> int:
    """``xds-server validate DIR`` in-process."""
    with tempfile.TemporaryDirectory() as d:
        Path(d, "fuzz.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = cli.main(["validate", d])
    assert code in (0, 1)
    return code


def check(text: str):
    with _unmasked():
        translation = translate_checked(text)
    validate_cli(text)  # the CLI path as shipped (safety net in place)
    return translation


# ------------------------------------------------------------------- crashes found (regression cases)

def _xfail(reason: str):
    return pytest.mark.xfail(strict=False, reason=reason)


VS = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n"
SE = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\n"
SVC = "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\n"
GAPI_GW = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
GRPCROUTE = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\n"
REFGRANT = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g}\n"

#: minimal YAML texts that crashed: (id, text, xfail reason while the crash is not fixed, else None).
#: Locations are those of the first report (HEAD 3010c39 or the working tree of the day).
CRASHERS: list[tuple[str, str, str | None]] = [
    # TypeError: 'int' object is not iterable, xds_server/sources/documents.py:64 _collect (fixed)
    ("list-items-int", "apiVersion: v1\nkind: List\nitems: 5\n", None),
    # RecursionError, xds_server/sources/documents.py:65 _collect (fixed: LoadError "recursive document")
    ("self-alias-list", "&d {apiVersion: v1, kind: List, items: [*d]}\n", None),
    ("self-alias-seq", "a: &a [*a]\n", None),
    ("self-alias-spec", "&a {apiVersion: v1, kind: Service, metadata: {name: s}, spec: *a}\n", None),
    ("self-alias-vs-invalid", VS + "spec: &a {hosts: 5, x: *a}\n", None),
    # ValueError: Value out of range: -1, translators/builders/endpoints.py:29 _lb_endpoint (fixed)
    ("se-endpoint-port-negative", SE + "spec:\n  hosts: [a.example.com]\n  ports: [{number: 50051, name: grpc}]\n"
     "  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {grpc: -1}}]\n", None),
    # TypeError: 'int' object is not iterable, translators/istio/virtual_service.py:236 _proxyless_warnings (fixed)
    ("vs-http-match-int", VS + "spec:\n  hosts: ['*']\n  http: [{match: 5, route: [{destination: {host: a}}]}]\n",
     None),
    # TypeError: unhashable type: 'list', translators/istio/service_entry.py:185 slice_endpoints (fixed)
    ("endpointslice-port-name-list", SVC + "spec: {ports: [{name: http, port: 80}]}\n---\napiVersion: discovery.k8s.io/v1\n"
     "kind: EndpointSlice\nmetadata: {name: svc-a, labels: {kubernetes.io/service-name: svc}}\n"
     "ports: [{name: [x], port: 80}]\nendpoints: [{addresses: [10.0.0.1]}]\n",
     None),
    # TypeError: unhashable type: 'list', translators/gateway_api/grpcroute.py:215 reference_grants (fixed)
    ("referencegrant-from-namespace-list", REFGRANT + "spec:\n  from: [{group: gateway.networking.k8s.io, "
     "kind: GRPCRoute, namespace: [a]}]\n  to: [{group: '', kind: Service}]\n",
     None),
    # TypeError: unhashable type: 'list', translators/gateway_api/grpcroute.py:218 reference_grants (fixed)
    ("referencegrant-to-name-list", REFGRANT + "spec:\n  from: [{group: gateway.networking.k8s.io, kind: GRPCRoute, "
     "namespace: a}]\n  to: [{group: '', kind: Service, name: [x]}]\n",
     None),
    # TypeError: unhashable type: 'list', translators/gateway_api/grpcroute.py:82 _headers (fixed)
    ("grpcroute-header-type-list", GRPCROUTE + "spec:\n  rules: [{matches: [{headers: [{name: a, value: b, type: [x]}]}]}]\n",
     None),
    # TypeError: unhashable type: 'list', translators/gateway_api/grpcroute.py:115 parse_grpc_route (fixed)
    ("grpcroute-sectionname-list", GAPI_GW + "spec:\n  gatewayClassName: xds-server\n"
     "  listeners: [{name: grpc, port: 8080, protocol: HTTP}]\n---\n" + GRPCROUTE
     + "spec:\n  parentRefs: [{name: gw, sectionName: [grpc]}]\n",
     None),
]

_known_sites: set[tuple[str, str, str, str]] | None = None


def known_sites() -> set[tuple[str, str, str, str]]:
    """Where the still-xfail crashers above crash today (exception, file, function, source line).  The
    random tests reject inputs that crash at one of these sites, so they keep finding new crashes while
    the fixes land; once a fix lands its site stops being known and the random tests guard it too."""
    global _known_sites
    if _known_sites is None:
        _known_sites = set()
        for _, text, reason in CRASHERS:
            if reason:
                try:
                    check(text)
                except Exception as exc:  # noqa: BLE001
                    _known_sites.add(crash_site(exc))
    return _known_sites


def _known(exc: BaseException) -> bool:
    return crash_site(exc) in known_sites()


@pytest.mark.parametrize("text", [pytest.param(t, id=i, marks=[_xfail(r)] if r else []) for i, t, r in CRASHERS])
def test_known_crasher(text: str) -> None:
    check(text)


# ------------------------------------------------------------------------------------ random tests

BOUNDED = dict(max_examples=FUZZ_EXAMPLES or 300, derandomize=not LONG_RUN, database=None, deadline=None,
               print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


def _run(text: str):
    try:
        return check(text)
    except Exception as exc:  # noqa: BLE001
        if _known(exc):
            reject()  # a crash site already listed in CRASHERS (xfail) -- look for new ones
        raise


@settings(**BOUNDED)
@given(yaml_texts())
def test_fuzz_translate_and_snapshots(text: str) -> None:
    _run(text)


# ---------------------------------------------------------------------------------------- real Envoy

def static_bootstrap(translation) -> dict:
    """A bootstrap with ``render`` output as static resources: RDS inlined into the listeners, EDS into
    the clusters, SDS secrets static (with the unredacted key)."""
    out = render(translation, GATEWAY_NODE)
    routes = {r["name"]: r for r in out.get("RDS", [])}
    assignments = {e["cluster_name"]: e for e in out.get("EDS", [])}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: fix(v) for k, v in node.items()}
            if "rds" in node and "route_config_name" in node["rds"]:
                node["route_config"] = routes[node.pop("rds")["route_config_name"]]
            for sds in node.get("sds_secret_configs", []) if isinstance(node.get("sds_secret_configs"), list) else []:
                sds.pop("sds_config", None)
            if "tls_certificate_sds_secret_configs" in node:
                for sds in node["tls_certificate_sds_secret_configs"]:
                    sds.pop("sds_config", None)
            if "validation_context_sds_secret_config" in node:
                node["validation_context_sds_secret_config"].pop("sds_config", None)
            return node
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    clusters = []
    for c in fix(out.get("CDS", [])):
        if c.get("type") == "EDS":
            c.pop("eds_cluster_config", None)
            c["type"] = "STATIC"
            c["load_assignment"] = assignments.get(c["name"], {"cluster_name": c["name"]})
        clusters.append(c)
    from google.protobuf import json_format

    secrets = [json_format.MessageToDict(m, preserving_proto_field_name=True)
               for _, m in sorted(translation.for_node(GATEWAY_NODE).get(type_urls.SECRET, {}).items())]
    return {"node": {"id": "fuzz-gateway", "cluster": "fuzz",
                     "metadata": {"LABELS": dict(GATEWAY_NODE.labels), "NAMESPACE": GATEWAY_NODE.namespace}},
            "static_resources": {"listeners": fix(out.get("LDS", [])), "clusters": clusters, "secrets": secrets}}


def envoy_validate(bootstrap: dict) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "envoy.json")
        path.write_text(json.dumps(bootstrap))
        return subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path), "-l", "error",
                               "--base-id", str(os.getpid() % 10000 + 20000)],
                              capture_output=True, text=True, timeout=120)


def _envoy_check(text: str) -> None:
    translation = _run(text)
    if translation is None:
        reject()
    if any(d.severity is Severity.ERROR for d in translation.diagnostics):
        reject()  # only accepted configs
    bootstrap = static_bootstrap(translation)
    if not bootstrap["static_resources"]["listeners"]:
        reject()
    result = envoy_validate(bootstrap)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:] + "\n" + json.dumps(bootstrap)[:3000]


@pytest.mark.skipif(not ENVOY.exists(), reason=f"no Envoy binary at {ENVOY}")
@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_envoy_accepts_seed(index: int) -> None:
    """Every seed bundle with gateway listeners: what we would push, Envoy accepts."""
    translation = check(_dump(SEEDS[index], unicode=True))
    bootstrap = static_bootstrap(translation)
    if not bootstrap["static_resources"]["listeners"]:
        return
    result = envoy_validate(bootstrap)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


@pytest.mark.skipif(not ENVOY.exists(), reason=f"no Envoy binary at {ENVOY}")
@settings(**{**BOUNDED, "max_examples": max(5, FUZZ_EXAMPLES // 200)})
@given(yaml_texts(max_mutations=2))
def test_fuzz_envoy_accepts_rendered(text: str) -> None:
    _envoy_check(text)
