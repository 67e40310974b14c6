"""RDS: RouteConfiguration from IR virtual hosts.

Route semantics that make gRPC behave:

* no IR timeout -> ``timeout: 0s`` (disabled) and the client's
  ``grpc-timeout`` header is honoured without a cap, as Istio does; a
  timeout caps both;
* a request that matches no route gets Envoy's 404, which a gRPC client
  sees as ``UNIMPLEMENTED`` rather than a connection error.
"""
from __future__ import annotations

import hashlib
import itertools
import operator
import zlib

from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2

from translators import ir
from translators import persistent
from translators.builders.prebuilt import Prebuilt
from translators.by_identity import came_and_went, changed_positions, changed_span, note_span
from translators.wire import field
from translators.builders.proto import duration, pack

FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"

_ADD = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD
_SET = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def string_matcher(m: ir.StringMatch) -> string_pb2.StringMatcher:
    if m.kind == "exact":
        return string_pb2.StringMatcher(exact=m.value, ignore_case=m.ignore_case)
    if m.kind == "prefix":
        return string_pb2.StringMatcher(prefix=m.value, ignore_case=m.ignore_case)
    if m.kind == "regex":
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=m.value))
    raise ValueError(f"no string matcher for {m.kind}")


def _header_matcher(h: ir.HeaderMatch) -> rc.HeaderMatcher:
    out = rc.HeaderMatcher(name=h.name, invert_match=h.invert)
    if h.match.kind == "present":
        out.present_match = True
    else:
        out.string_match.CopyFrom(string_matcher(h.match))
    return out


def _route_match(m: ir.RouteMatch) -> rc.RouteMatch:
    out = rc.RouteMatch()
    path = m.path
    if path is None:
        out.prefix = "/"
    elif path.kind == "exact":
        out.path = path.value
    elif path.kind == "prefix":
        out.prefix = path.value
    elif path.kind == "segment":
        if path.value.rstrip("/"):
            out.path_separated_prefix = path.value.rstrip("/")
        else:
            out.prefix = "/"
    else:
        out.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=path.value))
    if path is not None and path.ignore_case:
        out.case_sensitive.CopyFrom(wrappers_pb2.BoolValue(value=False))
    out.headers.extend(_header_matcher(h) for h in m.headers)
    for q in m.query_params:
        qm = rc.QueryParameterMatcher(name=q.name)
        if q.match.kind == "present":
            qm.present_match = True
        else:
            qm.string_match.CopyFrom(string_matcher(q.match))
        out.query_parameters.append(qm)
    return out


def _header_options(ops: ir.HeaderOps) -> list[base_pb2.HeaderValueOption]:
    out = [base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, value=v), append_action=_SET) for k, v in ops.set]
    out += [base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, value=v), append_action=_ADD) for k, v in ops.add]
    return out


def _retry(policy: ir.RetryPolicy) -> rc.RetryPolicy:
    out = rc.RetryPolicy(retry_on=",".join(t for t in policy.retry_on.split(",") if not t.isdigit()),
                         num_retries=wrappers_pb2.UInt32Value(value=policy.attempts),
                         host_selection_retry_max_attempts=5)
    codes = [int(t) for t in policy.retry_on.split(",") if t.isdigit()]
    if "retriable-status-codes" in policy.retry_on and not codes:
        codes = [503]
    out.retriable_status_codes.extend(codes)
    if codes and "retriable-status-codes" not in out.retry_on:
        out.retry_on = ",".join(filter(None, [out.retry_on, "retriable-status-codes"]))
    if policy.per_try_timeout_s:
        out.per_try_timeout.CopyFrom(duration(policy.per_try_timeout_s))
    return out


def _percent(value: float) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=int(round(value * 10000)),
                                         denominator=percent_pb2.FractionalPercent.MILLION)


