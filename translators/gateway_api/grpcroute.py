"""``GRPCRoute`` -> :class:`translators.ir.HttpRoutes`, the IR the Istio dialect also produces.

Method matches become paths exactly as Istio's conversion (``createGRPCURIMatch``) does:

============================  ======================
``method``                     path match
============================  ======================
Exact ``service: S``           prefix ``/S/``
Exact ``method: M``            regex ``/[^/]+/M``
Exact ``S`` + ``M``            exact ``/S/M``
RegularExpression ``S``        regex ``/S/.+``
RegularExpression ``M``        regex ``/[^/]+/M``
RegularExpression ``S`` + ``M``  regex ``/S/M``
============================  ======================

backendRefs to Services; cross-namespace refs need a ReferenceGrant in the target namespace.  A
refused or unresolvable backend keeps its share of the weight but sends it to a cluster with no
endpoints, so those calls get UNAVAILABLE, as the spec says.  Filters: RequestHeaderModifier,
ResponseHeaderModifier, RequestMirror.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from translators.defaults import DEFAULT_RETRY
from translators.diagnostics import Reporter
from translators.conditions import condition
from translators.ir import (BLACKHOLE_CLUSTER, HeaderMatch, HeaderOps, Route, RouteMatch, StringMatch, WeightedCluster,
                            cluster_name)
from translators import fields
from translators.hosts import Registry, fqdn
from translators.objects import ConfigObject


@dataclass(frozen=True, slots=True)
class RouteContext:
    registry: Registry
    #: is a reference from a route of this kind in (namespace) to Service (namespace, name) permitted?
    permitted: Callable[[str, str, str], bool]
    referenced: set[tuple[str, int, str]]


def _method_path(method: Any, path: str, rep: Reporter) -> StringMatch | None:
    if method is None:
        return None
    m = fields.mapping(method, path, rep) or {}
    mtype = m.get("type") or "Exact"
    service = fields.string(m.get("service"), f"{path}.service", rep)
    name = fields.string(m.get("method"), f"{path}.method", rep)
    if not service and not name:
        rep.error(path, "one of service or method is required")
        return None
    if mtype == "Exact":
        if service and name:
            return StringMatch("exact", f"/{service}/{name}")
        if service:
            return StringMatch("prefix", f"/{service}/")
        return StringMatch("regex", f"/[^/]+/{name}")
    if mtype != "RegularExpression":
        rep.error(f"{path}.type", f"must be Exact or RegularExpression, got {mtype!r}")
        return None
    for value, field_name in ((service, "service"), (name, "method")):
        if value and fields.regex(value, f"{path}.{field_name}", rep) is None:
            return None
    if service and name:
        return StringMatch("regex", f"/{service}/{name}")
    if service:
        return StringMatch("regex", f"/{service}/.+")
    return StringMatch("regex", f"/[^/]+/{name}")


def _headers(value: Any, path: str, rep: Reporter) -> tuple[HeaderMatch, ...]:
    out = []
    for i, h in enumerate(fields.sequence(value, path, rep)):
        m = fields.mapping(h, f"{path}[{i}]", rep) or {}
        name = fields.string(m.get("name"), f"{path}[{i}].name", rep, required=True)
        val = fields.string(m.get("value"), f"{path}[{i}].value", rep, required=True)
        mtype = m.get("type") or "Exact"
        kind = {"Exact": "exact", "RegularExpression": "regex"}.get(mtype) if isinstance(mtype, str) else None
        if kind is None:
            rep.error(f"{path}[{i}].type", "must be Exact or RegularExpression")
            continue
        if kind == "regex" and val is not None and fields.regex(val, f"{path}[{i}].value", rep) is None:
            continue
        if name and val is not None:
            out.append(HeaderMatch(name.lower(), StringMatch(kind, val)))
    return tuple(out)


def _header_modifier(value: Any, path: str, rep: Reporter) -> HeaderOps:
    m = fields.mapping(value, path, rep) or {}

    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        return tuple((str(h.get("name", "")).lower(), str(h.get("value", "")))
                     for h in fields.sequence(m.get(key), f"{path}.{key}", rep) if isinstance(h, dict))
    return HeaderOps(set=pairs("set"), add=pairs("add"),
                     remove=tuple(str(h).lower() for h in fields.sequence(m.get("remove"), f"{path}.remove", rep)))


def grpc_rules(obj: ConfigObject, rep: Reporter, ctx: RouteContext) -> tuple[list[Route], list[tuple[bool, str, str]]]:
    """A GRPCRoute's rules as routes (in the spec's precedence), and the state of each backendRef."""
    spec = obj.spec
    ns = obj.namespace
    resolved: list[tuple[bool, str, str]] = []  # per backendRef: (ok, reason, message)
    routes: list[Route] = []
    created = str((obj.raw.get("metadata") or {}).get("creationTimestamp") or "") if obj.raw else ""
    rules = fields.sequence(spec.get("rules"), "spec.rules", rep) or [{}]
    for i, rule in enumerate(rules):
        rp = f"spec.rules[{i}]"
        rm = fields.mapping(rule, rp, rep) or {}
        clusters = backend_clusters(rm, rp, rep, ns=ns, ctx=ctx, resolved=resolved)
        req_ops, resp_ops, mirror = header_filters(rm, rp, rep, ns=ns, ctx=ctx, allowed=GRPC_FILTERS)
        for j, match in enumerate(fields.sequence(rm.get("matches"), f"{rp}.matches", rep) or [{}]):
            mp = f"{rp}.matches[{j}]"
            mm = fields.mapping(match, mp, rep) or {}
            path = _method_path(mm.get("method"), f"{mp}.method", rep)
            route = Route(
                name=f"{ns}/{obj.name}/rules[{i}].matches[{j}]",
                match=RouteMatch(path=path, headers=_headers(mm.get("headers"), f"{mp}.headers", rep)),
                clusters=tuple(clusters) or (WeightedCluster(BLACKHOLE_CLUSTER, 1),),
                retries=DEFAULT_RETRY, request_headers=req_ops, response_headers=resp_ops,
                mirror_cluster=mirror, source=obj.ref)
            routes.append(replace(route, precedence=_precedence(route) + (created, ns, obj.name, i, j)))
    routes.sort(key=lambda r: r.precedence)
    return routes, resolved


#: the filters a GRPCRoute rule takes
GRPC_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror")


def backend_clusters(rm: dict, rp: str, rep: Reporter, *, ns: str, ctx: RouteContext,
                     resolved: list[tuple[bool, str, str]]) -> list[WeightedCluster]:
    """A rule's weighted backendRefs; a refused one keeps its weight on the blackhole cluster."""
    clusters = []
    for k, b in enumerate(fields.sequence(rm.get("backendRefs"), f"{rp}.backendRefs", rep)):
        cluster, state = _backend(b, f"{rp}.backendRefs[{k}]", rep, ns=ns, ctx=ctx)
        resolved.append(state)
        weight = b.get("weight", 1) if isinstance(b, dict) else 1
        if isinstance(weight, int) and not isinstance(weight, bool) and weight > 0:
            clusters.append(WeightedCluster(cluster, weight))
    return clusters


