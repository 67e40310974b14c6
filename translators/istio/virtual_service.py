"""VirtualService ``http[]`` -> ordered :class:`translators.ir.Route` lists.

Each ``http[i]`` entry becomes one IR route per ``match[j]`` (or one route
when there is no match), keeping the VirtualService's order, exactly as
Istio does.  Semantics worth knowing:

* no ``timeout`` means no route timeout at all, so long-lived gRPC streams
  are never cut by Envoy's 15 s default;
* ``retries`` unset gives Istio's default (2 attempts on connect-failure,
  refused-stream, unavailable, cancelled and 503); ``attempts: 0`` disables;
* ``authority`` and ``method`` matches become ``:authority``/``:method``
  header matches.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Mapping

from translators.diagnostics import Reporter
from translators.ir import (CorsPolicy, DirectResponse, FaultPolicy, HeaderMatch, HeaderOps, HttpRoutes, Redirect,
                            RetryPolicy, Route, RouteMatch, StringMatch, TlsRoute, WeightedCluster)
from translators import fields
from translators.istio.destinations import Destinations
from translators.defaults import DEFAULT_RETRY, GRPC_CODES
from translators.hosts import fqdn
from translators.objects import ConfigObject

#: Envoy x-envoy-retry-on and x-envoy-retry-grpc-on values (router filter docs)
RETRY_ON_HTTP = frozenset({"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
                           "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
                           "retriable-headers", "http3-post-connect-failure"})
RETRY_ON_GRPC = frozenset({"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"})


# unknown keys anywhere in a spec are warnings from translators.known_fields (called once per object
# by the dialect); parsers only report malformed values of known fields


_UINT32_MAX = 2**32 - 1
#: the redirect codes Envoy's RedirectAction has
REDIRECT_CODES = (301, 302, 303, 307, 308)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def resolve_gateway_ref(ref: str, namespace: str) -> str:
    if ref == "mesh" or "/" in ref:
        return ref
    return f"{namespace}/{ref}"


def parse_virtual_service(obj: ConfigObject, rep: Reporter, *, destinations: Destinations) -> HttpRoutes | None:
    spec = obj.spec
    ns = obj.namespace
    hosts_raw = fields.sequence(spec.get("hosts"), "spec.hosts", rep)
    if not hosts_raw:
        rep.error("spec.hosts", "at least one host is required")
    hosts = []
    for i, h in enumerate(hosts_raw):
        host = fields.string(h, f"spec.hosts[{i}]", rep, required=True)
        if host is not None and not fields.HOST.fullmatch(host):
            rep.error(f"spec.hosts[{i}]", f"must be '*', '*.domain' or a host name, got {host!r}")
        elif host is not None:
            hosts.append(fqdn(host, ns) if host != "*" else host)
    gateways = tuple(resolve_gateway_ref(g, ns) for i, g in enumerate(fields.sequence(spec.get("gateways"), "spec.gateways", rep))
                     if fields.string(g, f"spec.gateways[{i}]", rep, required=True)) or ("mesh",)
    if spec.get("tcp"):
        rep.warning("spec.tcp", "tcp routes are not served yet; http and tls routes are translated", code="unsupported")
    tls_routes = tuple(r for i, entry in enumerate(fields.sequence(spec.get("tls"), "spec.tls", rep))
                       for r in _tls_route(entry, f"spec.tls[{i}]", rep, obj=obj, destinations=destinations))
    routes: list[Route] = []
    for i, entry in enumerate(fields.sequence(spec.get("http"), "spec.http", rep)):
        routes.extend(_http_route(entry, f"spec.http[{i}]", rep, obj=obj, destinations=destinations))
        if "mesh" in gateways and isinstance(entry, dict):
            _proxyless_warnings(entry, f"spec.http[{i}]", rep)
    if rep.failed:
        return None
    return HttpRoutes(obj.ref, tuple(hosts), gateways, tuple(routes), tls_routes)


def _tls_route(entry: Any, path: str, rep: Reporter, *, obj: ConfigObject, destinations: Destinations) -> list[TlsRoute]:
    """``tls[]``: each match (sniHosts, port, gateways) proxies TCP to weighted destinations."""
    m = fields.mapping(entry, path, rep) or {}
    clusters = []
    route_list = fields.sequence(m.get("route"), f"{path}.route", rep)
    if not route_list:
        rep.error(f"{path}.route", "at least one destination is required")
    for k, r in enumerate(route_list):
        rm = fields.mapping(r, f"{path}.route[{k}]", rep) or {}
        cluster = destinations.cluster(rm.get("destination"), f"{path}.route[{k}].destination", rep, namespace=obj.namespace)
        weight = fields.integer(rm.get("weight"), f"{path}.route[{k}].weight", rep, lo=0, hi=_UINT32_MAX)
        weight = (100 if len(route_list) == 1 else 0) if weight is None else weight
        if cluster is not None and weight > 0:
            clusters.append(WeightedCluster(cluster, weight))
    out = []
    for j, mt in enumerate(fields.sequence(m.get("match"), f"{path}.match", rep)):
        mp = f"{path}.match[{j}]"
        mm = fields.mapping(mt, mp, rep) or {}
        sni = fields.strings(mm.get("sniHosts"), f"{mp}.sniHosts", rep)
        if not sni:
            rep.error(f"{mp}.sniHosts", "at least one SNI host is required")
        port = fields.port_number(mm.get("port"), f"{mp}.port", rep)
        gws = tuple(resolve_gateway_ref(g, obj.namespace) for g in fields.strings(mm.get("gateways"), f"{mp}.gateways", rep))
        if clusters:
            out.append(TlsRoute(sni, port, gws, tuple(clusters)))
    if not m.get("match"):
        rep.error(f"{path}.match", "tls routes need a match with sniHosts")
    return out


def _http_route(entry: Any, path: str, rep: Reporter, *, obj: ConfigObject, destinations: Destinations) -> list[Route]:
    m = fields.mapping(entry, path, rep)
    if m is None:
        return []
    ns = obj.namespace
    name = fields.string(m.get("name"), f"{path}.name", rep)
    if m.get("delegate") is not None:
        rep.warning(f"{path}.delegate", "delegate VirtualServices are not supported; entry skipped", code="unsupported")
        return []
    cors = _cors(m.get("corsPolicy"), f"{path}.corsPolicy", rep, matches=m.get("match")) \
        if m.get("corsPolicy") is not None else None

    clusters: list[WeightedCluster] = []
    direct: DirectResponse | None = None
    redirect: Redirect | None = None
    route_list = fields.sequence(m.get("route"), f"{path}.route", rep)
    for k, r in enumerate(route_list):
        rp = f"{path}.route[{k}]"
        rm = fields.mapping(r, rp, rep) or {}
        cluster = destinations.cluster(rm.get("destination"), f"{rp}.destination", rep, namespace=ns)
        weight = fields.integer(rm.get("weight"), f"{rp}.weight", rep, lo=0, hi=_UINT32_MAX)
        if weight is None:
            weight = 100 if len(route_list) == 1 else 0
            if len(route_list) > 1 and "weight" not in rm:
                rep.warning(f"{rp}.weight", "no weight in a multi-destination route: this destination gets no traffic")
        hdr = fields.mapping(rm.get("headers"), f"{rp}.headers", rep) or {}
        req_ops = _header_ops(hdr.get("request"), f"{rp}.headers.request", rep)
        resp_ops = _header_ops(hdr.get("response"), f"{rp}.headers.response", rep)
        if cluster is None:
            if rep.failed:
                continue
            # unknown host without a port: Istio would send to a cluster that does not exist
            direct = DirectResponse(503, "no healthy upstream")
            continue
        if weight > 0:
            clusters.append(WeightedCluster(cluster, weight, req_ops, resp_ops))
    if route_list and not clusters and direct is None and not rep.failed:
        rep.error(f"{path}.route", "the weights of all destinations are 0")
    if sum(c.weight for c in clusters) > _UINT32_MAX:
        rep.error(f"{path}.route", f"the destination weights sum to more than {_UINT32_MAX}, which Envoy refuses")
    if cors is not None and cors.forward_unmatched_preflights is None and clusters \
            and any(destinations.is_h2(c.cluster) for c in clusters):
        # a preflight forwarded to a gRPC backend comes back as grpc-status 13 (and is retried):
        # answer it at the gateway unless the VirtualService says FORWARD
        cors = replace(cors, forward_unmatched_preflights=False)
    if direct is not None and clusters:
        # a mixed route with an unresolvable destination: keep the resolvable ones
        direct = None

    if m.get("redirect") is not None:
        redirect = _redirect(m.get("redirect"), f"{path}.redirect", rep)
    if m.get("directResponse") is not None:
        dr = fields.mapping(m.get("directResponse"), f"{path}.directResponse", rep) or {}
        status = fields.integer(dr.get("status"), f"{path}.directResponse.status", rep, lo=200, hi=599, required=True)
        body = fields.mapping(dr.get("body"), f"{path}.directResponse.body", rep) or {}
        if status is not None:
            direct = DirectResponse(status, fields.string(body.get("string"), f"{path}.directResponse.body.string", rep) or "")
    actions = sum(x is not None for x in (m.get("route") or None, m.get("redirect"), m.get("directResponse")))
    if actions == 0:
        rep.error(path, "one of route, redirect or directResponse is required")
    elif actions > 1:
        rep.error(path, "route, redirect and directResponse are mutually exclusive")

    timeout = fields.duration(m.get("timeout"), f"{path}.timeout", rep)
    retries = _retries(m.get("retries"), f"{path}.retries", rep)
    rewrite_uri = rewrite_authority = None
    rw = fields.mapping(m.get("rewrite"), f"{path}.rewrite", rep)
    if rw:
        rewrite_uri = fields.header_value(rw.get("uri"), f"{path}.rewrite.uri", rep)
        rewrite_authority = fields.header_value(rw.get("authority"), f"{path}.rewrite.authority", rep)
        if rw.get("uriRegexRewrite") is not None:
            rep.warning(f"{path}.rewrite.uriRegexRewrite", "uriRegexRewrite is not supported yet", code="unsupported")
    hdr = fields.mapping(m.get("headers"), f"{path}.headers", rep) or {}
    req_ops = _header_ops(hdr.get("request"), f"{path}.headers.request", rep)
    resp_ops = _header_ops(hdr.get("response"), f"{path}.headers.response", rep)
    fault = _fault(m.get("fault"), f"{path}.fault", rep)
    mirror_cluster = None
    mirror_percent = None
    if m.get("mirror") is not None:
        mirror_cluster = destinations.cluster(m.get("mirror"), f"{path}.mirror", rep, namespace=ns)
        mp = m.get("mirrorPercentage")
        mirror_percent = fields.percent(mp, f"{path}.mirrorPercentage", rep) if mp is not None else None
    if m.get("mirrors"):
        rep.warning(f"{path}.mirrors", "mirrors (plural) is not supported yet; use mirror", code="unsupported")

    matches = fields.sequence(m.get("match"), f"{path}.match", rep) or [None]
    out = []
    hashing = destinations.policy(clusters[0].cluster) if clusters else None
    for j, mt in enumerate(matches):
        match = _match(mt, f"{path}.match[{j}]", rep, namespace=ns) if mt is not None else RouteMatch()
        if match is None:
            continue
        route_name = name or f"{obj.namespace}/{obj.name}/{path.removeprefix('spec.')}"
        if len(matches) > 1:
            match_name = (mt or {}).get("name") if isinstance(mt, dict) else None
            route_name = f"{route_name}.{match_name or j}"
        out.append(Route(
            hash_header=hashing.hash_header if hashing is not None else None,
            hash_cookie=hashing.hash_cookie if hashing is not None else None,
            hash_source_ip=bool(hashing is not None and hashing.hash_source_ip),
            hash_query=hashing.hash_query if hashing is not None else None,
            name=route_name, match=match, clusters=tuple(clusters), timeout_s=timeout or None,
            retries=retries, rewrite_uri=rewrite_uri, rewrite_authority=rewrite_authority,
            request_headers=req_ops, response_headers=resp_ops, fault=fault, redirect=redirect,
            direct_response=direct, mirror_cluster=mirror_cluster, mirror_percent=mirror_percent, cors=cors,
            source=obj.ref))
    return out


def _proxyless_warnings(entry: Mapping[str, Any], path: str, rep: Reporter) -> None:
    """What proxyless gRPC clients would reject or ignore: left out of their config, and said so here."""
    def warn(field: str, what: str, proposal: str) -> None:
        rep.warning(f"{path}.{field}", f"{what} for proxyless gRPC clients ({proposal}); left out of their config",
                    code="proxyless-unsupported")

    retries = entry.get("retries")
    if isinstance(retries, dict):
        if retries.get("perTryTimeout") is not None:
            warn("retries.perTryTimeout", "perTryTimeout is ignored", "gRFC A44")
        retry_on = retries.get("retryOn")
        if isinstance(retry_on, str):
            others = [t.strip() for t in retry_on.split(",") if t.strip() and t.strip() not in RETRY_ON_GRPC]
            if others:
                warn("retries.retryOn", f"retry conditions {', '.join(others)} are not supported "
                     f"(only {', '.join(sorted(RETRY_ON_GRPC))})", "gRFC A44")
    for key, what in (("rewrite", "rewrite is not supported"), ("mirror", "mirroring is not supported"),
                      ("headers", "header manipulation is not applied"), ("corsPolicy", "corsPolicy does not apply"),
                      ("redirect", "redirect routes are not supported"),
                      ("directResponse", "directResponse routes are not supported")):
        if entry.get(key) is not None:
            warn(key, what, "gRFC A28")
    route_list, match_list = entry.get("route"), entry.get("match")
    for k, r in enumerate(route_list if isinstance(route_list, list) else ()):
        if isinstance(r, dict) and r.get("headers") is not None:
            warn(f"route[{k}].headers", "header manipulation is not applied", "gRFC A28")
    for j, m in enumerate(match_list if isinstance(match_list, list) else ()):
        if isinstance(m, dict) and m.get("queryParams") is not None:
            warn(f"match[{j}].queryParams", "query parameter matches do not apply (routes with them are skipped)",
                 "gRFC A28")


GRPC_WEB_EXPOSE = ("grpc-status", "grpc-message", "grpc-status-details-bin")
GRPC_WEB_ALLOW = ("x-grpc-web", "x-user-agent", "grpc-timeout")


def _cors(value: Any, path: str, rep: Reporter, *, matches: Any) -> CorsPolicy | None:
    m = fields.mapping(value, path, rep)
    if m is None:
        return None
    origins = [sm for i, o in enumerate(fields.sequence(m.get("allowOrigins"), f"{path}.allowOrigins", rep))
               if (sm := fields.string_match(o, f"{path}.allowOrigins[{i}]", rep)) is not None and sm.kind != "present"]
    for o in fields.strings(m.get("allowOrigin"), f"{path}.allowOrigin", rep):  # deprecated form
        origins.append(StringMatch("exact", o) if o != "*" else StringMatch("prefix", ""))
    if not origins:
        rep.warning(f"{path}.allowOrigins", "no allowed origin: every cross-origin call is refused")
    strings = {k: _tokens(m.get(k), f"{path}.{k}", rep) for k in ("allowMethods", "allowHeaders", "exposeHeaders")}
    lowered_expose = {h.lower() for h in strings["exposeHeaders"]}
    lowered_allow = {h.lower() for h in strings["allowHeaders"]}
    missing = [h for h in GRPC_WEB_EXPOSE if h not in lowered_expose] + \
              [h for h in GRPC_WEB_ALLOW if h not in lowered_allow]
    if missing:
        rep.warning(path, f"for gRPC-Web, corsPolicy should expose/allow {', '.join(missing)}; "
                    "xds-server adds them on GRPC-WEB ports", code="grpc-web-cors")
    unmatched = (fields.string(m.get("unmatchedPreflights"), f"{path}.unmatchedPreflights", rep) or "").upper()
    if unmatched and unmatched not in ("FORWARD", "IGNORE", "UNSPECIFIED"):
        rep.error(f"{path}.unmatchedPreflights", f"must be FORWARD or IGNORE, got {unmatched!r}")
    # the trap from popular Istio gRPC-Web guides: a preflight (OPTIONS) carries no grpc-web content-type
    ms = matches if isinstance(matches, list) else []
    if ms and all(isinstance(x, dict) and _only_grpc_web_content_type(x) for x in ms):
        rep.warning(f"{path}", "this route matches only on content-type application/grpc-web*, which a CORS "
                    "preflight (OPTIONS) never carries: browsers' preflights will not reach this corsPolicy",
                    code="grpc-web-preflight")
    return CorsPolicy(allow_origins=tuple(origins), allow_methods=strings["allowMethods"],
                      allow_headers=strings["allowHeaders"], expose_headers=strings["exposeHeaders"],
                      max_age_s=fields.duration(m.get("maxAge"), f"{path}.maxAge", rep),
                      allow_credentials=fields.boolean(m.get("allowCredentials"), f"{path}.allowCredentials", rep),
                      forward_unmatched_preflights={"FORWARD": True, "IGNORE": False}.get(unmatched))


def _tokens(value: Any, path: str, rep: Reporter) -> tuple[str, ...]:
    """CORS method and header lists: each item one token (Envoy joins them with commas)."""
    out = []
    for i, item in enumerate(fields.strings(value, path, rep)):
        if item != "*" and not _TOKEN.fullmatch(item):
            rep.error(f"{path}[{i}]", f"must be a single method or header name, got {item!r}")
        else:
            out.append(item)
    return tuple(out)


def _only_grpc_web_content_type(match: Mapping[str, Any]) -> bool:
    headers = match.get("headers")
    if not isinstance(headers, dict) or "content-type" not in {str(k).lower() for k in headers}:
        return False
    spec = next(v for k, v in headers.items() if str(k).lower() == "content-type")
    text = " ".join(str(v) for v in spec.values()) if isinstance(spec, dict) else ""
    return "grpc-web" in text


def _match(value: Any, path: str, rep: Reporter, *, namespace: str) -> RouteMatch | None:
    m = fields.mapping(value, path, rep)
    if m is None:
        return None
    fields.string(m.get("name"), f"{path}.name", rep)
    ignore_case = bool(fields.boolean(m.get("ignoreUriCase"), f"{path}.ignoreUriCase", rep))
    uri = fields.string_match(m.get("uri"), f"{path}.uri", rep, ignore_case=ignore_case) if m.get("uri") is not None else None
    if uri is not None and uri.kind == "present":
        uri = None
    headers = list(fields.header_matches(m.get("headers"), f"{path}.headers", rep))
    headers += fields.header_matches(m.get("withoutHeaders"), f"{path}.withoutHeaders", rep, invert=True)
    for key, header in (("authority", ":authority"), ("method", ":method"), ("scheme", ":scheme")):
        if m.get(key) is not None:
            sm = fields.string_match(m.get(key), f"{path}.{key}", rep)
            if sm is not None:
                headers.append(HeaderMatch(header, sm))
    query = tuple(HeaderMatch(h.name, h.match) for h in fields.header_matches(m.get("queryParams"), f"{path}.queryParams", rep,
                                                                             query=True))
    port = fields.port_number(m.get("port"), f"{path}.port", rep)
    gateways = tuple(resolve_gateway_ref(g, namespace) for g in fields.strings(m.get("gateways"), f"{path}.gateways", rep))
    for key in ("sourceLabels", "sourceNamespace"):
        if m.get(key) is not None:
            rep.warning(f"{path}.{key}", f"{key} does not apply at a gateway; ignored", code="unsupported")
    return RouteMatch(path=uri, headers=tuple(headers), query_params=query, port=port, gateways=gateways)


_NO_HEADER_OPS = HeaderOps()


def _header_ops(value: Any, path: str, rep: Reporter) -> HeaderOps:
    if value is None:
        return _NO_HEADER_OPS
    m = fields.mapping(value, path, rep)
    if not m:
        return HeaderOps()

    def modifiable(name: str | None, where: str, verb: str) -> bool:
        if name is None:
            return False
        if name.startswith(":") or name.lower() == "host":
            rep.error(where, f"{name!r}: Envoy refuses to {verb} pseudo-headers and host (use rewrite.authority)")
            return False
        return True

    def pairs(key: str) -> tuple[tuple[str, str], ...]:
        mm = fields.mapping(m.get(key), f"{path}.{key}", rep) or {}
        out = []
        for k, v in mm.items():
            where = f"{path}.{key}.{k}"
            name = fields.header_name(k, where, rep)
            value = fields.header_value(v, where, rep) if v is not None else ""
            if modifiable(name, where, "modify") and value is not None:
                out.append((name.lower(), value))
        return tuple(out)

    remove = tuple(h.lower() for i, h in enumerate(fields.sequence(m.get("remove"), f"{path}.remove", rep))
                   if modifiable(fields.header_name(h, f"{path}.remove[{i}]", rep), f"{path}.remove[{i}]", "remove"))
    return HeaderOps(set=pairs("set"), add=pairs("add"), remove=remove)


def _retries(value: Any, path: str, rep: Reporter) -> RetryPolicy | None:
    if value is None:
        return DEFAULT_RETRY
    m = fields.mapping(value, path, rep) or {}
    attempts = fields.integer(m.get("attempts"), f"{path}.attempts", rep, lo=0, hi=_UINT32_MAX)
    if attempts is None:
        attempts = DEFAULT_RETRY.attempts
    if attempts == 0:
        return None
    per_try = fields.duration(m.get("perTryTimeout"), f"{path}.perTryTimeout", rep)
    retry_on = fields.string(m.get("retryOn"), f"{path}.retryOn", rep)
    if retry_on is None:
        retry_on = DEFAULT_RETRY.retry_on
    tokens = [t.strip() for t in retry_on.split(",") if t.strip()]
    for t in tokens:
        if t.isdigit() and not (t.isascii() and 100 <= int(t) <= 599):
            rep.error(f"{path}.retryOn", f"retriable status code {t!r} must be an HTTP status between 100 and 599")
        elif t not in RETRY_ON_HTTP and t not in RETRY_ON_GRPC and not t.isdigit():
            rep.error(f"{path}.retryOn", f"unknown retry condition {t!r}; gRPC conditions are "
                      f"{', '.join(sorted(RETRY_ON_GRPC))}")
    return RetryPolicy(attempts=attempts, per_try_timeout_s=per_try, retry_on=",".join(tokens))


def _fault(value: Any, path: str, rep: Reporter) -> FaultPolicy | None:
    m = fields.mapping(value, path, rep)
    if not m:
        return None
    delay_s = abort_http = abort_grpc = None
    delay_pct = abort_pct = 100.0
    d = fields.mapping(m.get("delay"), f"{path}.delay", rep)
    if d:
        delay_s = fields.duration(d.get("fixedDelay"), f"{path}.delay.fixedDelay", rep)
        if delay_s is None and "fixedDelay" not in d:
            rep.error(f"{path}.delay.fixedDelay", "is required")
        pct = fields.percent(d.get("percentage"), f"{path}.delay.percentage", rep)
        if pct is None and d.get("percent") is not None:  # deprecated integer field
            pct = fields.percent(d.get("percent"), f"{path}.delay.percent", rep)
        delay_pct = 100.0 if pct is None else pct
    a = fields.mapping(m.get("abort"), f"{path}.abort", rep)
    if a:
        abort_http = fields.integer(a.get("httpStatus"), f"{path}.abort.httpStatus", rep, lo=200, hi=599)
        grpc_status = a.get("grpcStatus")
        if grpc_status is not None:
            if isinstance(grpc_status, str):
                code = GRPC_CODES.get(grpc_status.upper())
            elif type(grpc_status) is int and 0 <= grpc_status < len(GRPC_CODES):
                code = grpc_status
            else:
                code = None
            if code is None:
                rep.error(f"{path}.abort.grpcStatus", f"unknown gRPC status {grpc_status!r}; use a name such as "
                          "UNAVAILABLE or a code 0-16")
            abort_grpc = code
        if abort_http is None and abort_grpc is None:
            rep.error(f"{path}.abort", "httpStatus or grpcStatus is required")
        pct = fields.percent(a.get("percentage"), f"{path}.abort.percentage", rep)
        abort_pct = 100.0 if pct is None else pct
    return FaultPolicy(delay_s, delay_pct, abort_http, abort_grpc, abort_pct)


def _redirect(value: Any, path: str, rep: Reporter) -> Redirect | None:
    m = fields.mapping(value, path, rep) or {}
    code = fields.integer(m.get("redirectCode"), f"{path}.redirectCode", rep, lo=300, hi=399) or 301
    if code not in REDIRECT_CODES:
        rep.error(f"{path}.redirectCode", f"Envoy redirects only with {', '.join(map(str, REDIRECT_CODES))}, got {code}")
    port = fields.port_number(m.get("port"), f"{path}.port", rep)
    return Redirect(uri=fields.header_value(m.get("uri"), f"{path}.uri", rep) or "",
                    authority=fields.header_value(m.get("authority"), f"{path}.authority", rep) or "",
                    scheme=fields.header_value(m.get("scheme"), f"{path}.scheme", rep) or "", port=port, code=code)
