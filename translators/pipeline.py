"""Objects in, xDS messages out.

:func:`translate` runs the dialects once per config version and returns a
:class:`Translation`.  Cluster and endpoint messages do not depend on the
node, so they are built once and shared.  Listener and route messages depend
only on *which gateways select the node*, so they are memoized by that set:
nodes with different labels but the same gateways share the same messages.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Mapping

from google.protobuf.message import Message

from translators import persistent, proxyless_view, type_urls
from translators.builders.clusters import build_cluster, build_proxyless_cluster
from translators.builders.endpoints import prebuilt_load_assignment
from translators.builders.listeners import (build_api_listener, build_gateway_listener, build_inbound_listener,
                                            build_tcp_listener, build_unroutable_api_listener)
from translators.builders.routes import VhostCache, assemble_route_configuration, assemble_vhds, routes_part, \
    build_route_configuration, uses_fault
from translators.builders.secrets import SecretStore
from translators.diagnostics import Diagnostic, Severity
from translators.gateway_view import gateway_listeners, passthrough_listeners
from translators import ir
from translators.ir import cluster_name
from translators.gateway_api import DEFAULT_GATEWAY_CLASS
from translators.engine import ParseMemo, compile_config
from translators.hosts import Registry, intersect
from translators.node import ENVOY, GRPC, NodeInfo
from translators.objects import ConfigObject, ObjectRef

Resources = dict[str, dict[str, Message]]

#: proxyless names remembered per translation, and client-name diagnostics kept
RESOLVED_LIMIT = 50_000
REQUESTED_LIMIT = 100


@dataclass(slots=True)
class Translation:
    model: ir.Model
    diagnostics: list[Diagnostic]
    accepted: dict[ObjectRef, ConfigObject]
    _shared: dict[str, Resources] = field(default_factory=dict)
    _by_gateways: dict[tuple[str, ...], Resources] = field(default_factory=dict)
    #: proxyless names resolved so far; bounded (least recently used first out), since clients choose the names
    _resolved: OrderedDict[tuple[str, str, str], Message | None] = field(default_factory=OrderedDict)
    #: problems with names clients asked for (not objects): bounded, newest last
    requested: OrderedDict[str, Diagnostic] = field(default_factory=OrderedDict, repr=False)
    _registry: Registry | None = None
    #: incremental state handed to the next translation
    memo: ParseMemo = field(default_factory=dict, repr=False)
    #: built cluster messages by (flavour, name), handed from translation to translation and patched
    built: dict[tuple[str, str], tuple[Message, Message | None, ir.Cluster]] = field(default_factory=dict, repr=False)
    #: clusters changed since the previous translation (None: unknown, build all); and the CDS/EDS names
    #: each flavour's shared dicts changed by (None: built from scratch)
    cluster_changes: dict | None = field(default=None, repr=False)
    shared_changes: dict[str, frozenset[str] | None] = field(default_factory=dict, repr=False)
    #: the previous translation's shared dicts: what ``shared`` patches, and what ``shared_changes`` is
    #: relative to
    shared_base: dict[str, Resources] = field(default_factory=dict, repr=False)
    #: the previous translation's LDS/RDS/SDS per selection key, reused while its inputs are the same objects
    _previous_own: dict[tuple[str, ...], tuple[tuple, Resources]] = field(default_factory=dict, repr=False)
    _fingerprint: tuple | None = None
    #: the clusters with TLS origination (their credentials are SDS resources a node gets)
    _tls_clusters: tuple | None = None
    #: serialized gateway virtual hosts, reused by the next translation while their routes are the same objects
    vhosts: VhostCache = field(default_factory=dict, repr=False)
    #: merged virtual hosts per gateway selection, updated in place from one model to the next
    views: dict = field(default_factory=dict, repr=False)
    _previous_vhosts: VhostCache = field(default_factory=dict, repr=False)
    statuses: dict[ObjectRef, dict] = field(default_factory=dict, repr=False)
    #: id(dict) -> (that dict, the dict it was patched from, the names that differ): per-node dicts built by
    #: patching the previous translation's (VHDS hosts), so the cache wraps and streams diff only those
    patched: dict[int, tuple[dict, dict, frozenset[str]]] = field(default_factory=dict, repr=False)

    def sources(self, type_url: str, name: str, *, node: NodeInfo | None = None) -> list[tuple[str, ObjectRef]]:
        """The config objects one resource was built from, as ``(file, ref)``: what a NACK of it traces
        back to.  Computed on demand (a NACK is rare): a cluster's Service/ServiceEntry and
        DestinationRule (or the Emissary Mappings that asked for it), a listener's gateways, a route
        configuration's routes, a secret's Secrets."""
        state = self.memo.get("engine")
        objects = state.objects if state is not None else {}
        refs: list[ObjectRef] = []
        m = self.model
        if type_url in (type_urls.CLUSTER, type_urls.ENDPOINT):
            c = next((c for c in m.clusters if c.name == name), None)
            if c is not None:
                svc = next((s for s in m.services if s.host == c.host), None)
                if svc is not None and svc.source is not None:
                    refs.append(svc.source)
                dr = state.policies.get(c.host) if state is not None else None
                if dr is not None:
                    refs.append(dr.ref)
                for hr in m.http_routes:
                    if any(wc.cluster == name for r in hr.routes for wc in r.clusters):
                        refs.extend(r.source for r in hr.routes if r.source is not None
                                    and any(wc.cluster == name for wc in r.clusters))
        elif type_url in (type_urls.LISTENER, type_urls.ROUTE, type_urls.VIRTUAL_HOST):
            host = None
            if type_url == type_urls.VIRTUAL_HOST:  # ROUTE_CONFIG/HOST:PORT: that host's routes only
                host = name.rpartition("/")[2].rsplit(":", 1)[0].lower()
                name = type_urls.namespace_of(name)
            port = name.rsplit("_", 1)[-1] if type_url == type_urls.LISTENER else name.split(".")[1] \
                if name.startswith("http.") else ""
            gws = [g for g in m.gateways if any(str(s.port) == port for s in g.servers)
                   and (node is None or g.selects(node.label_map, node.namespace))]
            refs.extend(g.ref for g in gws if g.ref.name and g.ref.namespace)
            if type_url != type_urls.LISTENER:
                keys = {g.key for g in gws}
                for hr in m.http_routes:
                    if any(k in keys or k.split("|")[0] in keys for k in hr.gateways) and \
                            (host is None or any(intersect(h.lower(), host) for h in hr.hosts)):
                        refs.append(hr.ref)
        elif type_url == type_urls.SECRET and name.startswith("kubernetes://"):
            base = name[len("kubernetes://"):].removesuffix("-cacert")
            refs.extend(s_ref for s_ref, o in objects.items() if s_ref.kind == "Secret"
                        and s_ref.name in (base, f"{base}-cacert")
                        and (node is None or s_ref.namespace == node.namespace))
        seen: dict[ObjectRef, str] = {}
        for r in refs:
            if r not in seen:
                o = objects.get(r)
                seen[r] = o.source if o is not None else ""
        return [(f, r) for r, f in seen.items()]

    def selection_key(self, node: NodeInfo) -> tuple[str, ...]:
        """Nodes with equal keys get equal LDS/RDS/SDS: flavour, namespace (secrets) and selected gateways."""
        if node.flavour == GRPC:
            return (node.flavour, node.namespace)
        labels = node.label_map
        key = (node.flavour, node.namespace) + tuple(g.key for g in self.model.gateways if g.selects(labels, node.namespace))
        if any(f.selects(labels, node.namespace) for f in self.model.grpc_web):
            key += ("grpc-web",)  # a gRPC-Web EnvoyFilter selects the node: its listeners get the filter
        if self.model.access_logs and self.model.access_log(labels, node.namespace):
            key += ("access-log",)
        if node.vhds:
            key += ("vhds",)
        return key

    def shared(self, flavour: str) -> Resources:
        """CDS and EDS: the same for every node of a flavour, built once per translation -- and, after the
        previous translation, patched: only the clusters the compile step reports changed are rebuilt, and
        with no change the very same dicts are returned (so their serialized wrappers are reused too)."""
        out = self._shared.get(flavour)
        if out is not None:
            return out
        build = build_cluster if flavour == ENVOY else build_proxyless_cluster
        prev = self.shared_base.get(flavour)
        changes = self.cluster_changes
        if prev is not None and changes is not None:
            if not changes:
                out = self._shared[flavour] = prev
                self.shared_changes[flavour] = frozenset()
                return out
            # persistent maps (translators/persistent.py): the previous tables stay as they were for the
            # snapshots still using them, and the patch costs the changed entries, not a copy of 30,000
            put_c: list[tuple[str, Message]] = []
            put_e: list[tuple[str, Message]] = []
            drop_c: list[str] = []
            drop_e: list[str] = []
            for name, c in changes.items():
                self.built.pop((flavour, name), None)
                if c is None:
                    drop_c.append(name)
                    drop_e.append(name)
                    continue
                pair = (build(c), prebuilt_load_assignment(c) if c.discovery == "EDS" else None, c)
                self.built[(flavour, name)] = pair
                put_c.append((name, pair[0]))
                if pair[1] is not None:
                    put_e.append((name, pair[1]))
                else:
                    drop_e.append(name)
            clusters = persistent.patched(prev[type_urls.CLUSTER], put=put_c, drop=drop_c)
            endpoints = persistent.patched(prev[type_urls.ENDPOINT], put=put_e, drop=drop_e)
            self.shared_changes[flavour] = frozenset(changes)
        else:
            clusters = {}
            endpoints = {}
            before, self.built = self.built, {k: v for k, v in self.built.items() if k[0] != flavour}
            for c in self.model.clusters:
                key = (flavour, c.name)
                pair = before.get(key)
                if pair is None or pair[2] is not c:  # the same IR object reuses its messages (and their bytes)
                    pair = (build(c), prebuilt_load_assignment(c) if c.discovery == "EDS" else None, c)
                self.built[key] = pair
                clusters[c.name] = pair[0]
                if pair[1] is not None:
                    endpoints[c.name] = pair[1]
            self.shared_changes[flavour] = None
            clusters, endpoints = persistent.frozen(clusters), persistent.frozen(endpoints)
        out = self._shared[flavour] = {type_urls.CLUSTER: clusters, type_urls.ENDPOINT: endpoints}
        return out

    def for_node(self, node: NodeInfo) -> Resources:
        """The resources ``node`` gets by enumeration: shared CDS/EDS plus its gateways' LDS/RDS.

        Proxyless nodes name what they want; see :meth:`resolve`.
        """
        key = self.selection_key(node)
        own = self._by_gateways.get(key)
        if own is None:
            prev = self._previous_own.get(key)
            if prev is not None and prev[0] == self.fingerprint():
                own = prev[1]  # EDS fast path: nothing listeners or routes depend on changed
                if not self.vhosts:
                    self.vhosts.update(self._previous_vhosts)  # still valid for the next translation
            else:
                own = self._build_own(node)
            self._by_gateways[key] = own
        return {**self.shared(node.flavour), **own}

    @property
    def tls_clusters(self) -> tuple:
        """The clusters with TLS origination: carried over from the previous translation while no such
        cluster changed, so finding them is not a scan of every cluster."""
        if self._tls_clusters is None:
            self._tls_clusters = tuple(c for c in self.model.clusters if c.policy.tls is not None)
        return self._tls_clusters

    def fingerprint(self) -> tuple:
        """Identity of everything LDS/RDS/SDS depend on (IR objects are reused while unchanged)."""
        if self._fingerprint is None:
            m = self.model
            # the tuples themselves (compared item by item, identity first, at C speed; they also keep the
            # objects alive, so an id here is never a reused one)
            self._fingerprint = (m.gateways, id(m.http_routes), m.http_routes, m.secrets, self.tls_clusters,
                                 m.grpc_web, m.access_logs)
        return self._fingerprint

    def warm_steps(self, node: NodeInfo, *, step: int = 500) -> Iterator[None]:
        """Serialize the routes of ``node``'s virtual hosts ahead of its class's first snapshot (which then
        joins their bytes), yielding after every ``step`` hosts: the bulk of a new gateway class's own work
        at scale, run in slices by the cache with the event loop serving others between them.  Nothing for
        a class whose resources are built already, nor for proxyless nodes (they name what they want)."""
        if node.flavour != ENVOY or self.selection_key(node) in self._by_gateways:
            return
        n = 0
        for l in gateway_listeners(self.model, labels=node.label_map, namespace=node.namespace, memo=self.views):
            for v in l.virtual_hosts:
                routes_part(v.routes, l.grpc_web, self.vhosts)
                n += 1
                if n % step == 0:
                    yield

    def _build_own(self, node: NodeInfo) -> Resources:
        listeners: dict[str, Message] = {}
        routes: dict[str, Message] = {}
        secrets: dict[str, Message] = {}
        hosts: list[tuple] = []  # VHDS: (route configuration, hosts, changed, base) per route configuration
        if node.flavour == ENVOY:
            store = SecretStore(self.model.secrets, namespace=node.namespace)
            routed: set[str] = set()  # the clusters this node's routes send to: only their client keys go to it
            for l in gateway_listeners(self.model, labels=node.label_map, namespace=node.namespace, memo=self.views):
                if self.tls_clusters:
                    for vh in l.virtual_hosts:
                        for r in vh.routes:
                            routed.update(c.cluster for c in r.clusters)
                            if r.mirror_cluster:
                                routed.add(r.mirror_cluster)
                if l.tls_chains:
                    chains = tuple(c for c in l.tls_chains if store.add_server_credential(c.tls))
                    if not chains:
                        continue  # no credential found: the port is not served (a warning says why)
                    l = replace(l, tls_chains=chains)
                key = ("listener", l.name, l.port, l.address, l.route_config, l.grpc_web, l.cors, l.tls_chains,
                       l.https_redirect, l.protocols, l.keep_port, l.grpc_stats_all, l.grpc_stats_methods,
                       l.access_log, id(l.virtual_hosts))
                hit = self.vhosts.get(key) or self._previous_vhosts.get(key)
                if hit is None or hit[0] is not l.virtual_hosts:
                    hit = (l.virtual_hosts, build_gateway_listener(l))
                self.vhosts[key] = hit  # the same listener IR (and virtual hosts): the same message and bytes
                listeners[l.name] = hit[1]
                if node.vhds:
                    routes[l.route_config], vh, changed, base = assemble_vhds(
                        l.route_config, l.virtual_hosts, grpc_web=l.grpc_web, previous=self._previous_vhosts,
                        current=self.vhosts, keep_port=l.keep_port)
                    hosts.append((l.route_config, vh, changed, base))
                else:
                    routes[l.route_config] = assemble_route_configuration(
                        l.route_config, l.virtual_hosts, grpc_web=l.grpc_web, previous=self._previous_vhosts,
                        current=self.vhosts, keep_port=l.keep_port)
            for t in passthrough_listeners(self.model, labels=node.label_map, namespace=node.namespace):
                if t.name in listeners:
                    continue  # a port is HTTP or PASSTHROUGH, not both; the HTTP listener wins
                listeners[t.name] = build_tcp_listener(t)
                routed.update(c.cluster for _, cs in t.chains for c in cs)
            for c in self.tls_clusters:
                tls = c.policy.tls
                if not (tls.credential_name or tls.ca_credential):
                    continue
                if c.name in routed:
                    store.add_upstream_credential(tls)
                else:
                    store.add_upstream_ca(tls)  # CA bundles are public; the client key is not
            secrets = store.resources
        out = {type_urls.LISTENER: listeners, type_urls.ROUTE: routes, type_urls.SECRET: secrets}
        if node.vhds:
            out[type_urls.VIRTUAL_HOST] = self._vhds_union(hosts)
        return out

    def _vhds_union(self, parts: list[tuple]) -> dict[str, Message]:
        """One node's VHDS resources: its route configurations' hosts (names are prefixed by their route
        configuration, so they never collide).  With one route configuration, its own dict; with several
        (HTTP and HTTPS), the previous union patched by each part's changes.  Either way the cache learns
        which names changed (``patched``), so it wraps and streams diff only those."""
        if len(parts) == 1:
            _, vh, changed, base = parts[0]
            if changed and base is not None:
                self.patched[id(vh)] = (vh, base, changed)
            return vh
        key = ("vhds-union", tuple(rc_name for rc_name, _, _, _ in parts))
        dicts = tuple(vh for _, vh, _, _ in parts)
        prev = self.vhosts.get(key) or self._previous_vhosts.get(key)
        if prev is not None and len(prev[0]) == len(dicts) and all(
                vh is old or (base is old and changed is not None) for (_, vh, changed, base), old in zip(parts, prev[0])):
            names = frozenset().union(*(c for (_, vh, c, _), old in zip(parts, prev[0]) if vh is not old))
            if not names:
                out = prev[1]
            else:
                put, drop = [], []
                for _, vh, changed, _ in parts:
                    for name in changed or ():
                        if name in vh:
                            put.append((name, vh[name]))
                        else:
                            drop.append(name)
                out = persistent.patched(prev[1], put=put, drop=drop)
                self.patched[id(out)] = (out, prev[1], names)
        else:
            union: dict[str, Message] = {}
            for vh in dicts:
                union.update(vh)
            out = persistent.frozen(union)
        self.vhosts[key] = (dicts, out)
        return out

    def resolve(self, node: NodeInfo, type_url: str, name: str) -> Message | None:
        """A named LDS/RDS resource for a proxyless node (None: it does not exist)."""
        if node.flavour != GRPC or type_url not in (type_urls.LISTENER, type_urls.ROUTE):
            return None
        key = (node.namespace, type_url, name)
        if key in self._resolved:
            self._resolved.move_to_end(key)
            return self._resolved[key]
        found = self._resolved[key] = self._resolve(node, type_url, name)
        if len(self._resolved) > RESOLVED_LIMIT:
            self._resolved.popitem(last=False)
        return found

    def _note_request(self, name: str, message: str) -> None:
        self.requested[name] = Diagnostic(Severity.WARNING, "requested-name", f"a proxyless client asked for "
                                          f"{name!r}: {message}", "<xds request>", None, "")
        self.requested.move_to_end(name)
        while len(self.requested) > REQUESTED_LIMIT:
            self.requested.popitem(last=False)

    def _resolve(self, node: NodeInfo, type_url: str, name: str) -> Message | None:
        if self._registry is None:
            self._registry = Registry(self.model.services)
        if type_url == type_urls.ROUTE:
            found = proxyless_view.route_config(self.model, name)
            return build_route_configuration(found[0], found[1], proxyless=True) if found else None
        if name.startswith(proxyless_view.INBOUND_PREFIX):
            hp = proxyless_view.split_host_port(name[len(proxyless_view.INBOUND_PREFIX):])
            return build_inbound_listener(name=name, address=hp[0], port=hp[1]) if hp else None
        hp = proxyless_view.split_host_port(name)
        if hp is None:
            # ``xds:///greeter`` without a port: a service with exactly one port is served on that port;
            # otherwise the client fails fast (UNAVAILABLE) and a diagnostic names the ports that exist
            bare = proxyless_view.canonical_host(self._registry, name, namespace=node.namespace)
            svc = self._registry.get(bare)
            if svc is not None and len(svc.ports) == 1:
                hp = (name, svc.ports[0].number)
            else:
                ports = ", ".join(str(p.number) for p in svc.ports) if svc is not None else ""
                self._note_request(name, f"{bare} has ports {ports}; dial xds:///{name}:PORT" if svc is not None
                                   else f"no service {bare} exists, and the name has no port")
                return build_unroutable_api_listener(name=name)
        host = proxyless_view.canonical_host(self._registry, hp[0], namespace=node.namespace)
        svc = self._registry.get(host)
        if svc is not None and svc.port(hp[1]) is None:
            return None  # a declared service without that port
        if svc is None and not proxyless_view.mesh_routes(self.model, host=host, port=hp[1])[1]:
            return None  # neither a service nor a VirtualService host
        route_name = cluster_name(port=hp[1], host=host)
        found = proxyless_view.route_config(self.model, route_name)
        return build_api_listener(name=name, route_config=route_name, fault=bool(found and uses_fault(found[1])))


def translate(objects: Iterable[ConfigObject], *, accepted: Mapping[ObjectRef, ConfigObject] | None = None,
              previous: Translation | None = None, gateway_class: str = DEFAULT_GATEWAY_CLASS,
              ambassador_ids: tuple[str, ...] = ("default",), gateway_addresses: tuple[str, ...] = ()) -> Translation:
    """Translate ``objects``; with ``previous``, unchanged objects and clusters are not rebuilt."""
    compiled = compile_config(objects, accepted=accepted, memo=previous.memo if previous else None,
                             gateway_class=gateway_class, ambassador_ids=ambassador_ids,
                             gateway_addresses=gateway_addresses)
    translation = Translation(model=compiled.model, diagnostics=compiled.diagnostics, accepted=compiled.accepted,
                              statuses=compiled.statuses,
                              memo=compiled.memo, built=previous.built if previous else {},
                              cluster_changes=compiled.cluster_changes if previous else None,
                              shared_base=previous._shared if previous else {},
                              _previous_vhosts=previous.vhosts if previous else {},
                              views=compiled.memo["engine"].views if "engine" in compiled.memo else {},
                              _previous_own={k: (previous.fingerprint(), v) for k, v in previous._by_gateways.items()}
                              if previous else {})
    translation.shared(ENVOY)
    if previous is not None and GRPC in previous._shared:
        translation.shared(GRPC)
    changes = compiled.cluster_changes
    if previous is not None and changes is not None and not any(
            c is not None and c.policy.tls is not None for c in changes.values()) and \
            not any(c.name in changes for c in previous.tls_clusters):
        translation._tls_clusters = previous.tls_clusters  # no cluster with TLS came, changed or went away
    return translation
