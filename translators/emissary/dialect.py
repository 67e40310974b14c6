"""Emissary's parsed objects -> gateways, routes and cluster requests of the IR.

Per ambassador_id this server answers for:

1. **Listeners** (Emissary's defaults when there are none: 8080 cleartext, 8443 TLS, both ``XFP``,
   binding Hosts of every namespace).
2. **Hosts** bound to each Listener (``hostBinding``).  On a TLS Listener a Host is served with its
   certificate (``tlsSecret``, ``tlsContext``, inline ``tls``, or a TLSContext whose ``hosts`` name it);
   on a cleartext Listener ``requestPolicy.insecure.action`` decides: Route, Redirect (to https; the
   default) or Reject (not served there).  With no Host at all, ``*`` is routed in cleartext.
3. **Mappings** associated with a Host: its ``mappingSelector`` selects their labels, or their
   ``hostname`` glob and the Host's match.  Mappings with the same match (prefix, headers, query
   parameters, method, hostname, precedence) form one canary group: one route, weighted across the
   group's clusters, heaviest first in Emissary's order (precedence, prefix length, header count...).
4. A Mapping's **cluster** is ``outbound|PORT|emissary-TAG|HOST``: HOST is the Kubernetes Service (or
   ServiceEntry) the ``service`` names, so endpoints come from its EDS; an IP is a static endpoint;
   another name is resolved with DNS.  TAG encodes HTTP/2 and the cluster policy (load balancer,
   circuit breakers, connect timeout, TLS origination).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from translators.diagnostics import Diagnostic, Severity, errors_by_object
from translators.emissary import AMBASSADOR_ID_LABEL, DIALECT, GROUP
from translators.emissary.resources import (HostSpec, ListenerSpec, LoadBalancer, MappingSpec, ModuleSpec,
                                            TLSContextSpec)
from translators.hosts import Registry, matches
from translators.ir import (DOMAIN_SUFFIX, CorsPolicy, Endpoint, Gateway, GatewayServer, HeaderMatch, HttpRoutes,
                            Route, RouteMatch, ServerTls, StringMatch, TrafficPolicy, UpstreamTls, WeightedCluster,
                            cluster_name)
from translators.objects import ObjectRef

#: Emissary's defaults
DEFAULT_TIMEOUT_MS = 3000
DEFAULT_CONNECT_TIMEOUT_MS = 3000
DEFAULT_LISTENERS = ((8080, False), (8443, True))


@dataclass(frozen=True, slots=True)
class ClusterRequest:
    """A cluster a Mapping needs; the compile step gives it endpoints (from the registry, or ``endpoints``)."""

    name: str
    host: str
    port: int
    subset: str
    h2: bool
    policy: TrafficPolicy
    discovery: str  # EDS | STRICT_DNS
    #: None: the registry's endpoints of HOST:PORT; otherwise these
    endpoints: tuple[Endpoint, ...] | None = None


@dataclass(slots=True)
class Output:
    gateways: list[Gateway] = field(default_factory=list)
    http_routes: list[HttpRoutes] = field(default_factory=list)
    clusters: dict[str, ClusterRequest] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    statuses: dict[ObjectRef, dict] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Listener:
    ref: ObjectRef | None
    port: int
    tls: bool
    secure: bool  # securityModel SECURE (or INSECURE: False)
    namespace: str
    namespace_from: str
    selector: tuple[tuple[str, str], ...] | None


def _glob_regex(glob: str) -> str:
    """A hostname glob as an RE2 pattern over ``:authority`` (the port is stripped before routing)."""
    if glob.startswith("*."):
        return r"[^:]+\." + re.escape(glob[2:])
    return re.escape(glob)


def _globs_match(a: str, b: str) -> bool:
    return matches(a, b) or matches(b, a)


def _tag(h2: bool, policy: TrafficPolicy, default: TrafficPolicy) -> str:
    if policy == default:
        return "emissary-grpc" if h2 else "emissary"
    # only the fields that are set: a policy field added to the IR later does not rename every cluster
    written = tuple((k, getattr(policy, k)) for k in TrafficPolicy.__slots__ if getattr(policy, k) is not None)
    digest = hashlib.sha1(repr((h2, written)).encode()).hexdigest()[:10]
    return f"emissary-{digest}"


class _Join:
    def __init__(self, *, ambassador_id: str, registry: Registry, sources: Mapping[ObjectRef, str],
                 module: ModuleSpec | None, contexts: Sequence[TLSContextSpec], out: Output) -> None:
        self.id = ambassador_id
        self.registry = registry
        self.sources = sources
        self.module = module
        self.contexts = {c.ref.name: c for c in contexts}
        self.context_list = list(contexts)
        self.out = out
        lb = module.load_balancer if module is not None else None
        self.default_policy = TrafficPolicy(lb="ROUND_ROBIN", connect_timeout_s=DEFAULT_CONNECT_TIMEOUT_MS / 1000)
        self.module_lb = lb

    def diag(self, severity: Severity, code: str, message: str, ref: ObjectRef | None, path: str) -> None:
        self.out.diagnostics.append(Diagnostic(severity, code, message, self.sources.get(ref, "") if ref else "",
                                               ref, path))

    # ------------------------------------------------------------------------------------ clusters

    def cluster_for(self, m: MappingSpec) -> str | None:
        svc = m.service
        ctx = None
        if isinstance(m.tls, str):
            ctx = self.contexts.get(m.tls)
            if ctx is None:
                # a warning, like any reference to an object that may still arrive (Emissary: an error)
                self.diag(Severity.WARNING, "unknown-tlscontext", f"Originate-TLS context {m.tls!r} is not defined (no "
                          f"TLSContext {m.tls!r} for ambassador_id {self.id!r}); the Mapping is not served until it is",
                          m.ref, "spec.tls")
                return None
        originate = svc.scheme == "https" or m.tls is not None
        if svc.scheme == "http" and m.tls is not None:
            self.diag(Severity.WARNING, "tls-scheme", "service says http:// but tls names a context: TLS is "
                      "originated, as in Emissary", m.ref, "spec.service")
        port = svc.port or (443 if originate else 80)
        tls = None
        if originate:
            if ctx is not None:
                secret = ctx.secret[0] if ctx.secret else ""
                tls = UpstreamTls(mode="MUTUAL" if secret else "SIMPLE", credential_name=secret, sni=ctx.sni,
                                  ca_credential=ctx.ca_secret[0] if ctx.ca_secret else "",
                                  insecure_skip_verify=ctx.ca_secret is None)
            else:
                tls = UpstreamTls(mode="SIMPLE", insecure_skip_verify=True)
        lb = m.load_balancer or self.module_lb
        breakers = m.circuit_breakers if m.circuit_breakers is not None else \
            (self.module.circuit_breakers if self.module is not None else None)
        checks = m.health_checks or None
        if checks and not m.grpc and any(h.kind == "GRPC" for h in checks):
            self.diag(Severity.WARNING, "health-check", "a grpc health check needs an HTTP/2 cluster (Envoy refuses "
                      "it on HTTP/1.1): set grpc: true; the grpc health checks are not applied", m.ref,
                      "spec.health_checks")
            checks = tuple(h for h in checks if h.kind != "GRPC") or None
        policy = TrafficPolicy(
            lb=lb.policy if lb is not None else "ROUND_ROBIN",
            connect_timeout_s=(m.connect_timeout_ms if m.connect_timeout_ms is not None else DEFAULT_CONNECT_TIMEOUT_MS)
            / 1000, circuit_breakers=breakers, tls=tls, health_checks=checks)
        tag = _tag(m.grpc, policy, self.default_policy)
        host = svc.host
        endpoints: tuple[Endpoint, ...] | None = None
        discovery = "EDS"
        if svc.ip:
            endpoints = (Endpoint(host, port),)
        else:
            candidates = [host] + ([f"{host}.{DOMAIN_SUFFIX}"] if host.count(".") == 1 else []) + \
                ([host[: -len(".cluster.local")] + ".cluster.local"] if host.endswith(".svc") else [])
            found = next((c for c in candidates if self.registry.get(c) is not None), None)
            if found is not None:
                host = found
                s = self.registry.get(found)
                if s.port(port) is None:
                    ports = ", ".join(str(p.number) for p in s.ports)
                    self.diag(Severity.WARNING, "unknown-port", f"service {found} has no port {port} (ports: {ports});"
                              f" the cluster has no endpoints", m.ref, "spec.service")
            else:
                discovery = "STRICT_DNS"
                endpoints = (Endpoint(host, port),)
                self.diag(Severity.INFO, "dns-service", f"{host!r} is not a Service or ServiceEntry in the config: "
                          "Envoy resolves it with DNS", m.ref, "spec.service")
        name = cluster_name(port=port, subset=tag, host=host)
        self.out.clusters.setdefault(name, ClusterRequest(name, host, port, tag, m.grpc, policy, discovery, endpoints))
        return name

    # ------------------------------------------------------------------------------------ routes

    def route(self, group: list[MappingSpec], host: HostSpec) -> Route | None:
        """One canary group -> one route, weighted across its Mappings' clusters."""
        main = [m for m in group if not m.shadow]
        shadows = [m for m in group if m.shadow]
        if not main:
            return None
        first = main[0]
        clusters = []
        for m in main:
            name = self.cluster_for(m)
            if name is not None:
                clusters.append((m, name))
        if not clusters:
            return None
        weights = self.weights([m for m, _ in clusters])
        if weights is None:
            return None
        mirror = self.cluster_for(shadows[0]) if shadows else None
        if len(shadows) > 1:
            self.diag(Severity.WARNING, "shadow", "only one shadow Mapping per group is used, as in Emissary",
                      shadows[1].ref, "spec.shadow")
        headers = list(first.headers)
        if first.method is not None:
            headers.append(first.method)
        if first.host_regex is not None:
            headers.append(HeaderMatch(":authority", StringMatch("regex", first.host_regex)))
        elif first.hostname != "*" and first.hostname != host.hostname:
            headers.append(HeaderMatch(":authority", StringMatch("regex", _glob_regex(first.hostname))
                                       if "*" in first.hostname else StringMatch("exact", first.hostname)))
        if first.prefix_regex:
            path = StringMatch("regex", first.prefix)
        else:
            path = StringMatch("exact" if first.prefix_exact else "prefix", first.prefix)
        if first.case_sensitive is False:
            path = StringMatch(path.kind, path.value, ignore_case=True)
        module = self.module
        if first.timeout_ms is not None:
            timeout = first.timeout_ms / 1000 or None
        elif first.grpc:
            timeout = None
            self.diag(Severity.INFO, "grpc-default", "grpc: true with no timeout_ms: no route timeout, and the "
                      "client's grpc-timeout is honoured (Emissary's 3000 ms default would end every stream after 3 s)",
                      first.ref, "spec.timeout_ms")
        else:
            ms = module.cluster_request_timeout_ms if module and module.cluster_request_timeout_ms is not None \
                else DEFAULT_TIMEOUT_MS
            timeout = ms / 1000 or None
        rewrite = first.rewrite
        if rewrite is None:
            if first.grpc:
                self.diag(Severity.INFO, "grpc-default", "grpc: true with no rewrite: the path is left alone "
                          "(Emissary's default rewrite '/' would strip /package.Service/)", first.ref, "spec.rewrite")
            else:
                rewrite = "/"
        if rewrite == "":
            rewrite = None
        if rewrite is not None and first.prefix_regex:
            self.diag(Severity.WARNING, "rewrite", "rewrite with prefix_regex is not applied; use regex_rewrite",
                      first.ref, "spec.rewrite")
            rewrite = None
        lb: LoadBalancer | None = first.load_balancer or self.module_lb
        cors = first.cors or (module.cors if module is not None else None)
        if cors is not None and cors.forward_unmatched_preflights is None and first.grpc:
            cors = CorsPolicy(cors.allow_origins, cors.allow_methods, cors.allow_headers, cors.expose_headers,
                              cors.max_age_s, cors.allow_credentials, forward_unmatched_preflights=False)
        return Route(
            name=f"{first.ref.namespace}/{first.ref.name}",
            match=RouteMatch(path=path, headers=tuple(headers), query_params=first.query),
            clusters=tuple(WeightedCluster(name, w) for (_, name), w in zip(clusters, weights)),
            timeout_s=timeout,
            retries=first.retry or (module.retry if module is not None else None),
            rewrite_uri=rewrite, rewrite_authority=first.host_rewrite,
            request_headers=first.request_headers, response_headers=first.response_headers,
            mirror_cluster=mirror, cors=cors, source=first.ref,
            idle_timeout_s=first.idle_timeout_ms / 1000 if first.idle_timeout_ms is not None else None,
            regex_rewrite=first.regex_rewrite,
            hash_header=lb.header if lb is not None and lb.header else None,
            hash_cookie=lb.cookie if lb is not None else None, hash_source_ip=bool(lb and lb.source_ip))

    def weights(self, group: list[MappingSpec]) -> list[int] | None:
        """Emissary's canary weights: explicit weights in order, the rest of 100 shared by the others."""
        if len(group) == 1:
            return [100]
        explicit = sum(m.weight for m in group if m.weight is not None)
        if explicit > 100:
            self.diag(Severity.ERROR, "weight", f"the weights of this canary group add up to {explicit}, over 100; "
                      "the group is not served, as in Emissary", group[0].ref, "spec.weight")
            return None
        rest = [m for m in group if m.weight is None]
        share = (100 - explicit) // len(rest) if rest else 0
        out = [m.weight if m.weight is not None else share for m in group]
        if rest:  # the remainder of the integer split goes to the last unweighted Mapping
            out[max(i for i, m in enumerate(group) if m.weight is None)] += 100 - explicit - share * len(rest)
        if sum(out) == 0:
            out = [1] * len(out)
        return out


