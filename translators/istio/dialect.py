"""Istio objects -> one :class:`translators.ir.Model`.

Order matters because later kinds refer to earlier ones: services
(ServiceEntry, Service) make the registry, DestinationRules add subsets and
policy, Gateways are independent, VirtualServices resolve destinations
against all of the above.  Finally every cluster a route points at is made to
exist (with no endpoints when nothing declares it), so a snapshot is always
consistent.

**Last accepted version.**  An object whose new version has errors is not
silently dropped and does not take its routes down either: if an earlier
version of the same object was accepted, that version keeps serving and the
diagnostics say so.  ``accepted`` goes in and comes out, so this stays a pure
function.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, TypeVar

from translators.diagnostics import Diagnostic, Reporter, Severity
from translators.ir import BLACKHOLE_CLUSTER, Cluster, Gateway, Service, HttpRoutes, Model, Service, TrafficPolicy, cluster_name
from translators.ir import GrpcWebSelector
from translators.istio import API_GROUP, API_VERSIONS, KINDS
from translators.istio.destination_rule import DestinationPolicy, parse_destination_rule
from translators.istio.destinations import Destinations
from translators.istio import envoy_filter
from translators import known_fields
from translators.istio.gateway import parse_gateway
from translators.istio.hosts import Registry
from translators.istio.secret import parse_secret
from translators.istio.service_entry import parse_kubernetes_service, parse_service_entry
from translators.istio.virtual_service import parse_virtual_service
from translators.gateway_api import DEFAULT_GATEWAY_CLASS
from translators.gateway_api.conditions import condition
from translators.gateway_api.gateway import parse_gateway as parse_gateway_api_gateway
from translators.gateway_api.grpcroute import RouteContext, parse_grpc_route, reference_grants
from translators.objects import ConfigObject, ObjectRef
from translators import route_analysis

T = TypeVar("T")

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_KINDS = frozenset({"Gateway", "GRPCRoute", "ReferenceGrant", "GatewayClass"})
#: kinds that are understood elsewhere or deliberately ignored without a word
QUIET_KINDS = frozenset({("", "Namespace"), ("", "ConfigMap")})


@dataclass(slots=True)
class _Parsed:
    """One object's parse outcome, reusable while the same object (by identity) and context come back."""

    obj: ConfigObject
    result: Any
    diagnostics: list[Diagnostic]
    accepted: ConfigObject | None
    referenced: frozenset[tuple[str, int, str]]
    #: what the outcome depended on besides the object (for VirtualServices: the shape of every host they
    #: looked up); the outcome is reused only while this is unchanged
    signature: tuple = ()


#: parse outcomes by (kind, id(object), context), and per-service clusters; handed to the next translation
ParseMemo = dict[tuple, Any]


@dataclass(slots=True)
class Compiled:
    model: Model
    diagnostics: list[Diagnostic]
    accepted: dict[ObjectRef, ConfigObject] = field(default_factory=dict)
    memo: ParseMemo = field(default_factory=dict)
    #: status documents to write back (Gateway API objects, and Istio objects with errors)
    statuses: dict[ObjectRef, dict] = field(default_factory=dict)
    #: clusters changed since the previous compile, name -> Cluster or None (removed); None: all of them
    cluster_changes: dict | None = None