def fault_config(f: ir.FaultPolicy) -> fault_pb2.HTTPFault:
    out = fault_pb2.HTTPFault()
    if f.delay_s is not None:
        out.delay.CopyFrom(common_fault.FaultDelay(fixed_delay=duration(f.delay_s), percentage=_percent(f.delay_percent)))
    if f.abort_grpc_status is not None:
        out.abort.CopyFrom(fault_pb2.FaultAbort(grpc_status=f.abort_grpc_status, percentage=_percent(f.abort_percent)))
    elif f.abort_http_status is not None:
        out.abort.CopyFrom(fault_pb2.FaultAbort(http_status=f.abort_http_status, percentage=_percent(f.abort_percent)))
    return out


#: the retry conditions a gRPC client accepts (gRFC A44); the rest are Envoy-only
GRPC_RETRY_ON = ("cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")


def _proxyless_retry(policy: ir.RetryPolicy) -> rc.RetryPolicy | None:
    """A44: retry_on limited to gRPC status names, num_retries and an exponential backoff."""
    codes = [t for t in policy.retry_on.split(",") if t in GRPC_RETRY_ON]
    if not codes:
        return None
    return rc.RetryPolicy(retry_on=",".join(codes), num_retries=wrappers_pb2.UInt32Value(value=policy.attempts),
                          retry_back_off=rc.RetryPolicy.RetryBackOff(base_interval=duration(0.025),
                                                                    max_interval=duration(0.25)))


def _action(r: ir.Route, *, proxyless: bool) -> rc.RouteAction:
    action = rc.RouteAction()
    if len(r.clusters) == 1:
        action.cluster = r.clusters[0].cluster
    elif proxyless:
        action.weighted_clusters.clusters.extend(rc.WeightedCluster.ClusterWeight(
            name=c.cluster, weight=wrappers_pb2.UInt32Value(value=c.weight)) for c in r.clusters)
    else:
        action.weighted_clusters.clusters.extend(rc.WeightedCluster.ClusterWeight(
            name=c.cluster, weight=wrappers_pb2.UInt32Value(value=c.weight),
            request_headers_to_add=_header_options(c.request_headers),
            request_headers_to_remove=list(c.request_headers.remove),
            response_headers_to_add=_header_options(c.response_headers),
            response_headers_to_remove=list(c.response_headers.remove)) for c in r.clusters)
    if r.hash_header:
        action.hash_policy.append(rc.RouteAction.HashPolicy(header=rc.RouteAction.HashPolicy.Header(header_name=r.hash_header)))
    if r.hash_cookie is not None:
        name, path, ttl = r.hash_cookie
        cookie = rc.RouteAction.HashPolicy.Cookie(name=name, path=path)
        if ttl is not None:
            cookie.ttl.CopyFrom(duration(ttl))
        action.hash_policy.append(rc.RouteAction.HashPolicy(cookie=cookie))
    if r.hash_source_ip:
        action.hash_policy.append(rc.RouteAction.HashPolicy(
            connection_properties=rc.RouteAction.HashPolicy.ConnectionProperties(source_ip=True)))
    if r.hash_query:
        action.hash_policy.append(rc.RouteAction.HashPolicy(
            query_parameter=rc.RouteAction.HashPolicy.QueryParameter(name=r.hash_query)))
    if proxyless:
        if r.timeout_s:  # gRFC A31: the route timeout is max_stream_duration
            action.max_stream_duration.max_stream_duration.CopyFrom(duration(r.timeout_s))
        retry = _proxyless_retry(r.retries) if r.retries is not None else None
        if retry is not None:
            action.retry_policy.CopyFrom(retry)
        return action
    action.timeout.CopyFrom(duration(r.timeout_s or 0))
    # with max_stream_duration present Envoy uses its "new timeouts" and ignores ``timeout``: the route
    # timeout must be the stream duration too (as Istio sets it), and caps the client's grpc-timeout
    action.max_stream_duration.grpc_timeout_header_max.CopyFrom(duration(r.timeout_s or 0))
    if r.timeout_s:
        action.max_stream_duration.max_stream_duration.CopyFrom(duration(r.timeout_s))
    if r.retries is not None:
        action.retry_policy.CopyFrom(_retry(r.retries))
    if r.rewrite_uri is not None:
        action.prefix_rewrite = r.rewrite_uri
    if r.regex_rewrite is not None:
        action.regex_rewrite.pattern.regex = r.regex_rewrite[0]
        action.regex_rewrite.substitution = r.regex_rewrite[1]
    if r.idle_timeout_s is not None:
        action.idle_timeout.CopyFrom(duration(r.idle_timeout_s))
    if r.rewrite_authority:
        action.host_rewrite_literal = r.rewrite_authority
    if r.mirror_cluster:
        mp = rc.RouteAction.RequestMirrorPolicy(cluster=r.mirror_cluster)
        if r.mirror_percent is not None:
            mp.runtime_fraction.default_value.CopyFrom(_percent(r.mirror_percent))
        action.request_mirror_policies.append(mp)
    return action