def _group_key(m: MappingSpec) -> tuple:
    return (m.prefix, m.prefix_regex, m.prefix_exact, m.case_sensitive, m.headers, m.query,
            m.method, m.hostname, m.host_regex, m.precedence)


def _route_weight(m: MappingSpec) -> tuple:
    """Emissary's ``route_weight``: precedence, prefix length, header length, query length, prefix,
    method, header keys (the hostname counts as an ``:authority`` header)."""
    headers = list(m.headers) + ([HeaderMatch(":authority", StringMatch("exact", m.hostname))]
                                 if m.hostname != "*" else [])
    hlen = sum(len(h.name) + len(h.match.value or "*") + (1 if h.match.kind == "regex" else 0) for h in headers)
    qlen = sum(len(q.name) + len(q.match.value or "*") for q in m.query)
    return (m.precedence, len(m.prefix), hlen, qlen, m.prefix, m.method.match.value if m.method else "GET",
            tuple(f"{h.name}-{h.match.value or '*'}" for h in headers))


def _selected(selector: tuple[tuple[str, str], ...] | None, labels: tuple[tuple[str, str], ...]) -> bool:
    return selector is not None and all(pair in labels for pair in selector)


def compile_emissary(*, mappings: Sequence[MappingSpec], hosts: Sequence[HostSpec], contexts: Sequence[TLSContextSpec],
                     modules: Sequence[ModuleSpec], listeners: Sequence[ListenerSpec], ambassador_ids: Sequence[str],
                     registry: Registry, sources: Mapping[ObjectRef, str]) -> Output:
    out = Output()
    wanted = set(ambassador_ids)
    for kind, items in (("Mapping", mappings), ("Host", hosts), ("TLSContext", contexts), ("Module", modules),
                        ("Listener", listeners)):
        for x in items:
            if not wanted & set(x.ids):
                out.diagnostics.append(Diagnostic(
                    Severity.INFO, "ambassador-id", f"{kind} is for ambassador_id {', '.join(x.ids)}, not "
                    f"{', '.join(sorted(wanted))} (serve --ambassador-id): ignored, as Emissary ignores it",
                    sources.get(x.ref, ""), x.ref, "spec.ambassador_id"))
    for aid in sorted(wanted):
        mine = [m for m in mappings if aid in m.ids]
        if not mine and not any(aid in h.ids for h in hosts) and not any(aid in x.ids for x in listeners):
            continue
        _compile_one(aid, mappings=mine, hosts=[h for h in hosts if aid in h.ids],
                     contexts=[c for c in contexts if aid in c.ids], modules=[x for x in modules if aid in x.ids],
                     listeners=[x for x in listeners if aid in x.ids], registry=registry, sources=sources, out=out)
    out.diagnostics = list(dict.fromkeys(out.diagnostics))  # a Mapping under several Hosts is reported once
    return out


