"""Envoy Gateway's ``healthCheck`` form (``BackendTrafficPolicy.spec.healthCheck``), shared by the dialects
that accept it: the Istio DestinationRule annotation ``xds-server.io/health-check`` and, with the same
field names and defaults, Envoy Gateway's own policy.

``active``: ``type`` GRPC (``grpc.service``), HTTP (``http.path``, ``http.expectedStatuses``) or TCP;
``interval`` (3s), ``timeout`` (1s), ``unhealthyThreshold`` (3), ``healthyThreshold`` (1) -- Envoy
Gateway's defaults (api/v1alpha1/healthcheck_types.go).  ``passive`` maps to outlier detection:
``consecutive5XxErrors`` (5), ``consecutiveGatewayErrors`` (0), ``interval`` (3s), ``baseEjectionTime``
(30s), ``maxEjectionPercent`` (10).
"""
from __future__ import annotations

from typing import Any

from translators import fields
from translators.diagnostics import Reporter
from translators.ir import HealthCheck, OutlierDetection

_U32 = 2**32 - 1


def parse_health_check(value: Any, path: str, rep: Reporter) -> tuple[tuple[HealthCheck, ...], OutlierDetection | None]:
    m = fields.mapping(value, path, rep)
    if m is None:
        return (), None
    for key in m:
        if key not in ("active", "passive"):
            rep.warning(f"{path}.{key}", f"unknown field {key!r} of healthCheck (active, passive); ignored",
                        code="unknown-field")
    checks: list[HealthCheck] = []
    a = fields.mapping(m.get("active"), f"{path}.active", rep)
    if a is not None:
        ap = f"{path}.active"
        kind = fields.string(a.get("type"), f"{ap}.type", rep, required=True)
        kind = kind.upper() if kind else None
        common = dict(
            interval_s=fields.positive_duration(a.get("interval", "3s"), f"{ap}.interval", rep) or 3.0,
            timeout_s=fields.positive_duration(a.get("timeout", "1s"), f"{ap}.timeout", rep) or 1.0,
            unhealthy_threshold=fields.integer(a.get("unhealthyThreshold", 3), f"{ap}.unhealthyThreshold", rep,
                                               lo=1, hi=_U32) or 3,
            healthy_threshold=fields.integer(a.get("healthyThreshold", 1), f"{ap}.healthyThreshold", rep,
                                             lo=1, hi=_U32) or 1)
        if kind == "GRPC":
            g = fields.mapping(a.get("grpc"), f"{ap}.grpc", rep) or {}
            checks.append(HealthCheck("GRPC", grpc_service=fields.string(g.get("service"), f"{ap}.grpc.service",
                                                                         rep) or "", **common))
        elif kind == "HTTP":
            h = fields.mapping(a.get("http"), f"{ap}.http", rep) or {}
            statuses = []
            for i, code in enumerate(fields.sequence(h.get("expectedStatuses"), f"{ap}.http.expectedStatuses", rep)):
                c = fields.integer(code, f"{ap}.http.expectedStatuses[{i}]", rep, lo=100, hi=599)
                if c is not None:
                    statuses.append((c, c + 1))
            checks.append(HealthCheck("HTTP", http_path=fields.string(h.get("path"), f"{ap}.http.path", rep,
                                                                      required=True) or "/",
                                      expected_statuses=tuple(statuses), **common))
        elif kind == "TCP":
            checks.append(HealthCheck("TCP", **common))
        elif kind is not None:
            rep.error(f"{ap}.type", f"must be GRPC, HTTP or TCP, got {kind!r}")
    outlier = None
    p = fields.mapping(m.get("passive"), f"{path}.passive", rep)
    if p is not None:
        pp = f"{path}.passive"
        outlier = OutlierDetection(
            consecutive_5xx=fields.integer(p.get("consecutive5XxErrors", 5), f"{pp}.consecutive5XxErrors", rep,
                                           lo=0, hi=_U32),
            consecutive_gateway_errors=fields.integer(p.get("consecutiveGatewayErrors", 0),
                                                      f"{pp}.consecutiveGatewayErrors", rep, lo=0, hi=_U32),
            interval_s=fields.positive_duration(p.get("interval", "3s"), f"{pp}.interval", rep),
            base_ejection_time_s=fields.positive_duration(p.get("baseEjectionTime", "30s"), f"{pp}.baseEjectionTime",
                                                          rep),
            max_ejection_percent=fields.integer(p.get("maxEjectionPercent", 10), f"{pp}.maxEjectionPercent", rep,
                                                lo=0, hi=100))
    return tuple(checks), outlier


#: per-method gRPC stats for every method on a Gateway's listeners (Istio or Gateway API Gateway annotation)
GRPC_STATS_ANNOTATION = "xds-server.io/grpc-stats-all-methods"


def grpc_stats_all_methods(annotations, rep: Reporter) -> bool:  # noqa: ANN001
    """``xds-server.io/grpc-stats-all-methods: "true"``: ``cluster.NAME.grpc.SERVICE.METHOD.*`` for every
    method.  Off by default: paths are the client's to choose, so each new one would add stats."""
    value = annotations.get(GRPC_STATS_ANNOTATION)
    if value is None:
        return False
    if value not in ("true", "false"):
        rep.error(f"metadata.annotations[{GRPC_STATS_ANNOTATION}]", f"must be \"true\" or \"false\", got {value!r}")
        return False
    return value == "true"
