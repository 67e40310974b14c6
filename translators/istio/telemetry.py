"""Istio ``Telemetry`` (``telemetry.istio.io/v1``): ``accessLogging`` with the ``envoy`` provider.

A Telemetry in the root namespace (``istio-system``) applies mesh-wide, one in another namespace to that
namespace's gateways, one with ``selector.matchLabels`` to the gateways with those labels; the most
specific wins, and ``disabled: true`` turns logging off.  Metrics and tracing are not translated (a
warning says so): Envoy's gRPC stats are always on for gateways.
"""
from __future__ import annotations

from translators import fields
from translators.diagnostics import Reporter
from translators.ir import AccessLogSelector
from translators.objects import ConfigObject

ROOT_NAMESPACE = "istio-system"
PROVIDERS = frozenset({"envoy"})


def parse_telemetry(obj: ConfigObject, rep: Reporter) -> AccessLogSelector | None:
    spec = obj.spec
    for key in ("metrics", "tracing"):
        if key in spec:
            rep.warning(f"spec.{key}", f"Telemetry {key} is not translated (Envoy's gRPC stats are always on for "
                        "gateways)", code="unsupported")
    if "targetRefs" in spec or "targetRef" in spec:
        rep.warning("spec.targetRefs", "targetRefs are not supported; use selector.matchLabels", code="unsupported")
    sel = fields.mapping(spec.get("selector"), "spec.selector", rep) or {}
    labels = fields.labels(sel.get("matchLabels"), "spec.selector.matchLabels", rep)
    logging = fields.sequence(spec.get("accessLogging"), "spec.accessLogging", rep)
    if not logging:
        return None
    disabled = False
    enabled = False
    for i, entry in enumerate(logging):
        m = fields.mapping(entry, f"spec.accessLogging[{i}]", rep) or {}
        names = [p.get("name") for p in fields.sequence(m.get("providers"), f"spec.accessLogging[{i}].providers", rep)
                 if isinstance(p, dict)] or ["envoy"]  # no provider: the mesh default, Envoy's stdout log
        for j, name in enumerate(names):
            if name not in PROVIDERS:
                rep.warning(f"spec.accessLogging[{i}].providers[{j}].name", f"provider {name!r} is not translated; "
                            "only 'envoy' (stdout) is", code="unsupported")
        if "filter" in m:
            rep.warning(f"spec.accessLogging[{i}].filter", "access log filters are not applied; every request is "
                        "logged", code="unsupported")
        if fields.boolean(m.get("disabled"), f"spec.accessLogging[{i}].disabled", rep):
            disabled = True
        elif "envoy" in names:
            enabled = True
    if rep.failed or not (enabled or disabled):
        return None
    return AccessLogSelector(obj.ref, "" if obj.namespace == ROOT_NAMESPACE and not labels else obj.namespace,
                             labels, disabled=disabled and not enabled)
