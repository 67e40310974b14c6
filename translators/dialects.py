"""The one table of dialects: which dialect reads each ``(group, kind)``, and as which compile stage.

Each dialect is a package that turns its own kinds into IR and imports no other dialect:

=============== ==================================== =====================================================
dialect         group                                kinds
=============== ==================================== =====================================================
``istio``       ``networking.istio.io``              Gateway, VirtualService, DestinationRule,
                                                     ServiceEntry, EnvoyFilter (the gRPC-Web pattern)
``gateway_api`` ``gateway.networking.k8s.io``        Gateway, GRPCRoute, HTTPRoute, ReferenceGrant,
                                                     GatewayClass
``emissary``    ``getambassador.io``                 Mapping, Host, TLSContext, Module, Listener
``kubernetes``  core, ``discovery.k8s.io``           Service, EndpointSlice, Secret, Namespace (labels)
=============== ==================================== =====================================================

What they share sits below them: field readers (:mod:`translators.fields`), the host registry
(:mod:`translators.hosts`), default policies (:mod:`translators.defaults`), diagnostics and
status conditions.  The compile step (:mod:`translators.engine`) is the only code that runs them
all and joins their IR; it asks this table which stage an object belongs to.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    group: str
    #: the API versions read, the preferred first (None: not checked; the API server validated them)
    versions: tuple[str, ...] | None
    #: kind -> compile stage
    stages: dict[str, str]


ISTIO = Dialect("istio", "networking.istio.io", ("v1", "v1beta1", "v1alpha3"), {
    "ServiceEntry": "ServiceEntry", "DestinationRule": "DestinationRule", "VirtualService": "VirtualService",
    "Gateway": "Gateway", "EnvoyFilter": "EnvoyFilter"})
ISTIO_TELEMETRY = Dialect("istio", "telemetry.istio.io", ("v1", "v1alpha1"), {"Telemetry": "Telemetry"})
GATEWAY_API = Dialect("gateway_api", "gateway.networking.k8s.io", None, {
    k: "gwapi:" + k for k in ("Gateway", "GRPCRoute", "HTTPRoute", "ReferenceGrant", "GatewayClass")}
    | {"BackendTLSPolicy": "BackendTLSPolicy"})
EMISSARY = Dialect("emissary", "getambassador.io", ("v3alpha1", "v2"), {
    k: "emissary:" + k for k in ("Mapping", "Host", "TLSContext", "Module", "Listener")})
ENVOY_GATEWAY = Dialect("envoy_gateway", "gateway.envoyproxy.io", ("v1alpha1",),
                        {"BackendTrafficPolicy": "BackendTrafficPolicy"})
KUBERNETES = Dialect("kubernetes", "", None, {"Service": "Service", "Secret": "Secret", "Namespace": "Namespace",
                                              "ConfigMap": "ConfigMap"})
KUBERNETES_DISCOVERY = Dialect("kubernetes", "discovery.k8s.io", None, {"EndpointSlice": "EndpointSlice"})

DIALECTS = (ISTIO, ISTIO_TELEMETRY, GATEWAY_API, EMISSARY, ENVOY_GATEWAY, KUBERNETES, KUBERNETES_DISCOVERY)
#: (group, kind) -> (dialect, stage)
TABLE: dict[tuple[str, str], tuple[Dialect, str]] = {
    (d.group, kind): (d, stage) for d in DIALECTS for kind, stage in d.stages.items()}
#: kinds that are read elsewhere (namespaces, the ConfigMap a Kubernetes source mounts) and need no word
QUIET_KINDS: frozenset[tuple[str, str]] = frozenset()
_GROUPS = tuple(sorted({d.group for d in DIALECTS if d.group}))

TRANSLATED = ("xds-server translates networking.istio.io Gateway/VirtualService/DestinationRule/ServiceEntry "
              "(and the gRPC-Web EnvoyFilter), telemetry.istio.io Telemetry (access logs), gateway.networking.k8s.io Gateway/GRPCRoute/HTTPRoute/"
              "ReferenceGrant/GatewayClass/BackendTLSPolicy, gateway.envoyproxy.io BackendTrafficPolicy (healthCheck), getambassador.io Mapping/Host/TLSContext/Module/Listener, core Service/EndpointSlice/"
              "Secret")


def lookup(obj: ConfigObject) -> tuple[Dialect, str] | None:
    """The dialect and stage of ``obj``, or None when no dialect reads its kind."""
    return TABLE.get((obj.group, obj.kind))


def check_version(obj: ConfigObject, dialect: Dialect) -> Diagnostic | None:
    """An error when ``obj``'s apiVersion is not one its dialect reads."""
    if dialect.versions is None:
        return None
    version = obj.api_version.rsplit("/", 1)[-1]
    if version in dialect.versions:
        return None
    first, *others = dialect.versions
    also = f" (or {', '.join(others)})" if others else ""
    return Diagnostic(Severity.ERROR, "api-version", f"unsupported apiVersion {obj.api_version!r}; use "
                      f"{dialect.group}/{first}{also}", obj.source, obj.ref, "apiVersion")


def untranslated_kind(obj: ConfigObject) -> Diagnostic | None:
    """A kind no dialect reads: a warning naming it and what would be needed (None for quiet kinds)."""
    if (obj.group, obj.kind) in QUIET_KINDS:
        return None
    where = "kind"
    hint = ""
    if obj.group not in _GROUPS and obj.group:
        close = difflib.get_close_matches(obj.group, _GROUPS, n=1, cutoff=0.75)
        if close:
            where, hint = "apiVersion", f"; did you mean {close[0]}/{obj.api_version.rsplit('/', 1)[-1]}?"
    return Diagnostic(Severity.WARNING, "unsupported-kind", f"{obj.kind} ({obj.api_version}) is not translated and is "
                      f"ignored{hint}; {TRANSLATED}", obj.source, obj.ref, where)