def build_proxyless_route(r: ir.Route) -> rc.Route | None:
    """A route for a gRPC client (gRFC A28), or None where it could not follow it.

    Redirects, direct responses and query-parameter matches have no meaning
    for gRPC clients; header edits are not applied by them and are left out.
    ``validate`` warns about each of these for VirtualServices bound to ``mesh``.
    """
    if r.redirect is not None or not r.clusters or r.match.query_params:
        return None
    out = rc.Route(name=r.name, match=_route_match(r.match))
    out.route.CopyFrom(_action(r, proxyless=True))
    if r.fault is not None:
        out.typed_per_filter_config[FAULT_FILTER].CopyFrom(pack(fault_config(r.fault)))
    return out


def build_route(r: ir.Route, *, grpc_web: bool = False) -> rc.Route:
    out = rc.Route(name=r.name, match=_route_match(r.match))
    if r.redirect is not None:
        rd = r.redirect
        red = rc.RedirectAction(host_redirect=rd.authority, path_redirect=rd.uri)
        if rd.prefix is not None:
            red.prefix_rewrite = rd.prefix
        if rd.scheme:
            red.scheme_redirect = rd.scheme
        if rd.port:
            red.port_redirect = rd.port
        red.response_code = {301: rc.RedirectAction.MOVED_PERMANENTLY, 302: rc.RedirectAction.FOUND,
                             303: rc.RedirectAction.SEE_OTHER, 307: rc.RedirectAction.TEMPORARY_REDIRECT,
                             308: rc.RedirectAction.PERMANENT_REDIRECT}.get(rd.code, rc.RedirectAction.MOVED_PERMANENTLY)
        out.redirect.CopyFrom(red)
    elif r.direct_response is not None and not r.clusters:
        out.direct_response.status = r.direct_response.status
        if r.direct_response.body:
            out.direct_response.body.inline_string = r.direct_response.body
    else:
        out.route.CopyFrom(_action(r, proxyless=False))
    out.request_headers_to_add.extend(_header_options(r.request_headers))
    out.request_headers_to_remove.extend(r.request_headers.remove)
    out.response_headers_to_add.extend(_header_options(r.response_headers))
    out.response_headers_to_remove.extend(r.response_headers.remove)
    if r.fault is not None:
        out.typed_per_filter_config[FAULT_FILTER].CopyFrom(pack(fault_config(r.fault)))
    if r.cors is not None:
        out.typed_per_filter_config[CORS_FILTER].CopyFrom(pack(cors_policy(r.cors, grpc_web=grpc_web)))
    return out


#: what a browser's gRPC-Web client needs to read and send (grpc-web's own docs)
GRPC_WEB_EXPOSE = ("grpc-status", "grpc-message", "grpc-status-details-bin")
GRPC_WEB_ALLOW = ("content-type", "x-grpc-web", "x-user-agent", "grpc-timeout")


