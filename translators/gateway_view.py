"""Which listeners and virtual hosts an Envoy gateway node gets (Istio semantics).

1. Gateways whose ``selector`` matches the node's labels apply to it.
2. Their servers are grouped by (``bind``, port): one listener ``0.0.0.0_PORT``
   per port, or ``ADDRESS_PORT`` for servers with ``bind: ADDRESS``.
3. A VirtualService applies to a port when its ``gateways`` name a selected
   gateway with a server on that port; each of its hosts is intersected with
   *every* server host (``ns/host`` restricts the VirtualService namespace), so
   ``*`` bound to a server with two hosts serves both.
4. Routes for the same host are merged in VirtualService order into one
   virtual host, so every domain appears exactly once (Envoy rejects
   duplicates).  Per-match ``port`` and ``gateways`` narrow a route further.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import replace

from translators import ir
from translators.by_identity import changed_span, note_span
from translators.hosts import intersect, matches


def _server_allows(server: ir.GatewayServer, *, vs_namespace: str, vs_host: str) -> list[str]:
    """Every host the server admits for ``vs_host``: the VirtualService host is intersected with
    each server host (Istio), so ``*`` on a server with ``[a.example.com, b.example.com]`` gives both."""
    return _allows(_lowered(server), vs_namespace, vs_host.lower())


def _lowered(server: ir.GatewayServer) -> tuple[tuple[str, str], ...]:
    # hosts are DNS names: case-insensitive, as Envoy compares domains (two spellings of one host would
    # otherwise be two virtual hosts with one domain, which Envoy rejects for the whole route config)
    return tuple((ns, host.lower()) for ns, host in server.hosts)


def _allows(hosts: tuple[tuple[str, str], ...], vs_namespace: str, vs_host: str) -> list[str]:
    out: list[str] = []
    for ns, host in hosts:
        if ns != "*" and ns != vs_namespace:
            continue
        got = intersect(host, vs_host)
        if got is not None and got not in out:
            out.append(got)
    return out


class _PortView:
    """One port's merged virtual hosts for one selection, kept so that the next model recomputes only
    the hosts whose contributing VirtualServices changed."""

    __slots__ = ("servers", "bindings", "contrib", "host_hrs", "vs_hosts", "buckets", "vhosts", "hosts", "redirect", "tuple", "cors", "last",
                 "cors_hosts", "fault_hosts", "redirect_of", "position", "primed")

    def redirects(self, host: str) -> bool:
        if not self.redirect:
            return False
        hit = self.redirect_of.get(host)
        if hit is None:
            best: tuple[int, int] | None = None
            hit = False
            for _, s in self.servers:
                for _, h in s.hosts:
                    if not matches(h, host):
                        continue
                    rank = (1, 0) if h == host else (0, len(h))
                    if best is None or rank > best:
                        best, hit = rank, s.https_redirect
                    elif rank == best:
                        hit = hit or s.https_redirect
            self.redirect_of[host] = hit
        return hit

    def __init__(self, servers: list[tuple[ir.Gateway, ir.GatewayServer]]) -> None:
        self.servers = servers
        self.bindings = _bindings(servers)
        #: id(hr) -> (hr, [(host, routes), ...]) in the order a full merge visits them
        self.contrib: dict[int, tuple[ir.HttpRoutes, list[tuple[str, list[ir.Route]]]]] = {}
        #: merged host -> ids of the route objects contributing to it, and a VirtualService host (lowered) ->
        #: ids of the route objects naming it.  Frozen sets, replaced on change: a rebased view copies the
        #: dicts only
        self.host_hrs: dict[str, frozenset[int]] = {}
        self.vs_hosts: dict[str, frozenset[int]] = {}
        self.buckets: dict[str, list[ir.Route]] = {}
        self.vhosts: dict[str, ir.VirtualHost] = {}
        self.hosts: list[str] = []  # sorted hosts with routes
        self.redirect = any(s.https_redirect for _, s in servers)
        #: whether a host's requests are redirected to https: decided by the most specific server host
        #: admitting it (a Host that routes cleartext is not redirected by another Host's redirect)
        self.redirect_of: dict[str, bool] = {}
        self.tuple: tuple[ir.VirtualHost, ...] = ()
        self.cors = False
        self.last: tuple = ()  # the http_routes tuple the view is up to date with
        #: hosts with a CORS route, and with a fault-injecting route (kept per host, not rescanned)
        self.cors_hosts: set[str] = set()
        self.fault_hosts: set[str] = set()
        #: id(HttpRoutes) -> position in ``last``, kept up to date by position diffs (None: rebuilt when needed)
        self.position: dict[int, int] | None = None
        self.primed = False  # ``contrib`` holds every route object of ``last``


def _on_port(route: ir.Route, port: int) -> ir.Route:
    """A redirect that keeps the listener's port gets that port (the same route object otherwise)."""
    rd = route.redirect
    if rd is None or not rd.port_from_listener:
        return route
    return replace(route, redirect=replace(rd, port=port, port_from_listener=False))