def _compile_one(aid: str, *, mappings: list[MappingSpec], hosts: list[HostSpec], contexts: list[TLSContextSpec],
                 modules: list[ModuleSpec], listeners: list[ListenerSpec], registry: Registry,
                 sources: Mapping[ObjectRef, str], out: Output) -> None:
    module = modules[0] if modules else None
    for extra in modules[1:]:
        out.diagnostics.append(Diagnostic(Severity.WARNING, "duplicate", f"another ambassador Module ({modules[0].ref}) "
                                          "is already read for this ambassador_id; this one is ignored",
                                          sources.get(extra.ref, ""), extra.ref, "metadata.name"))
    join = _Join(ambassador_id=aid, registry=registry, sources=sources, module=module, contexts=contexts, out=out)
    if listeners:
        ls = []
        seen: dict[int, ObjectRef] = {}
        for x in sorted(listeners, key=lambda x: (x.ref.namespace, x.ref.name)):
            if x.port in seen:
                join.diag(Severity.ERROR, "duplicate", f"Listener {seen[x.port]} already uses port {x.port}", x.ref,
                          "spec.port")
                continue
            seen[x.port] = x.ref
            ls.append(_Listener(x.ref, x.port, x.tls, x.security_model == "SECURE", x.ref.namespace,
                                x.namespace_from, x.selector))
    else:
        ls = [_Listener(None, port, tls, False, "", "ALL", None) for port, tls in DEFAULT_LISTENERS]
    if not hosts:
        hosts = [HostSpec(ObjectRef("Host", "", "default-host", GROUP), (), (aid,), "*", None, None, None, "Route",
                          None)]
        if mappings:
            out.diagnostics.append(Diagnostic(
                Severity.INFO, "default-host", "no Host: '*' is routed in cleartext on the cleartext Listener (Emissary "
                "would redirect it to a self-signed certificate); add a Host with a tlsSecret for TLS",
                sources.get(mappings[0].ref, ""), None, ""))
    hosts = sorted(hosts, key=lambda h: (h.ref.namespace, h.ref.name))
    ordered = sorted(mappings, key=lambda m: (m.ref.namespace, m.ref.name))
    key = f"{DIALECT}:{aid}"
    servers: list[GatewayServer] = []
    routes_by_host: dict[tuple[str, str], list[Route]] = {}
    grpc_web = module is not None and module.grpc_web
    stats = {"grpc_stats_all": module.grpc_stats_all, "grpc_stats_methods": module.grpc_stats_methods} \
        if module is not None else {}
    for h in hosts:
        groups: dict[tuple, list[MappingSpec]] = {}
        for m in ordered:
            if h.mapping_selector is not None and m.hostname == "*" and m.host_regex is None:
                if not _selected(h.mapping_selector, m.labels):
                    continue
            elif not _globs_match(m.hostname, h.hostname) and m.host_regex is None:
                continue
            groups.setdefault(_group_key(m), []).append(m)
        ranked = sorted(groups.values(), key=lambda g: max(map(_route_weight, g)), reverse=True)
        routes = [r for g in ranked if (r := join.route(g, h)) is not None]
        routes_by_host[(h.ref.namespace, h.ref.name)] = routes
        tls = _server_tls(h, join)
        for lst in ls:
            if lst.namespace_from == "SELF" and lst.namespace != h.ref.namespace:
                continue
            if lst.selector is not None and not _selected(lst.selector, h.labels):
                continue
            if lst.tls:
                if tls is None:
                    continue  # a Host without a certificate is not served on a TLS listener
                servers.append(GatewayServer(lst.port, f"emissary-{lst.port}", "GRPC-WEB" if grpc_web else "HTTPS",
                                             (("*", h.hostname),), tls=tls, **stats))
                continue
            action = "Route" if lst.secure else h.insecure_action
            if action == "Reject":
                continue
            servers.append(GatewayServer(lst.port, f"emissary-{lst.port}", "GRPC-WEB" if grpc_web else "HTTP",
                                         (("*", h.hostname),), https_redirect=action == "Redirect", **stats))
    gateway_ref = ObjectRef("Listener", "", aid, GROUP)
    out.gateways.append(Gateway(ref=gateway_ref, selector=((AMBASSADOR_ID_LABEL, aid),), servers=tuple(servers),
                                dialect=DIALECT))
    for h in hosts:
        routes = routes_by_host[(h.ref.namespace, h.ref.name)]
        if routes:
            out.http_routes.append(HttpRoutes(ref=ObjectRef("Host", h.ref.namespace, h.ref.name, GROUP),
                                              hosts=(h.hostname,), gateways=(key,), routes=tuple(routes)))