class _Fallback:
    """Parse an object; on errors, fall back to its last accepted version.

    Incremental: an object that is the very same object as in the previous
    translation (sources keep unchanged objects) with the same context is not
    parsed again; its outcome, diagnostics and referenced clusters are reused.
    """

    __slots__ = ("previous", "accepted", "diagnostics", "old_memo", "memo")

    def __init__(self, previous: Mapping[ObjectRef, ConfigObject], memo: ParseMemo | None) -> None:
        self.previous = previous
        self.accepted: dict[ObjectRef, ConfigObject] = {}
        self.diagnostics: list[Diagnostic] = []
        self.old_memo = memo or {}
        self.memo: ParseMemo = {}

    def parse(self, obj: ConfigObject, parser: Callable[[ConfigObject, Reporter], T], *, context: int = 0,
              destinations: Destinations | None = None,
              signature: Callable[[frozenset[str]], tuple] | None = None) -> T | None:
        """``signature(hosts)``: with ``destinations``, a value that changes when anything the parse read
        about those hosts changes; the previous outcome is reused only while it is equal."""
        key = (obj.kind, id(obj), context)
        hit = self.old_memo.get(key)
        if hit is not None and hit.obj is obj and signature is not None and hit.signature != \
                signature(frozenset(h for h, _ in hit.signature)):
            hit = None
        if hit is None or hit.obj is not obj:
            if destinations is not None:
                destinations.recording = []
                destinations.looked_up = set()
            start = len(self.diagnostics)
            result = self._parse(obj, parser)
            sig = signature(frozenset(destinations.looked_up)) if destinations is not None and signature else ()
            hit = _Parsed(obj, result, self.diagnostics[start:], self.accepted.get(obj.ref),
                          frozenset(destinations.recording) if destinations is not None else frozenset(), sig)
            if destinations is not None:
                destinations.recording = None
                destinations.looked_up = None
        else:
            self.diagnostics.extend(hit.diagnostics)
            if hit.accepted is not None:
                self.accepted[obj.ref] = hit.accepted
            if destinations is not None:
                destinations.referenced |= hit.referenced
        self.memo[key] = hit
        return hit.result

    def _parse(self, obj: ConfigObject, parser: Callable[[ConfigObject, Reporter], T]) -> T | None:
        rep = Reporter(file=obj.source, ref=obj.ref)
        result = isolated(parser, obj, rep)
        self.diagnostics.extend(rep.items)
        if not rep.failed:
            self.accepted[obj.ref] = obj
            return result
        prev = self.previous.get(obj.ref)
        if prev is None or prev == obj:
            return None
        rep_prev = Reporter(file=prev.source, ref=prev.ref)
        result = isolated(parser, prev, rep_prev)
        if rep_prev.failed:
            return None
        self.accepted[obj.ref] = prev
        self.diagnostics.append(Diagnostic(Severity.WARNING, "kept-previous",
                                           "the new version has errors; the last accepted version keeps serving",
                                           obj.source, obj.ref, ""))
        return result


def isolated(parser: Callable[..., T], obj: ConfigObject, rep: Reporter, *args: Any) -> T | None:
    """Run one object's parser; an unexpected exception becomes an error on that object, never a crash
    of the whole translation (the rest of the config still translates)."""
    try:
        return parser(obj, rep, *args)
    except Exception as exc:  # noqa: BLE001 - one object must not take the others down
        rep.error("", f"internal error translating {obj.ref}: {type(exc).__name__}: {exc}"[:500], code="internal")
        return None


def _check_version(obj: ConfigObject, diags: list[Diagnostic]) -> bool:
    version = obj.api_version.rsplit("/", 1)[-1]
    if version not in API_VERSIONS:
        diags.append(Diagnostic(Severity.ERROR, "api-version", f"unsupported apiVersion {obj.api_version!r}; use "
                                f"{API_GROUP}/v1, v1beta1 or v1alpha3", obj.source, obj.ref, "apiVersion"))
        return False
    return True


TRANSLATED = ("xds-server translates networking.istio.io Gateway/VirtualService/DestinationRule/ServiceEntry "
              "(and the gRPC-Web EnvoyFilter), gateway.networking.k8s.io Gateway/GRPCRoute/ReferenceGrant/"
              "GatewayClass, core Service/EndpointSlice/Secret")
_KNOWN_GROUPS = (API_GROUP, GATEWAY_API_GROUP, "discovery.k8s.io")


def _untranslated_kind(obj: ConfigObject) -> Diagnostic:
    """A kind xds-server does not translate: a warning naming it and what would be needed."""
    where = "kind"
    hint = ""
    if obj.group not in _KNOWN_GROUPS and obj.group:
        close = difflib.get_close_matches(obj.group, _KNOWN_GROUPS, n=1, cutoff=0.75)
        if close:
            where, hint = "apiVersion", f"; did you mean {close[0]}/{obj.api_version.rsplit('/', 1)[-1]}?"
    return Diagnostic(Severity.WARNING, "unsupported-kind", f"{obj.kind} ({obj.api_version}) is not translated and is "
                      f"ignored{hint}; {TRANSLATED}", obj.source, obj.ref, where)


