"""A second opinion on GRPCRoute semantics: Envoy Gateway's translator test data
(``tests/corpus/envoy-gateway-grpcroute``).  For every case that uses only standard Gateway API
kinds, our Accepted/ResolvedRefs verdicts per GRPCRoute parent must match Envoy Gateway's, and every
case must translate without errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from translators.diagnostics import Severity
from translators.pipeline import translate
from xds_server.sources.documents import to_config_objects

CORPUS = Path(__file__).resolve().parent / "corpus" / "envoy-gateway-grpcroute"
CASES = sorted(p.name[: -len(".in.yaml")] for p in CORPUS.glob("*.in.yaml"))
assert CASES, f"no *.in.yaml cases in {CORPUS}"
EG_ONLY = ("httpRouteFilters", "backends", "securityPolicies", "envoyExtensionPolicies", "backendTrafficPolicies")


def _uses_eg_only(name: str) -> bool:
    text = (CORPUS / f"{name}.in.yaml").read_text()
    return any(yaml.safe_load(text).get(k) for k in EG_ONLY) or "ExtensionRef" in text


#: cases that use Envoy Gateway-only kinds or ExtensionRef filters: verdicts may legitimately differ
EG_ONLY_CASES = [n for n in CASES if _uses_eg_only(n)]
STANDARD_CASES = [n for n in CASES if n not in EG_ONLY_CASES]

#: the harness's injected fixtures (translator_test.go + testdata/base/base.yaml)
FIXTURES = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"service-{i}", "namespace": "default"},
             "spec": {"ports": [{"name": "http", "port": 8080}, {"name": "https", "port": 8443}]}} for i in range(1, 5)] + [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mirror-service", "namespace": "default"},
     "spec": {"ports": [{"name": "http", "port": 8080}]}}]


def _objects(name: str):
    doc = yaml.safe_load((CORPUS / f"{name}.in.yaml").read_text())
    given = {(d["metadata"].get("namespace", "default"), d["metadata"]["name"]) for d in doc.get("services", [])}
    docs = [d for key, items in doc.items() if isinstance(items, list) for d in items if isinstance(d, dict)]
    docs += [f for f in FIXTURES if (f["metadata"]["namespace"], f["metadata"]["name"]) not in given]
    objects = []
    for d in docs:
        objs, _ = to_config_objects(d, source=f"{name}.in.yaml")
        objects += objs
    return doc, objects


def _expected(name: str) -> dict[tuple[str, str], dict[str, str]]:
    out = yaml.safe_load((CORPUS / f"{name}.out.yaml").read_text())
    verdicts = {}
    for r in out.get("grpcRoutes", []):
        for parent in (r.get("status") or {}).get("parents", []):
            key = (r["metadata"].get("namespace", "default"), r["metadata"]["name"])
            verdicts[key] = {c["type"]: c["status"] for c in parent["conditions"] if c["type"] in ("Accepted", "ResolvedRefs")}
    return verdicts


@pytest.mark.parametrize("name", STANDARD_CASES)
def test_envoy_gateway_case(name: str) -> None:
    doc, objects = _objects(name)
    translation = translate(objects, gateway_class="envoy-gateway-class")
    errors = [d.format() for d in translation.diagnostics if d.severity is Severity.ERROR]
    assert errors == []
    ours = {(ref.namespace, ref.name): {c["type"]: c["status"] for c in status["parents"][0]["conditions"]}
            for ref, status in translation.statuses.items() if ref.kind == "GRPCRoute" and status.get("parents")}
    assert ours == _expected(name)


@pytest.mark.parametrize("name", EG_ONLY_CASES)
def test_envoy_gateway_only_case_translates(name: str) -> None:
    """Envoy Gateway-only kinds / ExtensionRef filters: our verdicts may differ from Envoy Gateway's,
    but the case translates without errors and every GRPCRoute Envoy Gateway judged gets a status."""
    _, objects = _objects(name)
    translation = translate(objects, gateway_class="envoy-gateway-class")
    assert [d.format() for d in translation.diagnostics if d.severity is Severity.ERROR] == []
    ours = {(ref.namespace, ref.name) for ref, status in translation.statuses.items()
            if ref.kind == "GRPCRoute" and status.get("parents")}
    assert ours >= set(_expected(name))