def _server_tls(h: HostSpec, join: _Join) -> ServerTls | None:
    """A Host's certificate and TLS settings: its tlsContext or inline tls, else a TLSContext whose
    ``hosts`` name its hostname; the certificate from ``tlsSecret`` or the context's ``secret``."""
    ctx = h.tls
    if ctx is None and h.tls_context:
        ctx = join.contexts.get(h.tls_context)
        if ctx is None:
            join.diag(Severity.WARNING, "unknown-tlscontext", f"no TLSContext {h.tls_context!r}: the Host is served "
                      "with default TLS settings", h.ref, "spec.tlsContext.name")
    if ctx is None:
        ctx = next((c for c in join.context_list if h.hostname in c.hosts), None)
    secret = h.tls_secret or (ctx.secret if ctx is not None else None)
    if secret is None:
        return None
    if ctx is None:
        return ServerTls(mode="SIMPLE", credential_name=secret[0])
    return ServerTls(mode="MUTUAL" if ctx.ca_secret else "SIMPLE", credential_name=secret[0],
                     min_version=ctx.min_version, max_version=ctx.max_version, cipher_suites=ctx.cipher_suites,
                     alpn=ctx.alpn, ca_credential=ctx.ca_secret[0] if ctx.ca_secret else "",
                     require_client_certificate=ctx.cert_required)


def statuses(diagnostics: Sequence[Diagnostic], out: dict[ObjectRef, dict]) -> None:
    """Emissary objects with errors get Emissary's own status shape: ``state: Inactive`` and the reason."""
    for ref, ds in errors_by_object(diagnostics, group=GROUP).items():
        out[ref] = {"state": "Inactive", "reason": "; ".join(f"{d.field_path}: {d.message}" for d in ds)[:1000]}