def cors_policy(p: ir.CorsPolicy, *, grpc_web: bool) -> cors_pb2.CorsPolicy:
    expose = list(p.expose_headers) + [h for h in GRPC_WEB_EXPOSE if grpc_web and h not in p.expose_headers]
    allow = list(p.allow_headers) + [h for h in GRPC_WEB_ALLOW if grpc_web and h not in p.allow_headers]
    out = cors_pb2.CorsPolicy(allow_origin_string_match=[string_matcher(m) for m in p.allow_origins],
                              allow_methods=",".join(p.allow_methods or (("POST", "GET", "OPTIONS") if grpc_web else ())),
                              allow_headers=",".join(allow), expose_headers=",".join(expose))
    if p.max_age_s is not None:
        out.max_age = str(int(p.max_age_s))
    if p.allow_credentials is not None:
        out.allow_credentials.value = p.allow_credentials
    if p.forward_unmatched_preflights is not None:
        out.forward_not_matching_preflights.value = p.forward_unmatched_preflights
    return out


def build_route_configuration(name: str, virtual_hosts: tuple[ir.VirtualHost, ...], *,
                              proxyless: bool = False, grpc_web: bool = False,
                              keep_port: bool = False) -> route_pb2.RouteConfiguration:
    """``keep_port``: match virtual hosts ignoring the ``:authority`` port but forward it unchanged
    (Gateway API listeners; the others strip the port in the connection manager)."""
    if proxyless:
        vhosts = [rc.VirtualHost(name=v.name, domains=list(v.domains),
                                 routes=[x for r in v.routes if (x := build_proxyless_route(r)) is not None])
                  for v in virtual_hosts]
        return route_pb2.RouteConfiguration(name=name, virtual_hosts=vhosts)
    return route_pb2.RouteConfiguration(
        name=name,
        validate_clusters=wrappers_pb2.BoolValue(value=False),
        virtual_hosts=[rc.VirtualHost(name=v.name, domains=list(v.domains),
                                      routes=[build_route(r, grpc_web=grpc_web) for r in v.routes],
                                      require_tls=rc.VirtualHost.ALL if v.require_tls else rc.VirtualHost.NONE)
                       for v in virtual_hosts],
        ignore_port_in_host_matching=keep_port,
    )


def uses_fault(virtual_hosts: tuple[ir.VirtualHost, ...]) -> bool:
    return any(r.fault is not None for v in virtual_hosts for r in v.routes)


#: ``validate_clusters: {value: false}`` (RouteConfiguration field 7, an empty BoolValue)
_VALIDATE_CLUSTERS_FALSE = field(7, b"")
_IGNORE_PORT_IN_HOST_MATCHING = b"p\x01"  # field 14, varint 1


def _vhost_refs(routes: list[rc.Route]) -> frozenset[str]:
    out = set()
    for r in routes:
        if not r.HasField("route"):
            continue
        if r.route.cluster:
            out.add(r.route.cluster)
        out.update(w.name for w in r.route.weighted_clusters.clusters)
        out.update(m.cluster for m in r.route.request_mirror_policies)
    return frozenset(out)


VhostCache = dict[tuple, tuple[tuple, bytes, frozenset[str]]]


#: a block of a route configuration's cached bytes ends after a host whose domain hashes to 0 mod this
#: (content-defined: a host that comes or goes changes its own block only, not every later one)
_BLOCK = 64


def _same_routes(a: ir.VirtualHost, b: ir.VirtualHost) -> bool:
    """Two virtual-host objects that serialize the same: equal name, domains, TLS flag, and the very same
    route objects (a view rebuilt after a Gateway edit makes new hosts around the same routes)."""
    return a.name == b.name and a.domains == b.domains and a.require_tls == b.require_tls and \
        len(a.routes) == len(b.routes) and all(x is y for x, y in zip(a.routes, b.routes))


#: ``VirtualHost.require_tls: ALL`` (field 4, varint 2)
_REQUIRE_TLS_ALL = b"\x20" + bytes((rc.VirtualHost.ALL,))