def _unknown_fields(obj: ConfigObject, fb: _Fallback) -> list[Diagnostic]:
    """``unknown-field`` warnings for one object, memoized by object identity like parse outcomes."""
    key = ("unknown-fields", id(obj))
    hit = fb.old_memo.get(key)
    if hit is None or hit[0] is not obj:
        paths = known_fields.unknown_fields(group=obj.group, kind=obj.kind, doc_or_spec=obj.raw or obj.spec)
        hit = (obj, [Diagnostic(Severity.WARNING, "unknown-field", f"unknown field for {obj.kind} "
                                f"({obj.api_version}); ignored", obj.source, obj.ref, p) for p in paths])
    fb.memo[key] = hit
    return hit[1]


def compile_istio(objects: Iterable[ConfigObject], *, accepted: Mapping[ObjectRef, ConfigObject] | None = None,
                  memo: ParseMemo | None = None, gateway_class: str = DEFAULT_GATEWAY_CLASS) -> Compiled:
    """Every object into one IR model, incrementally: ``memo`` is the previous result's, and only what
    changed since is recompiled (:mod:`translators.istio.engine`)."""
    from translators.istio.engine import compile_objects

    memo = memo or {}
    out = compile_objects(objects, accepted=accepted, state=memo.get("engine"), token=memo.get("token"),
                          gateway_class=gateway_class)
    return Compiled(out.model, out.diagnostics, out.accepted, {"engine": out.state, "token": out.token},
                    out.statuses, out.cluster_changes)


def _gateway_api(objs: dict[str, list[ConfigObject]], *, registry: Registry, referenced: set, gateway_class: str,
                 diags: list[Diagnostic], statuses: dict[ObjectRef, dict]) -> tuple[list[Gateway], list[HttpRoutes]]:
    """Gateways of our class and the GRPCRoutes attached to them, with their statuses."""
    for gc in objs["GatewayClass"]:
        if gc.name == gateway_class:
            statuses[gc.ref] = {"conditions": [condition("Accepted", True, "Accepted")]}
    gateways: list[Gateway] = []
    listeners: dict[str, dict[str, int]] = {}
    for obj in objs["Gateway"]:
        if obj.spec.get("gatewayClassName") != gateway_class:
            diags.append(Diagnostic(Severity.WARNING, "other-class", f"Gateway ({obj.api_version}) has gatewayClassName "
                                    f"{obj.spec.get('gatewayClassName')!r}, not {gateway_class!r}: not translated; set "
                                    f"gatewayClassName: {gateway_class} or run with --gateway-class "
                                    f"{obj.spec.get('gatewayClassName')}", obj.source, obj.ref, "spec.gatewayClassName"))
            continue
        rep = Reporter(file=obj.source, ref=obj.ref)
        gw, status = isolated(parse_gateway_api_gateway, obj, rep) or (None, None)
        diags.extend(rep.items)
        if status is not None:
            statuses[obj.ref] = status
        if gw is not None:
            gateways.append(gw)
            listeners[f"{obj.namespace}/{obj.name}"] = {s.port_name: s.port for s in gw.servers}
    ctx = RouteContext(registry=registry, permitted=reference_grants(objs["ReferenceGrant"]), gateways=listeners,
                       referenced=referenced)
    routes: list[HttpRoutes] = []
    attached: dict[str, int] = {}
    existing = {f"{o.namespace}/{o.name}" for o in objs["Gateway"]}  # of any class
    for obj in objs["GRPCRoute"]:
        rep = Reporter(file=obj.source, ref=obj.ref)
        hr, status = isolated(parse_grpc_route, obj, rep, ctx) or (None, None)
        diags.extend(rep.items)
        if status is not None:
            statuses[obj.ref] = status
            diags.extend(_route_status_diagnostics(obj, status, existing))
        if hr is not None:
            routes.append(hr)
            for key in hr.gateways:
                attached[key] = attached.get(key, 0) + 1
    for gw in gateways:
        for listener in statuses[gw.ref]["listeners"]:
            listener["attachedRoutes"] = attached.get(gw.key, 0)
    return gateways, routes


