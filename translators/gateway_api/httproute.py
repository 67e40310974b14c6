"""``HTTPRoute`` rules -> IR routes, sharing backends, filters and attachment with GRPCRoute.

Matches: ``path`` (Exact, PathPrefix by whole segments, RegularExpression), ``headers``, ``queryParams``
and ``method``.  Filters: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite,
RequestMirror.  Weighted backendRefs (cross-namespace with a ReferenceGrant), and ``timeouts``
(``request`` is the route timeout, ``backendRequest`` the per-try timeout).  Precedence as the spec
orders it: exact path, then the longest prefix, then a method match, then more header matches, then
more query-parameter matches, then the oldest route, then namespace/name.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from translators import fields
from translators.diagnostics import Reporter
from translators.gateway_api.grpcroute import RouteContext, _headers, backend_clusters, header_filters
from translators.ir import BLACKHOLE_CLUSTER, DirectResponse, HeaderMatch, HeaderOps, Redirect, RetryPolicy, Route, \
    RouteMatch, StringMatch
from translators.objects import ConfigObject

HTTP_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def _path(value: Any, path: str, rep: Reporter) -> StringMatch:
    m = fields.mapping(value, path, rep)
    if m is None:
        return StringMatch("segment", "/")
    ptype = m.get("type") or "PathPrefix"
    v = fields.string(m.get("value"), f"{path}.value", rep) or "/"
    if ptype == "Exact":
        return StringMatch("exact", v)
    if ptype == "PathPrefix":
        if not v.startswith("/"):
            rep.error(f"{path}.value", f"must start with '/', got {v!r}")
        return StringMatch("segment", v)
    if ptype == "RegularExpression":
        return StringMatch("regex", fields.regex(v, f"{path}.value", rep) or v)
    rep.error(f"{path}.type", f"must be Exact, PathPrefix or RegularExpression, got {ptype!r}")
    return StringMatch("segment", "/")


def _query(value: Any, path: str, rep: Reporter) -> tuple[HeaderMatch, ...]:
    out = []
    for i, q in enumerate(fields.sequence(value, path, rep)):
        m = fields.mapping(q, f"{path}[{i}]", rep) or {}
        name = fields.string(m.get("name"), f"{path}[{i}].name", rep, required=True)
        val = fields.string(m.get("value"), f"{path}[{i}].value", rep, required=True)
        kind = {"Exact": "exact", "RegularExpression": "regex"}.get(m.get("type") or "Exact")
        if kind is None:
            rep.error(f"{path}[{i}].type", "must be Exact or RegularExpression")
            continue
        if name and val is not None:
            out.append(HeaderMatch(name, StringMatch(kind, val)))
    return tuple(out)


def _replace_prefix(prefix: str, replacement: str) -> tuple[str, str] | None:
    """ReplacePrefixMatch as an RE2 rewrite: ``/foo`` -> ``/`` turns ``/foo/bar`` into ``/bar`` (not ``//bar``)."""
    base = prefix.rstrip("/")
    if not replacement.endswith("/"):
        return None  # Envoy's prefix_rewrite is exact here
    return (f"^{re.escape(base)}/*", replacement)


def http_rules(obj: ConfigObject, rep: Reporter, ctx: RouteContext) -> tuple[list[Route], list[tuple[bool, str, str]]]:
    spec = obj.spec
    ns = obj.namespace
    resolved: list[tuple[bool, str, str]] = []
    routes: list[Route] = []
    created = str((obj.raw.get("metadata") or {}).get("creationTimestamp") or "") if obj.raw else ""
    rules = fields.sequence(spec.get("rules"), "spec.rules", rep) or [{}]
    for i, rule in enumerate(rules):
        rp = f"spec.rules[{i}]"
        rm = fields.mapping(rule, rp, rep) or {}
        clusters = backend_clusters(rm, rp, rep, ns=ns, ctx=ctx, resolved=resolved)
        req_ops, resp_ops, mirror = header_filters(rm, rp, rep, ns=ns, ctx=ctx, allowed=HTTP_FILTERS)
        redirect = rewrite = None
        rule_filters = list(fields.sequence(rm.get("filters"), f"{rp}.filters", rep))
        refs = [b for b in fields.sequence(rm.get("backendRefs"), f"{rp}.backendRefs", rep) if isinstance(b, dict)]
        weighted = [b for b in refs if not (isinstance(b.get("weight", 1), int) and b.get("weight", 1) <= 0)]
        for k, b in enumerate(weighted):
            bfilters = fields.sequence(b.get("filters"), f"{rp}.backendRefs[{k}].filters", rep)
            if not bfilters or k >= len(clusters):
                continue
            if len(weighted) == 1:  # one backend: its filters are the rule's
                rule_filters += [x for x in bfilters if isinstance(x, dict)]
                req_b, resp_b, _ = header_filters({"filters": bfilters}, f"{rp}.backendRefs[{k}]", rep, ns=ns,
                                                  ctx=ctx, allowed=HTTP_FILTERS)
                req_ops = HeaderOps(req_ops.set + req_b.set, req_ops.add + req_b.add, req_ops.remove + req_b.remove)
                resp_ops = HeaderOps(resp_ops.set + resp_b.set, resp_ops.add + resp_b.add,
                                     resp_ops.remove + resp_b.remove)
                continue
            req_b, resp_b, _ = header_filters({"filters": bfilters}, f"{rp}.backendRefs[{k}]", rep, ns=ns, ctx=ctx,
                                              allowed=("RequestHeaderModifier", "ResponseHeaderModifier"))
            clusters[k] = replace(clusters[k], request_headers=req_b, response_headers=resp_b)
        for f, flt in enumerate(rule_filters):
            fm = flt if isinstance(flt, dict) else {}
            fp = f"{rp}.filters[{f}]"
            if fm.get("type") == "RequestRedirect":
                redirect = fields.mapping(fm.get("requestRedirect"), f"{fp}.requestRedirect", rep) or {}
            elif fm.get("type") == "URLRewrite":
                rewrite = fields.mapping(fm.get("urlRewrite"), f"{fp}.urlRewrite", rep) or {}
        if redirect is not None and clusters:
            clusters = []  # a redirect answers the request itself: its backends are not used
        timeouts = fields.mapping(rm.get("timeouts"), f"{rp}.timeouts", rep) or {}
        timeout = fields.duration(timeouts.get("request"), f"{rp}.timeouts.request", rep)
        per_try = fields.duration(timeouts.get("backendRequest"), f"{rp}.timeouts.backendRequest", rep)
        for j, match in enumerate(fields.sequence(rm.get("matches"), f"{rp}.matches", rep) or [{}]):
            mp = f"{rp}.matches[{j}]"
            mm = fields.mapping(match, mp, rep) or {}
            path = _path(mm.get("path"), f"{mp}.path", rep)
            headers = list(_headers(mm.get("headers"), f"{mp}.headers", rep))
            method = mm.get("method")
            if method is not None:
                if method not in METHODS:
                    rep.error(f"{mp}.method", f"must be an HTTP method, got {method!r}")
                else:
                    headers.append(HeaderMatch(":method", StringMatch("exact", method)))
            query = _query(mm.get("queryParams"), f"{mp}.queryParams", rep)
            usable = tuple(c for c in clusters if c.cluster != BLACKHOLE_CLUSTER)
            # no backendRefs, or none of them valid: the spec's 500 (a partly invalid rule keeps the invalid
            # share on a cluster without endpoints)
            route = Route(name=f"{ns}/{obj.name}/rules[{i}].matches[{j}]",
                          match=RouteMatch(path=path, headers=tuple(headers), query_params=query),
                          clusters=tuple(clusters) if usable else (),
                          direct_response=None if usable or redirect is not None else DirectResponse(500),
                          timeout_s=timeout or None,
                          retries=RetryPolicy(attempts=0, per_try_timeout_s=per_try) if per_try else None,
                          request_headers=req_ops, response_headers=resp_ops, mirror_cluster=mirror, source=obj.ref)
            if redirect is not None:
                route = replace(route, redirect=_redirect(redirect, path, f"{rp}.filters", rep))
            if rewrite is not None:
                route = _rewrite(route, rewrite, path, f"{rp}.filters", rep)
            exact = path.kind == "exact"
            rank = 0 if exact else (1 if path.kind == "regex" else 2)
            length = len(path.value) if path.kind != "regex" else 0
            key = (rank, -length, 0 if method is not None else 1, -len(headers) + (1 if method is not None else 0),
                   -len(query))
            routes.append(replace(route, precedence=key + (created, ns, obj.name, i, j)))
    return routes, resolved


def _redirect(m: dict, path: StringMatch, where: str, rep: Reporter) -> Redirect:
    code = m.get("statusCode", 302)
    if code not in REDIRECT_CODES:
        rep.error(f"{where}.requestRedirect.statusCode", f"must be 301, 302, 303, 307 or 308, got {code!r}")
        code = 302
    port = fields.port_number(m.get("port"), f"{where}.requestRedirect.port", rep)
    scheme = fields.string(m.get("scheme"), f"{where}.requestRedirect.scheme", rep) or ""
    if port is None and scheme:
        port = {"http": 80, "https": 443}.get(scheme.lower())  # the spec: the scheme's well-known port
    authority = fields.string(m.get("hostname"), f"{where}.requestRedirect.hostname", rep) or ""
    out = Redirect(authority=authority, scheme=scheme, port=port, code=code,
                   port_from_listener=bool(authority) and port is None and not scheme)
    p = fields.mapping(m.get("path"), f"{where}.requestRedirect.path", rep)
    if p is not None:
        if p.get("type") == "ReplaceFullPath":
            out = replace(out, uri=str(p.get("replaceFullPath", "/")))
        elif p.get("type") == "ReplacePrefixMatch":
            if path.kind not in ("segment", "prefix"):
                rep.error(f"{where}.requestRedirect.path", "ReplacePrefixMatch needs a PathPrefix match")
            else:
                out = replace(out, prefix=str(p.get("replacePrefixMatch", "/")))
    return out


def _rewrite(route: Route, m: dict, path: StringMatch, where: str, rep: Reporter) -> Route:
    host = fields.string(m.get("hostname"), f"{where}.urlRewrite.hostname", rep)
    if host:
        route = replace(route, rewrite_authority=host)
    p = fields.mapping(m.get("path"), f"{where}.urlRewrite.path", rep)
    if p is None:
        return route
    if p.get("type") == "ReplaceFullPath":
        return replace(route, regex_rewrite=("^/.*$", str(p.get("replaceFullPath", "/"))))
    if p.get("type") == "ReplacePrefixMatch":
        if path.kind not in ("segment", "prefix"):
            rep.error(f"{where}.urlRewrite.path", "ReplacePrefixMatch needs a PathPrefix match")
            return route
        replacement = str(p.get("replacePrefixMatch", "/"))
        regex = _replace_prefix(path.value, replacement)
        return replace(route, regex_rewrite=regex) if regex else replace(route, rewrite_uri=replacement)
    rep.error(f"{where}.urlRewrite.path.type", f"must be ReplaceFullPath or ReplacePrefixMatch, got {p.get('type')!r}")
    return route
