"""``BackendTrafficPolicy`` -> which targets get which health checks (Envoy Gateway's field names and defaults)."""
from __future__ import annotations

from dataclasses import dataclass

from translators import fields
from translators.diagnostics import Reporter
from translators.health import parse_health_check
from translators.ir import HealthCheck, OutlierDetection
from translators.objects import ConfigObject

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
TARGET_KINDS = {("", "Service"): 3, (GATEWAY_API_GROUP, "GRPCRoute"): 2, (GATEWAY_API_GROUP, "HTTPRoute"): 2,
                (GATEWAY_API_GROUP, "Gateway"): 1}
#: what is translated; anything else in the spec is a warning naming it
READ = frozenset({"targetRef", "targetRefs", "healthCheck"})


@dataclass(frozen=True, slots=True)
class BackendPolicy:
    namespace: str
    #: (group, kind, name, rank): rank orders Service over route over Gateway
    targets: tuple[tuple[str, str, str, int], ...]
    health_checks: tuple[HealthCheck, ...]
    outlier: OutlierDetection | None


def parse_backend_traffic_policy(obj: ConfigObject, rep: Reporter) -> BackendPolicy | None:
    spec = obj.spec
    refs = fields.sequence(spec.get("targetRefs"), "spec.targetRefs", rep)
    if spec.get("targetRef") is not None:
        refs = [*refs, spec.get("targetRef")]
    targets = []
    for i, r in enumerate(refs):
        m = fields.mapping(r, f"spec.targetRefs[{i}]", rep) or {}
        key = (m.get("group") or "", m.get("kind") or "")
        name = fields.string(m.get("name"), f"spec.targetRefs[{i}].name", rep, required=True)
        if key not in TARGET_KINDS:
            rep.warning(f"spec.targetRefs[{i}]", f"target {key[0] or 'core'}/{key[1]} is not supported (Gateway, "
                        "GRPCRoute, HTTPRoute, Service); ignored", code="unsupported")
            continue
        if name:
            targets.append((*key, name, TARGET_KINDS[key]))
    for key in sorted(spec):
        if key not in READ:
            rep.warning(f"spec.{key}", f"BackendTrafficPolicy field {key!r} is not translated; ignored",
                        code="unsupported")
    checks, outlier = parse_health_check(spec.get("healthCheck"), "spec.healthCheck", rep)
    if rep.failed or not targets or not (checks or outlier):
        return None
    return BackendPolicy(obj.namespace, tuple(targets), checks, outlier)