def _route_status_diagnostics(obj: ConfigObject, status: dict, existing: set[str]) -> list[Diagnostic]:
    """A route's non-True status conditions as warnings, so validate, logs and /debug/diagnostics show
    what ``kubectl get grpcroute -o yaml`` would; a parentRef naming no Gateway at all says so."""
    out = []
    refs = obj.spec.get("parentRefs") if isinstance(obj.spec.get("parentRefs"), list) else []
    for i, parent in enumerate(status.get("parents") or ()):
        ref = parent.get("parentRef") or {}
        key = f"{ref.get('namespace') or obj.namespace}/{ref.get('name')}"
        for c in parent.get("conditions") or ():
            if c.get("status") == "True":
                continue
            text = f"status.parents[{i}]: {c['type']}={c['status']} ({c['reason']})"
            if c["type"] == "Accepted" and (ref.get("kind") or "Gateway") == "Gateway" and key not in existing:
                name_path = f"spec.parentRefs[{i}].name" if i < len(refs) else "spec.parentRefs"
                out.append(Diagnostic(Severity.WARNING, "unknown-parent", f"no Gateway {key} "
                                      f"({GATEWAY_API_GROUP}) in the config; the route is not attached; {text}",
                                      obj.source, obj.ref, name_path))
                continue
            if c["type"] == "ResolvedRefs" and i > 0:
                continue  # the same for every parent
            # ResolvedRefs=False repeats backend warnings the route already has, with their field paths
            severity = Severity.INFO if c["type"] == "ResolvedRefs" else Severity.WARNING
            out.append(Diagnostic(severity, "route-status", f"{c['type']}={c['status']} ({c['reason']})"
                                  + (f": {c['message']}" if c.get("message") else ""), obj.source, obj.ref,
                                  f"status.parents[{i}]"))
    return out


def _istio_statuses(diags: list[Diagnostic], statuses: dict[ObjectRef, dict]) -> None:
    """Istio objects that fail validation get it on the object, as istiod's analysis would report it."""
    errors: dict[ObjectRef, list[Diagnostic]] = {}
    for d in diags:
        if d.object_ref is not None and d.object_ref.group == API_GROUP and d.severity is Severity.ERROR:
            errors.setdefault(d.object_ref, []).append(d)
    for ref, ds in errors.items():
        statuses[ref] = {"validationMessages": [{"level": "ERROR", "type": {"code": "XDS0001", "name": "InvalidConfig"},
                                                 "message": f"{d.field_path}: {d.message}"} for d in ds],
                         "conditions": [condition("Reconciled", False, "Invalid", f"{ds[0].field_path}: {ds[0].message}")]}


def _check_credentials(gateways: list[Gateway], secrets: list, objects: list[ConfigObject],
                       diags: list[Diagnostic]) -> None:
    """Reason as ``serve`` does: an Envoy gets a server's Secret from *its own* namespace (the one it was
    bootstrapped with), which for an Istio Gateway need not be the Gateway's.  Here the Envoy's namespace
    is unknown, so a Secret in any namespace can serve: info says which namespace the Envoy must run in
    when that is not the Gateway's own; a warning only when no namespace has it (the Secret may come later)."""
    have = {(s.namespace, s.name) for s in secrets if s.cert_pem}
    have_ca = {(s.namespace, s.name) for s in secrets if s.ca_pem}
    namespaces = sorted({s.namespace for s in secrets})
    source = {o.ref: o.source for o in objects}
    for g in gateways:
        for i, server in enumerate(g.servers):
            if server.tls is None:
                continue
            name = server.tls.credential_name
            where = source.get(g.ref, ""), g.ref, f"spec.servers[{i}].tls.credentialName"
            with_cert = [ns for ns in namespaces if (ns, name) in have]
            if not with_cert:
                diags.append(Diagnostic(Severity.WARNING, "unknown-secret", f"no TLS Secret {name!r} in any namespace "
                                        f"(looked in {g.ref.namespace!r} and the others): it must be in the namespace of "
                                        "the Envoy that selects this Gateway (`xds-server bootstrap envoy --namespace "
                                        "NAMESPACE`); this server is not served until it exists", *where))
                continue
            usable = with_cert if server.tls.mode != "MUTUAL" else \
                [ns for ns in with_cert if (ns, name) in have_ca or (ns, f"{name}-cacert") in have_ca]
            if not usable:
                diags.append(Diagnostic(Severity.WARNING, "unknown-secret", f"MUTUAL needs a client CA: ca.crt in "
                                        f"Secret {name!r} or a Secret {name}-cacert (in {', '.join(with_cert)})",
                                        where[0], g.ref, f"spec.servers[{i}].tls.mode"))
                continue
            if g.gateway_api or g.ref.namespace in usable:
                continue  # the usual layout: the Envoy runs in the Gateway's namespace
            found = ", ".join(usable)
            flags = " or ".join(f"`xds-server bootstrap envoy --namespace {ns}`" for ns in usable)
            diags.append(Diagnostic(Severity.INFO, "secret-namespace", f"TLS Secret {name!r} found in {found}, not in "
                                    f"the Gateway's namespace {g.ref.namespace!r}: an Envoy gets Secrets from its own "
                                    f"namespace, so run the Envoy with {flags}", *where))