def routes_part(routes: tuple[ir.Route, ...], grpc_web: bool, memo: VhostCache | None) -> tuple[bytes, frozenset[str]]:
    """A virtual host's ``routes`` (field 3, repeated) as bytes, and the clusters they name.  ``memo`` (the
    translation's cache) keeps them by the route objects: a gateway's HTTP and HTTPS servers usually carry
    the same VirtualServices, whose routes are the very same objects on both ports (only the host's name
    and domains differ), so they are built and serialized once."""
    key = ("routes", grpc_web, *map(id, routes)) if memo is not None else None
    hit = memo.get(key) if key is not None else None
    if hit is not None and len(hit[0]) == len(routes) and all(map(operator.is_, hit[0], routes)):
        return hit[1], hit[2]  # (the entry holds the routes its key's ids are of)
    built = [build_route(r, grpc_web=grpc_web) for r in routes]
    out = (routes, b"".join([field(3, r.SerializeToString(deterministic=True)) for r in built]), _vhost_refs(built))
    if key is not None:
        memo[key] = out
    return out[1], out[2]


def _vhost_entry(v: ir.VirtualHost, grpc_web: bool, old: tuple | None = None, memo: VhostCache | None = None) \
        -> tuple:
    """(host, its bytes, the clusters it names, whether a block ends after it).  The bytes are a
    ``RouteConfiguration.virtual_hosts`` entry, joined in field order as protobuf serializes a
    ``VirtualHost`` (name=1, domains=2, routes=3, require_tls=4; a unit test checks them against it)."""
    if old is not None and _same_routes(old[0], v):
        return (v, old[1], old[2], old[3])
    routes, refs = routes_part(v.routes, grpc_web, memo)
    body = b"".join([field(1, v.name.encode()) if v.name else b"", *[field(2, d.encode()) for d in v.domains],
                     routes, _REQUIRE_TLS_ALL if v.require_tls else b""])
    boundary = zlib.crc32(v.name.encode()) % _BLOCK == 0
    return (v, field(2, body), refs, boundary)


def _merged_entries(old: list[tuple], old_hosts: tuple[ir.VirtualHost, ...],
                    virtual_hosts: tuple[ir.VirtualHost, ...], grpc_web: bool, memo: VhostCache) -> list[tuple]:
    """The entries of ``virtual_hosts``, reusing the ``old`` ones (of ``old_hosts``): the very same host
    objects at the start and at the end keep their entries (the span is told by the view, else found at C
    speed), and only the span between is matched, by host object (the same entry), else by name (the same
    routes: the same bytes).  A host added or gone costs one entry."""
    start, old_end, new_end = changed_span(old_hosts, virtual_hosts)
    span_old, span_new = old[start:old_end], virtual_hosts[start:new_end]
    by_id = dict(zip(map(id, old_hosts[start:old_end]), span_old))  # the old entries hold their hosts
    middle = list(map(by_id.get, map(id, span_new)))
    missing = list(itertools.compress(range(len(middle)), map(operator.not_, middle)))
    if missing:
        by_name = dict(zip(map(operator.attrgetter("name"), old_hosts[start:old_end]), span_old))
        for i in missing:
            v = span_new[i]
            middle[i] = _vhost_entry(v, grpc_web, by_name.get(v.name), memo)
    out = old[:start] + middle + old[old_end:]
    note_span(old, out, (start, old_end, start + len(middle)))
    return out


def vhost_entries(name: str, virtual_hosts: tuple[ir.VirtualHost, ...], *, grpc_web: bool, previous: VhostCache,
                  current: VhostCache) -> list[tuple]:
    """The per-host entries (host, its bytes, the clusters it names, block boundary) of a route
    configuration, kept from one translation to the next: the very same list while the hosts are the very
    same tuple, patched by position when as many hosts remain (C speed), else merged by host."""
    key = ("route-entries", name, grpc_web)
    cached = current.get(key) or previous.get(key)
    if cached is not None and cached[0] is virtual_hosts:
        current[key] = cached
        return cached[1]
    n = len(virtual_hosts)
    if cached is not None and len(cached[1]) == n:
        entries = list(cached[1])
        at = changed_positions(cached[0], virtual_hosts)  # told by the view, else found at C speed
        for i in at:
            entries[i] = _vhost_entry(virtual_hosts[i], grpc_web, entries[i], current)
        if at:
            note_span(cached[1], entries, (at[0], at[-1] + 1, at[-1] + 1))
    else:
        entries = _merged_entries(cached[1] if cached is not None else [], cached[0] if cached is not None else (),
                                  virtual_hosts, grpc_web, current)
    current[key] = (virtual_hosts, entries)
    return entries