def header_filters(rm: dict, rp: str, rep: Reporter, *, ns: str, ctx: RouteContext,
                   allowed: tuple[str, ...]) -> tuple[HeaderOps, HeaderOps, str | None]:
    """RequestHeaderModifier, ResponseHeaderModifier and RequestMirror of a rule; other filter types are
    left to the caller (HTTPRoute) or warned about."""
    req_ops = resp_ops = HeaderOps()
    mirror = None
    for f, flt in enumerate(fields.sequence(rm.get("filters"), f"{rp}.filters", rep)):
        fp = f"{rp}.filters[{f}]"
        fm = fields.mapping(flt, fp, rep) or {}
        ftype = fm.get("type")
        if ftype == "RequestHeaderModifier":
            req_ops = _header_modifier(fm.get("requestHeaderModifier"), f"{fp}.requestHeaderModifier", rep)
        elif ftype == "ResponseHeaderModifier":
            resp_ops = _header_modifier(fm.get("responseHeaderModifier"), f"{fp}.responseHeaderModifier", rep)
        elif ftype == "RequestMirror":
            target = (fm.get("requestMirror") or {}).get("backendRef")
            mirror, _ = _backend(target, f"{fp}.requestMirror.backendRef", rep, ns=ns, ctx=ctx)
        elif ftype not in allowed:
            rep.warning(f"{fp}.type", f"filter {ftype!r} is not supported; ignored", code="unsupported")
    return req_ops, resp_ops, mirror