def _policy_sites(dr: DestinationPolicy, spec: Mapping[str, Any]) -> list[tuple[str, TrafficPolicy, int | None, str | None]]:
    """(field path, policy, port or None, subset or None) of every traffic policy a DestinationRule sets."""
    out: list[tuple[str, TrafficPolicy, int | None, str | None]] = [("spec.trafficPolicy", dr.policy, None, None)]
    tp = spec.get("trafficPolicy")
    pls = tp.get("portLevelSettings") if isinstance(tp, dict) else None
    for i, entry in enumerate(pls if isinstance(pls, list) else ()):
        port = entry.get("port", {}).get("number") if isinstance(entry, dict) and isinstance(entry.get("port"), dict) else None
        if port in dr.port_policies:
            out.append((f"spec.trafficPolicy.portLevelSettings[{i}]", dr.port_policies[port], port, None))
    raw_subsets = spec.get("subsets")
    names = [x.get("name") if isinstance(x, dict) else None for x in (raw_subsets if isinstance(raw_subsets, list) else ())]
    for sub in dr.subsets:
        if sub.policy is not None and sub.name in names:
            out.append((f"spec.subsets[{names.index(sub.name)}].trafficPolicy", sub.policy, None, sub.name))
    return out


def _check_upstream_credentials(policies: Mapping[str, DestinationPolicy], secrets: list,
                                objects: list[ConfigObject], diags: list[Diagnostic]) -> None:
    """DestinationRule ``tls.credentialName``: the cluster asks SDS for ``kubernetes://NAME-cacert`` (and for
    MUTUAL ``kubernetes://NAME``); a Secret that cannot provide them leaves the cluster waiting for ever."""
    have_cert = {s.name for s in secrets if s.cert_pem}
    have_ca = {s.name for s in secrets if s.ca_pem}
    by_ref = {o.ref: o for o in objects}
    for dr in policies.values():
        obj = by_ref.get(dr.ref)
        if obj is None:
            continue
        for path, policy, _, _ in _policy_sites(dr, obj.spec):
            tls = policy.tls
            if tls is None or not tls.credential_name:
                continue
            name = tls.credential_name
            if not tls.insecure_skip_verify and name not in have_ca and f"{name}-cacert" not in have_ca:
                diags.append(Diagnostic(
                    Severity.WARNING, "unknown-secret", f"Secret {name!r} has no ca.crt and there is no Secret "
                    f"{name}-cacert: the cluster's validation context refers to SDS secret kubernetes://{name}-cacert, "
                    "which is never generated, so Envoy never finishes the cluster (no traffic); add ca.crt, or set "
                    "insecureSkipVerify", obj.source, dr.ref, f"{path}.tls.credentialName"))
            if tls.mode == "MUTUAL" and name not in have_cert:
                diags.append(Diagnostic(
                    Severity.WARNING, "unknown-secret", f"MUTUAL needs a client certificate: no TLS Secret {name!r} "
                    f"with tls.crt and tls.key, so SDS secret kubernetes://{name} is never generated",
                    obj.source, dr.ref, f"{path}.tls.credentialName"))


#: Envoy's (and Istio's) default outlier_detection.max_ejection_percent
DEFAULT_MAX_EJECTION_PERCENT = 10


