"""Real-world config from ``tests/corpus`` (see its README for what each must do).

* ``istio-samples/``: every document parses and validation reports no
  errors (warnings for out-of-scope features are allowed).
* ``istio-docs-grpc/``: the gRPC-specific Istio YAML parses and validates
  without errors.
* Spot checks that translation of the samples means what Istio means.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from translators.diagnostics import Severity
from translators.node import NodeInfo
from translators.pipeline import translate
from translators.render import render
from xds_server.sources.files import load_dirs

CORPUS = Path(__file__).resolve().parent / "corpus"
SAMPLES = sorted((CORPUS / "istio-samples").glob("*.yaml"))
# the cds_test.go file is a test table for proxyless CDS, not Kubernetes objects
GRPC_DOCS = sorted(p for p in (CORPUS / "istio-docs-grpc").glob("*.yaml") if "cds_test.go" not in p.name)
assert SAMPLES and GRPC_DOCS, f"corpus missing under {CORPUS}"


def errors_for(paths: list[Path]) -> tuple[list[str], int]:
    objects, diags = load_dirs(paths)
    translation = translate(objects)
    all_diags = diags + translation.diagnostics
    return [d.format() for d in all_diags if d.severity is Severity.ERROR], len(objects)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_istio_sample_validates_without_errors(path: Path) -> None:
    errors, count = errors_for([path])
    assert count > 0, "no objects parsed"
    assert errors == []


def test_all_istio_samples_together() -> None:
    errors, count = errors_for([CORPUS / "istio-samples"])
    assert count >= 45
    assert errors == []


@pytest.mark.parametrize("path", GRPC_DOCS, ids=lambda p: p.name)
def test_istio_grpc_docs_validate_without_errors(path: Path) -> None:
    errors, _ = errors_for([path])
    assert errors == []


def test_bookinfo_gateway_routes_like_istio() -> None:
    objects, _ = load_dirs([CORPUS / "istio-samples" / "samples__bookinfo__networking__bookinfo-gateway.yaml"])
    out = render(translate(objects), NodeInfo.of(labels={"istio": "ingressgateway"}))
    assert [l["name"] for l in out["LDS"]] == ["0.0.0.0_8080"]
    [route_config] = out["RDS"]
    assert route_config["name"] == "http.8080"
    [vhost] = route_config["virtual_hosts"]
    assert vhost["domains"] == ["*"]
    matches = [r["match"] for r in vhost["routes"]]
    assert {"path": "/productpage"} in matches
    assert {"prefix": "/static"} in matches
    clusters = {r["route"]["cluster"] for r in vhost["routes"]}
    assert clusters == {"outbound|9080||productpage.default.svc.cluster.local"}
    # the route target exists as a cluster even though no Service is declared (Istio sends 503; we do too)
    assert "outbound|9080||productpage.default.svc.cluster.local" in {c["name"] for c in out["CDS"]}


def test_bookinfo_subsets_cross_file(tmp_path: Path) -> None:
    """virtual-service-reviews-90-10 with destination-rule-all and the reviews Service: weighted subset clusters."""
    base = CORPUS / "istio-samples"
    (tmp_path / "reviews-service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"
        "spec: {ports: [{name: http, port: 9080}]}\n")
    objects, _ = load_dirs([base / "samples__bookinfo__networking__virtual-service-reviews-90-10.yaml",
                            base / "samples__bookinfo__networking__destination-rule-all.yaml", tmp_path])
    translation = translate(objects)
    assert not [d.format() for d in translation.diagnostics if d.severity is not Severity.INFO]
    [routes] = translation.model.http_routes
    assert [(c.cluster, c.weight) for c in routes.routes[0].clusters] == [
        ("outbound|9080|v1|reviews.default.svc.cluster.local", 90),
        ("outbound|9080|v2|reviews.default.svc.cluster.local", 10)]
    assert {c.name for c in translation.model.clusters} >= {
        "outbound|9080|v1|reviews.default.svc.cluster.local", "outbound|9080|v3|reviews.default.svc.cluster.local"}