def assemble_route_configuration(name: str, virtual_hosts: tuple[ir.VirtualHost, ...], *, grpc_web: bool,
                                 previous: VhostCache, current: VhostCache, keep_port: bool = False) -> Prebuilt:
    """A gateway ``RouteConfiguration`` from cached per-virtual-host bytes (repeated fields concatenate on
    the wire): one edited route re-serializes one virtual host, not all of them.  ``previous`` is the
    last translation's cache; what this one uses goes into ``current``.  Byte-identical to
    ``build_route_configuration(...).SerializeToString(deterministic=True)``.

    The bytes are kept per virtual host and joined per block; blocks end at hosts whose name hashes to 0
    (content-defined), so an edit or a host that comes or goes re-joins and re-hashes one block.  The
    configuration's version is the hash of the block hashes, and its cluster references are reused unless
    a block's changed."""
    whole_key = ("route-configuration", name, id(virtual_hosts), grpc_web, keep_port)
    parts_key = ("route-configuration-parts", name, grpc_web, keep_port)
    whole = current.get(whole_key) or previous.get(whole_key)
    if whole is not None and whole[0] is virtual_hosts:
        current[whole_key] = whole
        kept = current.get(parts_key) or previous.get(parts_key)
        if kept is not None:
            current[parts_key] = kept
        vhost_entries(name, virtual_hosts, grpc_web=grpc_web, previous=previous, current=current)
        return whole[1]  # the very same virtual hosts: the very same bytes
    cached = current.get(parts_key) or previous.get(parts_key)
    n = len(virtual_hosts)
    entries = vhost_entries(name, virtual_hosts, grpc_web=grpc_web, previous=previous, current=current)
    # blocks: [start, end) ranges ending after a boundary host; an unchanged block is reused as it was
    old_blocks = {}
    if cached is not None:
        for blk in cached[2]:
            old_blocks[id(blk[0][0][0])] = blk  # by the first host object of the block
    blocks = []
    start = 0
    refs_changed = cached is None
    for end in itertools.chain((k + 1 for k, e in enumerate(entries) if e[3]), (n,)):
        if end <= start:
            continue
        chunk = entries[start:end]
        old = old_blocks.get(id(chunk[0][0]))
        if old is not None and len(old[0]) == len(chunk) and all(map(operator.is_, old[0], chunk)):
            blocks.append(old)
        else:
            data = b"".join(e[1] for e in chunk)
            refs = frozenset().union(*(e[2] for e in chunk))
            refs_changed = refs_changed or old is None or refs != old[3]
            blocks.append((chunk, data, hashlib.sha256(data).digest(), refs))
        start = end
    if cached is not None and len(blocks) != len(cached[2]):
        refs_changed = True
    refs_union = frozenset().union(*(b[3] for b in blocks)) if refs_changed else cached[3]
    current[parts_key] = (virtual_hosts, entries, blocks, refs_union)
    head, tail = field(1, name.encode()), _VALIDATE_CLUSTERS_FALSE + (_IGNORE_PORT_IN_HOST_MATCHING if keep_port
                                                                     else b"")
    data = b"".join([head, *(b[1] for b in blocks), tail])
    version = hashlib.sha256(b"".join([head, *(b[2] for b in blocks), tail])).hexdigest()[:16]
    built = Prebuilt(route_pb2.RouteConfiguration, data, cluster_refs=refs_union, content_version=version)
    current[whole_key] = (virtual_hosts, built)
    return built


#: ``RouteConfiguration.vhds`` (field 9): virtual hosts over ADS, which must be Delta xDS (Envoy's vhds.cc)
_VHDS_OVER_ADS = field(9, route_pb2.Vhds(config_source=config_source_pb2.ConfigSource(
    ads=config_source_pb2.AggregatedConfigSource(),
    resource_api_version=config_source_pb2.V3)).SerializeToString(deterministic=True))


def _body(entry: bytes) -> bytes:
    """The message inside a length-delimited field's bytes (tag, varint length, body)."""
    i = 1
    while entry[i] & 0x80:
        i += 1
    return entry[i + 1:]


