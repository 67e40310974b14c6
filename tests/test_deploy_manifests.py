"""deploy/kubernetes/ validates against the Kubernetes schemas and says what the Kubernetes issue asks."""
from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
DOCS = [(p.name, d) for p in sorted(DEPLOY.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


@pytest.mark.parametrize("name,doc", DOCS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCS])
def test_schema_valid(name: str, doc: dict) -> None:
    kubernetes_validate.validate(doc, "1.30", strict=True)


def _one(kind: str, name: str | None = None) -> dict:
    return next(d for _, d in DOCS if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def test_deployment_is_replicated_probed_non_root_read_only() -> None:
    dep = _one("Deployment", "xds-server")
    pod = dep["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert dep["spec"]["replicas"] == 2
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    assert c["resources"]["requests"]
    assert "--kubernetes" in c["args"]


def test_rbac_is_least_privilege() -> None:
    rules = _one("ClusterRole")["rules"]
    for rule in rules:
        if all(r.endswith("/status") for r in rule["resources"]):
            assert rule["verbs"] == ["patch"]
        elif rule["resources"] == ["tokenreviews"]:
            assert rule["verbs"] == ["create"]
        else:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert "secrets" not in rule["resources"]  # only in the served namespaces' Roles
    lease_rules = _one("Role", "xds-server-leader-election")["rules"]
    assert lease_rules == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                            "verbs": ["get", "create", "update"]}]


def test_service_exposes_only_xds() -> None:
    ports = {p["name"]: p["port"] for p in _one("Service")["spec"]["ports"]}
    assert ports == {"grpc-xds": 18000}


def test_xds_is_authenticated_and_admin_stays_on_loopback() -> None:
    [c] = _one("Deployment", "xds-server")["spec"]["template"]["spec"]["containers"]
    args = c["args"]
    value = dict(zip(args, args[1:]))
    assert value["--xds-auth"] == "kubernetes" and "--xds-tls-cert" in value and "--insecure-xds" not in args
    assert value["--admin-address"].startswith("127.0.0.1:")
    assert c["readinessProbe"]["httpGet"]["port"] == "http-probe"


def test_the_gateway_sends_a_projected_token_for_our_audience() -> None:
    pod = _one("Deployment", "edge-gateway")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "xds-token"]
    assert volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "xds-server"
    [init] = pod["initContainers"]
    assert "--xds-token-file" in init["args"] and "--xds-ca" in init["args"]