def _ejection_warnings(clusters: list[Cluster], policies: Mapping[str, DestinationPolicy],
                       objects: list[ConfigObject]) -> list[Diagnostic]:
    """Outlier detection that can never eject: Envoy ejects a host only while
    ``100 * (ejected + 1) / hosts <= max_ejection_percent``, so with the default 10% a cluster
    needs at least 10 endpoints before even one is ejected."""
    out: list[Diagnostic] = []
    seen: set[tuple[ObjectRef, str]] = set()
    by_ref = {o.ref: o for o in objects}
    for c in clusters:
        outlier = c.policy.outlier
        dr = policies.get(c.host)
        if outlier is None or dr is None or c.discovery != "EDS" or not c.endpoints:
            continue
        n = len({(e.address, e.port) for e in c.endpoints})
        pct = DEFAULT_MAX_EJECTION_PERCENT if outlier.max_ejection_percent is None else outlier.max_ejection_percent
        if n * pct >= 100:
            continue
        obj = by_ref.get(dr.ref)
        if obj is None:
            continue
        # the most specific level that sets outlierDetection: subset, then port-level, then the top
        rank = {"top": (0, "spec.trafficPolicy")}
        for site, policy, port, subset in _policy_sites(dr, obj.spec):
            if policy.outlier is None:
                continue
            if subset is not None and subset == c.subset:
                rank["subset"] = (2, site)
            elif port is not None and port == c.port:
                rank["port"] = (1, site)
        path = max(rank.values())[1]
        field_path = f"{path}.outlierDetection.maxEjectionPercent"
        if (dr.ref, field_path) in seen:
            continue
        seen.add((dr.ref, field_path))
        explicit = "" if outlier.max_ejection_percent is not None else " (the default)"
        need = -(-100 // n)
        out.append(Diagnostic(
            Severity.WARNING, "outlier-never-ejects", f"maxEjectionPercent {pct}%{explicit} cannot eject even one of "
            f"the {n} endpoint{'s' if n != 1 else ''} of {c.name}: Envoy ejects a host only while the ejected hosts stay "
            f"within {pct}% of the cluster; set maxEjectionPercent to at least {need} for outlier detection to act",
            obj.source, dr.ref, field_path))
    return out


def _service_clusters(host: str, svc: Service, dr: DestinationPolicy | None) -> list[Cluster]:
    out = []
    discovery = "STRICT_DNS" if svc.resolution == "DNS" else "EDS"
    for port in svc.ports:
        port_endpoints = tuple(e for e in svc.endpoints if e.service_port in (0, port.number))
        subsets = [("", ())] + [(s.name, s.labels) for s in (dr.subsets if dr else ())]
        for subset, selector in subsets:
            name = cluster_name(port=port.number, subset=subset, host=host)
            policy = dr.policy_for(port=port.number, subset=subset) if dr else TrafficPolicy()
            eps = tuple(e for e in port_endpoints if e.matches(selector)) if selector else port_endpoints
            out.append(Cluster(name, host, port.number, subset, port.h2, policy, discovery, eps))
    return out


def _clusters(*, registry: Registry, policies: Mapping[str, DestinationPolicy], referenced: set[tuple[str, int, str]],
              memo: dict, old_memo: dict) -> list[Cluster]:
    """One cluster per service port, plus one per DestinationRule subset; then placeholders.

    A service whose Service and DestinationRule objects are the same as last time keeps its
    very Cluster objects, so builders can reuse their messages by identity.
    """
    out: dict[str, Cluster] = {}
    for host, svc in registry.by_host.items():
        dr = policies.get(host)
        key = ("clusters", id(svc), id(dr))
        hit = old_memo.get(key)
        if hit is None or hit[0] is not svc or hit[1] is not dr:
            hit = (svc, dr, _service_clusters(host, svc, dr))
        memo[key] = hit
        for c in hit[2]:
            out[c.name] = c
    for host, port, subset in sorted(referenced):
        name = cluster_name(port=port, subset=subset, host=host)
        if name not in out:
            dr = policies.get(host)
            policy = dr.policy_for(port=port, subset=subset) if dr else TrafficPolicy()
            out[name] = Cluster(name, host, port, subset, True, policy, "EDS", ())
    return [out[k] for k in sorted(out)]