def vhds_resource_name(route_config: str, virtual_host: str) -> str:
    """``ROUTE_CONFIG/HOST``: the VHDS naming convention (Envoy's docs, "Virtual Host Resource Naming
    Convention"); Envoy matches a resource to its route configuration by the part before the last ``/``."""
    return f"{route_config}/{virtual_host}"


def assemble_vhds(name: str, virtual_hosts: tuple[ir.VirtualHost, ...], *, grpc_web: bool, previous: VhostCache,
                  current: VhostCache, keep_port: bool = False) \
        -> tuple[Prebuilt, dict[str, Prebuilt], frozenset[str] | None, dict[str, Prebuilt] | None]:
    """A gateway route configuration in VHDS form: the configuration itself with no virtual hosts and
    ``vhds`` over ADS, and one ``VirtualHost`` resource per host (named ``NAME/HOST``) from the very bytes
    :func:`vhost_entries` keeps per host.

    Returns ``(configuration, hosts, changed, base)``: ``base`` is the previous translation's hosts dict
    (None: there was none); ``changed`` is empty when ``hosts`` is that very dict, else the names that
    differ from it (None: no base).  One host edited or added costs one entry, not a pass over all.
    """
    entries = vhost_entries(name, virtual_hosts, grpc_web=grpc_web, previous=previous, current=current)
    key = ("vhds", name, grpc_web, keep_port)
    old = current.get(key) or previous.get(key)
    config_data = b"".join((field(1, name.encode()), _VALIDATE_CLUSTERS_FALSE, _VHDS_OVER_ADS,
                            _IGNORE_PORT_IN_HOST_MATCHING if keep_port else b""))
    if old is not None and old[0] is entries:
        current[key] = old
        return old[3], old[1], frozenset(), old[1]
    config = old[3] if old is not None and old[3].SerializeToString() == config_data else \
        Prebuilt(route_pb2.RouteConfiguration, config_data, content_version=hashlib.sha256(config_data).hexdigest()[:16])

    def resource(e: tuple) -> Prebuilt:
        # Envoy keys VHDS hosts by VirtualHost.name and applies removed_resources by that key (vhds.cc,
        # RouteConfigUpdateReceiverImpl::removeVhosts): the host's name must be its resource name, or a
        # removed host stays.  The name is the body's first field; swap it without a parse.
        body, own = _body(e[1]), field(1, e[0].name.encode())
        assert body.startswith(own)
        return Prebuilt(rc.VirtualHost, field(1, vhds_resource_name(name, e[0].name).encode()) + body[len(own):],
                        cluster_refs=e[2])

    if old is None:
        hosts = persistent.frozen({vhds_resource_name(name, e[0].name): resource(e) for e in entries})
        sources = persistent.frozen({vhds_resource_name(name, e[0].name): e[1] for e in entries})
        result: frozenset[str] | None = None
    else:
        # the entries that came and went (told by vhost_entries, else by identity at C speed): one host
        # added or edited costs one entry; the maps are persistent, so the previous ones stay as they were
        came, went = came_and_went(old[0], entries)
        changed = {vhds_resource_name(name, e[0].name) for e in went}
        put_h: list[tuple[str, Prebuilt]] = []
        put_s: list[tuple[str, bytes]] = []
        for e in came:
            n = vhds_resource_name(name, e[0].name)
            if old[2].get(n) is e[1] and n in old[1]:
                changed.discard(n)  # a new host object with the very same bytes: the same resource
            else:
                put_h.append((n, resource(e)))
                put_s.append((n, e[1]))
                changed.add(n)
        kept = {vhds_resource_name(name, e[0].name) for e in came}  # (every put name is one of them)
        drop = [n for n in changed if n not in kept]
        hosts = persistent.patched(old[1], put=put_h, drop=drop)
        sources = persistent.patched(old[2], put=put_s, drop=drop)
        result = frozenset(changed)
    current[key] = (entries, hosts, sources, config)
    return config, hosts, result, old[1] if old is not None else None