def _bindings(servers: list[tuple[ir.Gateway, ir.GatewayServer]]) -> tuple:
    """Per server on the port, what :func:`_contributions` asks of it, computed once per view:
    ``(gateway, the two names a VirtualService binds it by, its lowered hosts)``."""
    return tuple((g, g.key, f"{g.key}|{s.port_name}", _lowered(s)) for g, s in servers)


def _contributions(hr: ir.HttpRoutes, bindings: tuple, port: int) -> list[tuple[str, list[ir.Route]]]:
    gateways = hr.gateways
    bound = [b for b in bindings if b[1] in gateways or b[2] in gateways]
    out: list[tuple[str, list[ir.Route]]] = []
    if not bound:
        return out
    namespace = hr.ref.namespace
    per_gateway: dict[str, list[ir.Route]] = {}  # the routes a gateway gets do not depend on the host
    for vs_host in hr.hosts:
        vs_host = vs_host.lower()
        for g, key, _, hosts in bound:  # every server on the port may admit a different host
            admitted = _allows(hosts, namespace, vs_host)
            if not admitted:
                continue
            routes = per_gateway.get(key)
            if routes is None:
                routes = per_gateway[key] = [_on_port(r, port) for r in hr.routes
                                             if (r.match.port is None or r.match.port == port)
                                             and (not r.match.gateways or key in r.match.gateways)]
            out.extend((host, routes) for host in admitted)
    return out


def _update_port(view: _PortView, http_routes: tuple[ir.HttpRoutes, ...], port: int) -> None:
    """Bring ``view`` up to date with ``http_routes``: only hosts whose contributors changed are merged.

    The route objects that changed are the span :func:`~translators.by_identity.changed_span` gives (told by
    the engine, else found at C speed); the merged hosts tuple is patched over the span of hosts affected,
    and that span is noted for the builders downstream."""
    if view.last is http_routes:
        return
    old, view.last = view.last, http_routes
    if view.primed:
        start, old_end, new_end = changed_span(old, http_routes)
        current = {id(hr): hr for hr in http_routes[start:new_end]}
        added = [k for k in current if k not in view.contrib]
        gone = [id(hr) for hr in old[start:old_end] if id(hr) in view.contrib and id(hr) not in current]
        if old_end - start == new_end - start and view.position is not None:
            for hr in old[start:old_end]:
                view.position.pop(id(hr), None)
            view.position.update(zip(map(id, http_routes[start:new_end]), range(start, new_end)))
        else:
            view.position = None  # positions shifted: rebuilt when a host with several contributors needs them
    else:
        current = dict(zip(map(id, http_routes), http_routes))
        added = list(current)
        gone = []
        view.primed = True
    if not added and not gone:
        return
    affected: set[str] = set()
    for k in gone:
        hr, contrib = view.contrib.pop(k)
        for host, _ in contrib:
            affected.add(host)
            _discard(view.host_hrs, host, k)
        for host in hr.hosts:
            _discard(view.vs_hosts, host.lower(), k)
    for k in added:
        hr = current[k]
        contrib = _contributions(hr, view.bindings, port)
        view.contrib[k] = (hr, contrib)
        for host, _ in contrib:
            affected.add(host)
            _add(view.host_hrs, host, k)
        for host in hr.hosts:
            _add(view.vs_hosts, host.lower(), k)
    _merge_hosts(view, affected, http_routes, port)