def _precedence(r: Route) -> tuple:
    """GRPCRoute precedence: exact service+method, then the longer service, then a method match, then more
    header matches; in the key shape HTTPRoutes use (path rank, -path length, method, -headers, -query), so
    both kinds merge on one listener."""
    p = r.match.path
    exact = p is not None and p.kind == "exact"
    length = len(p.value) if p is not None and p.kind in ("exact", "prefix") else 0
    has_method = p is not None and (p.kind == "exact" or p.value.startswith("/[^/]+/"))
    return (0 if exact else 2, -length, 0 if has_method else 1, -len(r.match.headers), 0)


def _backend(ref: Any, path: str, rep: Reporter, *, ns: str, ctx: RouteContext) -> tuple[str, tuple[bool, str, str]]:
    m = fields.mapping(ref, path, rep) or {}
    kind, group = m.get("kind") or "Service", m.get("group") or ""
    name = fields.string(m.get("name"), f"{path}.name", rep, required=True) or ""
    target_ns = m.get("namespace") or ns
    port = fields.port_number(m.get("port"), f"{path}.port", rep)
    if kind != "Service" or group not in ("", "core"):
        msg = f"backendRef kind {group}/{kind} is not supported (Service)"
        rep.warning(f"{path}.kind", msg, code="InvalidKind")
        return BLACKHOLE_CLUSTER, (False, "InvalidKind", msg)
    if target_ns != ns and not ctx.permitted(ns, target_ns, name):
        msg = f"backendRef to Service {target_ns}/{name} needs a ReferenceGrant in namespace {target_ns}"
        rep.warning(f"{path}.namespace", msg, code="RefNotPermitted")
        return BLACKHOLE_CLUSTER, (False, "RefNotPermitted", msg)
    host = fqdn(name, target_ns)
    svc = ctx.registry.get(host)
    if svc is None or port is None or svc.port(port) is None:
        msg = f"Service {target_ns}/{name}" + (f" has no port {port}" if svc is not None else " not found")
        rep.warning(f"{path}", msg, code="BackendNotFound")
        return BLACKHOLE_CLUSTER, (False, "BackendNotFound", msg)
    ctx.referenced.add((host, port, ""))
    return cluster_name(port=port, host=host), (True, "ResolvedRefs", "")


def reference_grants(objects: list[ConfigObject], *, from_kind: str = "GRPCRoute", to_kind: str = "Service") \
        -> Callable[[str, str, str], bool]:
    """ReferenceGrants as a predicate: may a ``from_kind`` in ``from_ns`` refer to ``to_kind`` ``to_ns/name``?"""
    grants: list[tuple[str, set[str], set[str] | None]] = []
    def listed(value: Any) -> list[dict]:
        return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []

    for g in objects:
        froms = {f.get("namespace") for f in listed(g.spec.get("from")) if isinstance(f.get("namespace"), str)
                 and f.get("kind") == from_kind and f.get("group") == "gateway.networking.k8s.io"}
        tos = [t for t in listed(g.spec.get("to")) if t.get("kind") == to_kind and (t.get("group") or "") == ""
               and isinstance(t.get("name") or "", str)]
        names = None if any(not t.get("name") for t in tos) else {t.get("name") for t in tos}
        if froms and tos:
            grants.append((g.namespace, froms, names))

    def permitted(from_ns: str, to_ns: str, name: str) -> bool:
        return any(ns == to_ns and from_ns in froms and (names is None or name in names) for ns, froms, names in grants)
    return permitted