def _add(index: dict[str, frozenset[int]], key: str, k: int) -> None:
    index[key] = index.get(key, frozenset()) | {k}


def _discard(index: dict[str, frozenset[int]], key: str, k: int) -> None:
    had = index.get(key)
    if had is not None and k in had:
        left = had - {k}
        if left:
            index[key] = left
        else:
            del index[key]


def _merge_hosts(view: _PortView, affected: set[str], http_routes: tuple[ir.HttpRoutes, ...], port: int) -> None:
    """Merge the ``affected`` hosts again from their contributors, and patch the hosts tuple over their span."""
    if not affected:
        return
    before = view.tuple
    membership = False
    for host in affected:
        bucket: list[ir.Route] = []
        contributors = view.host_hrs.get(host, ())
        if len(contributors) > 1:
            if view.position is None:
                view.position = dict(zip(map(id, http_routes), range(len(http_routes))))
            contributors = sorted(contributors, key=view.position.__getitem__)
        for k in contributors:
            for h, routes in view.contrib[k][1]:
                if h == host:
                    bucket.extend(r for r in routes if r not in bucket)
        had = host in view.vhosts
        for flag, hosts in ((any(r.cors is not None for r in bucket), view.cors_hosts),
                            (any(r.fault is not None for r in bucket), view.fault_hosts)):
            if flag:
                hosts.add(host)
            else:
                hosts.discard(host)
        if any(r.precedence is not None for r in bucket):  # Gateway API: the spec's order across routes
            bucket.sort(key=lambda r: (r.precedence is None, r.precedence or ()))
        if bucket:
            view.buckets[host] = bucket
            view.vhosts[host] = ir.VirtualHost(name=f"{host}:{port}", domains=(host,), routes=tuple(bucket),
                                               require_tls=view.redirects(host))
            if not had:
                bisect.insort(view.hosts, host)
                membership = True
        else:
            view.buckets.pop(host, None)
            view.host_hrs.pop(host, None)
            if had:
                del view.vhosts[host]
                view.hosts.pop(bisect.bisect_left(view.hosts, host))
                membership = True
    # the hosts before the first affected one and after the last are the same, in the same places
    hosts = view.hosts
    first = bisect.bisect_left(hosts, min(affected))
    tail = len(hosts) - bisect.bisect_right(hosts, max(affected))
    if len(before) - tail < first or (not membership and len(before) != len(hosts)):
        view.tuple = tuple(map(view.vhosts.__getitem__, hosts))  # (a view that was not in step: rebuilt)
    else:
        view.tuple = before[:first] + tuple(map(view.vhosts.__getitem__, hosts[first:len(hosts) - tail])) + \
            before[len(before) - tail:]
        note_span(before, view.tuple, (first, len(before) - tail, len(hosts) - tail))
    view.cors = bool(view.cors_hosts)


def _rebased(old: _PortView, servers: list[tuple[ir.Gateway, ir.GatewayServer]], port: int) -> _PortView:
    """A view for a port whose servers changed (a Gateway edit), made from the view the same node had before.

    The contributions that can differ are computed again for the new servers: none when only a TLS setting
    changed; when only server hosts came or went, those of the VirtualServices with a host one of them
    intersects (:func:`_touched`); else all.  Only the hosts whose contributions (or https redirect) differ
    are merged again; the others keep their very virtual host objects, so the builders downstream do no work
    for them.  ``old`` is left as it was (its dicts are copied; their values are immutable)."""
    view = _PortView(servers)
    if not old.primed:
        return view
    view.last, view.primed = old.last, True
    view.position = dict(old.position) if old.position is not None else None
    view.contrib, view.host_hrs, view.vs_hosts = dict(old.contrib), dict(old.host_hrs), dict(old.vs_hosts)
    view.buckets, view.vhosts, view.hosts = dict(old.buckets), dict(old.vhosts), list(old.hosts)
    view.cors_hosts, view.fault_hosts, view.tuple = set(old.cors_hosts), set(old.fault_hosts), old.tuple
    affected: set[str] = set()
    delta = _host_delta(old.bindings, view.bindings)
    touched = _touched(old, delta) if delta is not None else None
    for k in touched if touched is not None else old.contrib:
        hr, was = old.contrib[k]
        now = _contributions(hr, view.bindings, port)
        if now == was:
            continue
        view.contrib[k] = (hr, now)
        was_hosts, now_hosts = {h for h, _ in was}, {h for h, _ in now}
        affected |= was_hosts | now_hosts
        for host in was_hosts - now_hosts:
            _discard(view.host_hrs, host, k)
        for host in now_hosts - was_hosts:
            _add(view.host_hrs, host, k)
    if old.redirect or view.redirect:  # which hosts are redirected to https may have changed
        affected.update(h for h in old.hosts if old.redirects(h) != view.redirects(h))
    _merge_hosts(view, affected, view.last, port)
    view.cors = bool(view.cors_hosts)
    return view


def _host_delta(old: tuple, new: tuple) -> set[tuple[str, str]] | None:
    """The ``(namespace, host)`` pairs the port's servers gained or lost, when nothing else about them changed
    (the same gateways bound by the same names, the hosts they kept in the same order); else None."""
    if len(old) != len(new):
        return None
    delta: set[tuple[str, str]] = set()
    for a, b in zip(old, new):
        if a[1:3] != b[1:3]:
            return None
        if a[3] != b[3]:
            had, has = set(a[3]), set(b[3])
            if [h for h in a[3] if h in has] != [h for h in b[3] if h in had]:
                return None  # reordered: a VirtualService host's admitted hosts could come in another order
            delta |= had ^ has
    return delta


def _touched(view: _PortView, delta: set[tuple[str, str]]) -> set[int] | None:
    """The route objects with a host that one of the ``delta`` server hosts intersects: the only ones whose
    contributions a gain or loss of those server hosts can change.  None: all of them (``*``)."""
    out: set[int] = set()
    wild = None
    for _, host in delta:
        if host == "*":
            return None
        if host.startswith("*"):  # a wildcard server host: every VirtualService host it may intersect
            for vs_host, ks in view.vs_hosts.items():
                if intersect(host, vs_host) is not None:
                    out |= ks
            continue
        out |= view.vs_hosts.get(host, frozenset())
        if wild is None:
            wild = [(h, ks) for h, ks in view.vs_hosts.items() if h.startswith("*")]
        for vs_host, ks in wild:
            if intersect(host, vs_host) is not None:
                out |= ks
    return out


def gateway_listeners(model: ir.Model, *, labels: dict[str, str], namespace: str,
                      memo: dict | None = None) -> list[ir.HttpListener]:
    """The HTTP listeners of a node.  With ``memo`` (kept by the caller across models), the merged virtual
    hosts of each selection and port are updated from the VirtualServices that changed, not rebuilt."""
    selected = [g for g in model.gateways if g.selects(labels, namespace)]
    key = tuple(id(g) for g in selected)
    views = memo.get(key) if memo is not None else None
    node_key = ("node", tuple(sorted(labels.items())), namespace)
    if views is None or any(a is not b for a, b in zip(views[0], selected)):
        by_port: dict[tuple[int, str], list[tuple[ir.Gateway, ir.GatewayServer]]] = defaultdict(list)
        for g in selected:
            for s in g.servers:
                if not s.passthrough:
                    by_port[(s.port, s.bind)].append((g, s))
        # the views this node had before the gateways changed: the ports that remain are rebased from them
        before = memo.get(node_key) if memo is not None else None
        old_ports = before[1] if before is not None else {}
        views = (tuple(selected), {pb: _rebased(old_ports[pb], servers, pb[0]) if pb in old_ports
                                   else _PortView(servers) for pb, servers in sorted(by_port.items())})
        if memo is not None:
            if len(memo) > 256:
                memo.clear()
            memo[key] = views
    if memo is not None:
        memo[node_key] = views
    listeners = []
    for (port, bind), view in views[1].items():
        _update_port(view, model.http_routes, port)
        servers = view.servers
        vhosts = view.tuple
        protocols = frozenset(s.protocol for _, s in servers)
        cors = view.cors
        listeners.append(ir.HttpListener(
            name=ir.gateway_listener_name(port, bind), port=port, route_config=ir.gateway_route_name(port, bind),
            protocols=protocols, virtual_hosts=vhosts, cors=cors,
            grpc_web="GRPC-WEB" in protocols or cors or any(f.selects(labels, namespace) for f in model.grpc_web),
            tls_chains=_tls_chains(servers), https_redirect=view.redirect, address=bind or ir.DEFAULT_BIND,
            fault=bool(view.fault_hosts), keep_port=all(g.gateway_api for g, _ in servers),
            grpc_stats_all=any(s.grpc_stats_all for _, s in servers),
            grpc_stats_methods=_grpc_methods(servers),
            access_log=model.access_log(labels, namespace)))
    return listeners


def _grpc_methods(servers) -> tuple[tuple[str, tuple[str, ...]], ...]:  # noqa: ANN001
    """The gRPC methods a server lists (Emissary Module ``grpc_stats.services``) get per-method stats.
    Never derived from routes: the listener would change, and drain every connection, on a route edit."""
    methods: dict[str, set[str]] = {}
    for _, s in servers:
        for service, names in s.grpc_stats_methods:
            methods.setdefault(service, set()).update(names)
    return tuple((s, tuple(sorted(m))) for s, m in sorted(methods.items()))


def _tls_chains(servers: list[tuple[ir.Gateway, ir.GatewayServer]]) -> tuple[ir.TlsChain, ...]:
    """One filter chain per TLS server, matched by SNI; ``*`` means no SNI restriction."""
    chains: dict[tuple[str, ...], ir.TlsChain] = {}
    for g, s in servers:
        if s.tls is None:
            continue
        names = tuple(sorted({h for _, h in s.hosts if h != "*"})) if all(h != "*" for _, h in s.hosts) else ()
        chains.setdefault(names, ir.TlsChain(server_names=names, tls=s.tls, namespace=g.ref.namespace))
    return tuple(chains.values())


def passthrough_listeners(model: ir.Model, *, labels: dict[str, str], namespace: str) -> list[ir.TcpListener]:
    """PASSTHROUGH ports: VirtualService ``tls[]`` routes by SNI, in order; ``*`` matches any SNI."""
    by_port: dict[tuple[int, str], list[ir.Gateway]] = defaultdict(list)
    for g in model.gateways:
        if g.selects(labels, namespace):
            for s in g.servers:
                if s.passthrough and g not in by_port[(s.port, s.bind)]:
                    by_port[(s.port, s.bind)].append(g)
    out = []
    for port, bind in sorted(by_port):
        keys = {g.key for g in by_port[(port, bind)]}
        chains: dict[tuple[str, ...], tuple[ir.WeightedCluster, ...]] = {}
        for hr in model.http_routes:
            if not keys & set(hr.gateways):
                continue
            for tr in hr.tls_routes:
                if tr.port not in (None, port) or (tr.gateways and not keys & set(tr.gateways)):
                    continue
                names = () if "*" in tr.sni_hosts else tuple(sorted(tr.sni_hosts))
                chains.setdefault(names, tr.clusters)
        if chains:
            # the catch-all chain (no SNI) goes last so specific names win
            ordered = sorted(chains.items(), key=lambda kv: (not kv[0], kv[0]))
            out.append(ir.TcpListener(name=ir.gateway_listener_name(port, bind), port=port, chains=tuple(ordered),
                                      address=bind or ir.DEFAULT_BIND))
    return out
