"""The compile step, incremental by construction: a change costs what it changes.

:func:`compile_objects` keeps an :class:`EngineState` from one translation to
the next.  It finds the objects that changed (by key; an unchanged object is
the very same Python object, as sources keep them) and propagates the change
through a dependency index instead of walking every object:

* a changed ServiceEntry, Service or EndpointSlice re-parses itself (a slice
  re-parses its Service) and marks the **hosts** it provides; the registry
  re-elects a winner only for those;
* a changed DestinationRule re-parses itself and marks its host; those whose
  written host resolves differently after a host appeared or vanished are
  re-resolved;
* a VirtualService is re-parsed when it changed, or when a host it looked up
  (found or not) changed shape: its ports, whether they speak h2, its
  DestinationRule (:class:`~translators.istio.destinations.Destinations`
  records the lookups).  An endpoint change re-parses no VirtualService;
* clusters are rebuilt per marked host, with the checks that concern one host
  (duplicate DestinationRules, outlier ejection, upstream credentials);
* placeholder clusters (routes to undeclared hosts) follow reference counts
  over the routes that name them.

The first translation is the same code with every object changed: there is
one path, and ``tests/test_incremental_equivalence.py`` checks that any
sequence of edits gives exactly what a build from scratch gives.

Inputs that are few (Gateways and Secrets, Gateway API objects, EnvoyFilters)
are re-checked as a whole when one of them changes.

A state belongs to the translation that produced it: it is updated in place,
and a translation that is not the latest one (or one whose compile failed
half-way) starts from scratch (:attr:`EngineState.token`).
"""
from __future__ import annotations

import bisect
import itertools
import operator
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from translators import diagnostics, dialects, known_fields, route_analysis
from translators.by_identity import changed_positions, changed_span, note_span, noted_delta
from translators.diagnostics import Diagnostic, Reporter, Severity
from translators.emissary import DEFAULT_AMBASSADOR_ID
from translators.emissary import dialect as emissary
from translators.emissary.resources import (parse_host, parse_listener, parse_mapping, parse_module,
                                            parse_tls_context)
from translators.envoy_gateway.policy import BackendPolicy, parse_backend_traffic_policy
from translators.gateway_api import DEFAULT_GATEWAY_CLASS
from translators.gateway_api import backend_tls
from translators.gateway_api.backend_tls import parse_backend_tls_policy, valid_ca_bundle
from translators.gateway_api.dialect import KINDS as GATEWAY_API_KINDS
from translators.gateway_api.dialect import compile_gateway_api
from translators.hosts import Registry
from translators.ir import (BLACKHOLE_CLUSTER, DOMAIN_SUFFIX, GATEWAY_NAME_LABEL, Cluster, Gateway, HttpRoutes, Model,
                            Service, TrafficPolicy, cluster_host, cluster_name)
from translators.istio import checks as istio_checks
from translators.istio import envoy_filter
from translators.istio.destination_rule import DestinationPolicy, parse_destination_rule
from translators.istio.destinations import Destinations
from translators.istio.gateway import parse_gateway
from translators.istio.service_entry import parse_service_entry
from translators.istio.telemetry import parse_telemetry
from translators.istio.virtual_service import parse_virtual_service
from translators.kubernetes.secret import parse_secret
from translators.kubernetes.service import SERVICE_NAME_LABEL, parse_kubernetes_service
from translators.objects import ConfigObject, ObjectRef

#: buckets: which stage compiles an object
SE, SVC, SLICE, DR, VS, GW, SECRET, FILTER, IGNORED = ("ServiceEntry", "Service", "EndpointSlice", "DestinationRule",
                                                        "VirtualService", "Gateway", "Secret", "EnvoyFilter", "ignored")
GWAPI = "gwapi:"
EMISSARY = "emissary:"
_EMISSARY_PARSERS = {"Mapping": parse_mapping, "Host": parse_host, "TLSContext": parse_tls_context,
                     "Module": parse_module, "Listener": parse_listener}
_RANK = {SE: 0, SVC: 1}  # ServiceEntries are registered before Kubernetes Services
_tokens = itertools.count(1)
#: the cluster refused Gateway API backends point at; one object, so it never looks changed
BLACKHOLE = Cluster(BLACKHOLE_CLUSTER, "blackhole", 0, "", True, TrafficPolicy(), "EDS", ())


#: more objects changed, or hosts rebuilt, than this (a full build): the sorted lists of objects and of
#: clusters are sorted once afterwards instead of kept sorted by insertion (each insert moves the list's tail,
#: quadratic over a build: ~0.4 s for 30,000 clusters)
_RESORT = 512


def _sort_key(ref: ObjectRef) -> tuple[str, str, str, str]:
    return (ref.namespace, ref.name, ref.kind, ref.group)


@dataclass(slots=True)
class Entry:
    """One object's compile outcome."""

    obj: ConfigObject
    result: Any = None
    #: its own diagnostics (unknown fields, kind or apiVersion), then its parse's
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: its own diagnostics alone, for a re-parse of the same object
    own: list[Diagnostic] = field(default_factory=list)
    accepted: ConfigObject | None = None
    #: VirtualServices: (host, port, subset) of every cluster its routes name, and
    #: ``((host, shape), ...)`` of every host it looked up
    referenced: frozenset = frozenset()
    signature: tuple = ()


@dataclass(slots=True)
class EngineState:
    gateway_class: str
    ambassador_ids: tuple[str, ...] = (DEFAULT_AMBASSADOR_ID,)
    gateway_addresses: tuple[str, ...] = ()
    token: int = 0
    objects: dict[ObjectRef, ConfigObject] = field(default_factory=dict)
    bucket: dict[ObjectRef, str] = field(default_factory=dict)
    #: ``(sort key, ref)`` per bucket, sorted: the order a build from scratch uses
    order: dict[str, list[tuple]] = field(default_factory=dict)
    entries: dict[ObjectRef, Entry] = field(default_factory=dict)
    #: registry: host -> sorted ``((rank, sort key, index), Service)`` of every provider, and the winners
    providers: dict[str, list[tuple[tuple, Service]]] = field(default_factory=dict)
    by_host: dict[str, Service] = field(default_factory=dict)
    #: EndpointSlices by owning Service (namespace, name)
    slices: dict[tuple[str, str], list[tuple]] = field(default_factory=dict)
    #: DestinationRules: written host -> refs; ref -> resolved host; resolved host -> sorted refs; winners
    dr_raw: dict[str, set[ObjectRef]] = field(default_factory=dict)
    dr_host: dict[ObjectRef, str] = field(default_factory=dict)
    dr_by_host: dict[str, list[tuple]] = field(default_factory=dict)
    policies: dict[str, DestinationPolicy] = field(default_factory=dict)
    #: host -> VirtualServices that looked it up; host -> {(port, subset): routes naming it}
    vs_by_host: dict[str, set[ObjectRef]] = field(default_factory=dict)
    vs_indexed: set[ObjectRef] = field(default_factory=set)
    referenced: dict[str, dict[tuple[int, str], int]] = field(default_factory=dict)
    api_referenced: frozenset = frozenset()
    #: clusters by name, their sorted names, and what each host contributes
    clusters: dict[str, Cluster] = field(default_factory=dict)
    cluster_names: list[str] = field(default_factory=list)
    cluster_list: list[Cluster] = field(default_factory=list)
    host_clusters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    built: dict[str, tuple[Service, DestinationPolicy | None, list[Cluster], BackendPolicy | None]] = \
        field(default_factory=dict)
    #: diagnostics about one host (duplicate DestinationRules, outlier ejection, upstream credentials)
    host_diags: dict[str, list[Diagnostic]] = field(default_factory=dict)
    credential_diags: list[Diagnostic] = field(default_factory=list)
    accepted: dict[ObjectRef, ConfigObject] = field(default_factory=dict)
    #: clusters whose object changed in the current compile: name -> Cluster, or None when removed
    cluster_changes: dict[str, Cluster | None] = field(default_factory=dict)
    blackhole: bool = False
    #: the object list of the previous compile, to find changes by position before by key
    object_list: list[ConfigObject] = field(default_factory=list)
    #: what the changed keys held before the current compile (when the key dict is patched in place)
    previous_objects: dict[ObjectRef, ConfigObject | None] = field(default_factory=dict)
    #: refs whose entry has diagnostics; whether VirtualService results changed; the last route list
    with_diags: set[ObjectRef] = field(default_factory=set)
    http_routes: tuple = ()
    cluster_tuple: tuple = ()
    services: tuple = ()
    #: hosts whose DestinationRule originates TLS somewhere (their checks read the Secrets)
    tls_hosts: set[str] = field(default_factory=set)
    #: merged gateway virtual hosts per selection (translators.gateway_view), shared with the builders
    views: dict = field(default_factory=dict)
    #: each VirtualService's result (or None), in ``order[VS]`` order, patched by position
    vs_results: list | None = None
    vs_result_keys: list | None = None
    #: BackendTLSPolicy TLS by host: ((port name or "", UpstreamTls), ...); CA bundles of ConfigMaps
    backend_tls: dict[str, tuple] = field(default_factory=dict)
    configmap_cas: dict[tuple[str, str], bytes] = field(default_factory=dict)
    backend_tls_diags: list[Diagnostic] = field(default_factory=list)
    backend_tls_resolution: "backend_tls.Resolution | None" = None
    #: BackendTrafficPolicy health checks by host (the most specific target's)
    backend_policies: dict[str, BackendPolicy] = field(default_factory=dict)
    #: Namespace labels (Gateway API ``allowedRoutes`` selectors); Services in front of Gateways, by Service
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    gateway_services: dict[ObjectRef, tuple[tuple[str, str], tuple[str, ...]]] = field(default_factory=dict)
    #: the Emissary join's last output, and its cluster requests by host
    emissary: emissary.Output | None = None
    emissary_clusters: dict[str, dict[str, emissary.ClusterRequest]] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    model: Model
    diagnostics: list[Diagnostic]
    accepted: dict[ObjectRef, ConfigObject]
    statuses: dict[ObjectRef, dict]
    state: EngineState
    token: int
    #: clusters that changed since the state's previous compile (None: a build from scratch)
    cluster_changes: dict[str, Cluster | None] | None = None


# ---------------------------------------------------------------------------------------------- helpers

def _bucket_of(obj: ConfigObject) -> tuple[str, dialects.Dialect | None]:
    found = dialects.lookup(obj)
    return (found[1], found[0]) if found is not None else (IGNORED, None)


def _own_diagnostics(obj: ConfigObject) -> tuple[list[Diagnostic], str]:
    """The diagnostics an object gets on its own (unknown fields, kind, apiVersion), and its bucket
    (IGNORED when it does not compile)."""
    bucket, dialect = _bucket_of(obj)
    out: list[Diagnostic] = []
    if known_fields.known(group=obj.group, kind=obj.kind):
        out += [Diagnostic(Severity.WARNING, "unknown-field", f"unknown field for {obj.kind} ({obj.api_version}); "
                           "ignored", obj.source, obj.ref, p)
                for p in known_fields.unknown_fields(group=obj.group, kind=obj.kind, doc_or_spec=obj.raw or obj.spec)]
    if dialect is None:
        unknown = dialects.untranslated_kind(obj)
        if unknown is not None:
            out.append(unknown)
        return out, IGNORED
    bad_version = dialects.check_version(obj, dialect)
    if bad_version is not None:
        out.append(bad_version)
        return out, IGNORED
    return out, bucket


def _insort(order: list[tuple], ref: ObjectRef) -> None:
    key = _sort_key(ref)
    i = bisect.bisect_left(order, (key,))
    if i == len(order) or order[i][0] != key:
        order.insert(i, (key, ref))


def _sorted_unique(order: list[tuple]) -> list[tuple]:
    """``order`` sorted by key, the first of equal keys kept (as :func:`_insort` keeps the one already in)."""
    out: list[tuple] = []
    for item in sorted(order, key=operator.itemgetter(0)):
        if not out or out[-1][0] != item[0]:
            out.append(item)
    return out


def _remove(order: list[tuple], ref: ObjectRef) -> None:
    key = _sort_key(ref)
    i = bisect.bisect_left(order, (key,))
    if i < len(order) and order[i][0] == key:
        del order[i]


def _refs(state: EngineState, bucket: str) -> list[ObjectRef]:
    return [ref for _, ref in state.order.get(bucket, ())]


class _Parser:
    """Parses objects into Entries that carry their own diagnostics.

    **Last accepted version.**  An object whose new version has errors is not silently dropped and
    does not take its routes down either: if an earlier version of the same object was accepted
    (``accepted``, handed from one translation to the next), that version keeps serving and a warning
    says so.
    """

    __slots__ = ("previous",)

    def __init__(self, accepted: Mapping[ObjectRef, ConfigObject]) -> None:
        self.previous = accepted

    def __call__(self, obj: ConfigObject, parser: Callable, own: list[Diagnostic], *,
                 destinations: Destinations | None = None, signature: Callable | None = None) -> Entry:
        if destinations is not None:
            destinations.recording = []
            destinations.looked_up = set()
        try:
            result, diags, accepted = self._parse(obj, parser)
        finally:
            recorded = destinations.recording if destinations is not None else None
            looked = destinations.looked_up if destinations is not None else None
            if destinations is not None:
                destinations.recording = None
                destinations.looked_up = None
        entry = Entry(obj, result, own + diags, own=own, accepted=accepted)
        if recorded is not None:
            entry.referenced = frozenset(recorded)
            entry.signature = signature(frozenset(looked)) if signature is not None else ()
        return entry

    def _parse(self, obj: ConfigObject, parser: Callable) -> tuple[Any, list[Diagnostic], ConfigObject | None]:
        rep = Reporter(file=obj.source, ref=obj.ref)
        result = diagnostics.isolated(parser, obj, rep)
        if not rep.failed:
            return result, rep.items, obj
        prev = self.previous.get(obj.ref)
        if prev is None or prev == obj:
            return None, rep.items, None
        rep_prev = Reporter(file=prev.source, ref=prev.ref)
        result = diagnostics.isolated(parser, prev, rep_prev)
        if rep_prev.failed:
            return None, rep.items, None
        return result, rep.items + [Diagnostic(
            Severity.WARNING, "kept-previous", "the new version has errors; the last accepted version keeps serving",
            obj.source, obj.ref, "")], prev


# ---------------------------------------------------------------------------------------------- the engine

def compile_objects(objects: Iterable[ConfigObject], *, accepted: Mapping[ObjectRef, ConfigObject] | None,
                    state: EngineState | None, token: int | None, gateway_class: str,
                    ambassador_ids: tuple[str, ...] = (DEFAULT_AMBASSADOR_ID,),
                    gateway_addresses: tuple[str, ...] = ()) -> Outcome:
    """Compile ``objects`` into the IR, reusing ``state`` when it is the one ``token`` names."""
    objects = objects if isinstance(objects, list) else list(objects)
    fresh = state is None or state.gateway_class != gateway_class or token is None or state.token != token or \
        state.ambassador_ids != ambassador_ids or state.gateway_addresses != gateway_addresses
    if fresh:
        state = EngineState(gateway_class=gateway_class, ambassador_ids=ambassador_ids,
                            gateway_addresses=gateway_addresses)
    st = state
    st.cluster_changes = {}
    st.token = 0  # in progress: a failure half-way leaves a state no translation can reuse
    before = st.objects
    new, changed, removed = _diff_objects(st, objects)
    old = st.previous_objects if new is before else before
    previous = {r: st.entries.get(r) for r in itertools.chain(changed, removed)}
    parse = _Parser(accepted or {})

    # -- dispatch: bucket, order and own diagnostics of every changed object
    touched: dict[str, set[ObjectRef]] = {}
    for ref in itertools.chain(changed, removed):
        b = st.bucket.pop(ref, None)
        if b is not None:
            _remove(st.order[b], ref)
            touched.setdefault(b, set()).add(ref)
        st.entries.pop(ref, None)
    own: dict[ObjectRef, list[Diagnostic]] = {}
    batch = len(changed) > _RESORT  # (see _RESORT)
    for ref in changed:
        obj = new[ref]
        own[ref], b = _own_diagnostics(obj)
        st.bucket[ref] = b
        if batch:
            st.order.setdefault(b, []).append((_sort_key(ref), ref))
        else:
            _insort(st.order.setdefault(b, []), ref)
        touched.setdefault(b, set()).add(ref)
        st.entries[ref] = Entry(obj, None, own[ref], own=own[ref])  # the stages below parse it
    if batch:
        for b in touched:
            st.order[b] = _sorted_unique(st.order.get(b, []))
    st.objects = new
    st.object_list = objects

    # -- services: ServiceEntries, Services and their EndpointSlices -> the registry
    for ref in touched.get(SLICE, ()):
        for obj in (old.get(ref), new.get(ref) if st.bucket.get(ref) == SLICE else None):
            owner = obj.labels.get(SERVICE_NAME_LABEL) if obj is not None else None
            if owner:
                group = st.slices.setdefault((obj.namespace, owner), [])
                (_insort if obj is new.get(ref) else _remove)(group, ref)
    owners = {(o.namespace, o.labels[SERVICE_NAME_LABEL]) for r in touched.get(SLICE, ())
              for o in (old.get(r), new.get(r)) if o is not None and o.labels.get(SERVICE_NAME_LABEL)}
    svc_refs = set(touched.get(SE, ())) | set(touched.get(SVC, ()))
    svc_refs |= {ObjectRef(SVC, ns, name) for ns, name in owners if st.bucket.get(ObjectRef(SVC, ns, name)) == SVC}
    hosts_changed: set[str] = set()
    for ref in svc_refs:
        was = previous[ref] if ref in previous else st.entries.get(ref)
        for i, svc in enumerate((was.result if was is not None else None) or ()):
            provs = st.providers.get(svc.host, [])
            provs[:] = [p for p in provs if not (p[0][1] == _sort_key(ref) and p[0][2] == i)]
            hosts_changed.add(svc.host)
        b = st.bucket.get(ref)
        if b not in (SE, SVC):
            continue
        obj = new[ref]
        mine = own[ref] if ref in own else st.entries[ref].own
        if b == SE:
            entry = parse(obj, parse_service_entry, mine)
        else:
            slices = [new[r] for _, r in st.slices.get((obj.namespace, obj.name), ())]
            entry = parse(obj, lambda o, r, slices=slices: parse_kubernetes_service(o, r, slices), mine)
        st.entries[ref] = entry
        for i, svc in enumerate(entry.result or ()):
            bisect.insort(st.providers.setdefault(svc.host, []), ((_RANK[b], _sort_key(ref), i), svc),
                          key=lambda p: p[0])
            hosts_changed.add(svc.host)
    membership: set[str] = set()   # hosts that appeared or vanished
    svc_affected: set[str] = set()  # hosts whose Service is another object now
    for host in hosts_changed:
        provs = st.providers.get(host)
        winner = provs[0][1] if provs else None
        before = st.by_host.get(host)
        if winner is None:
            st.providers.pop(host, None)
            if before is not None:
                del st.by_host[host]
                membership.add(host)
                svc_affected.add(host)
        elif before is not winner:
            if before is None:
                membership.add(host)
            st.by_host[host] = winner
            svc_affected.add(host)
    registry = Registry.of_hosts(st.by_host)  # the state's own map: valid while this compile runs

    # -- DestinationRules -> one policy per host
    dr_refs = set(touched.get(DR, ()))
    if membership:
        for host in membership:
            dr_refs |= st.dr_raw.get(host, set())
            if host.endswith("." + DOMAIN_SUFFIX):
                dr_refs |= st.dr_raw.get(host[: -len(DOMAIN_SUFFIX) - 1], set())
    policy_hosts: set[str] = set()
    for ref in dr_refs:
        host = st.dr_host.pop(ref, None)
        if host is not None:
            _remove(st.dr_by_host.get(host, []), ref)
            policy_hosts.add(host)
        was = previous[ref] if ref in previous else st.entries.get(ref)
        if was is not None and was.result is not None:
            st.dr_raw.get(was.result.host, set()).discard(ref)
        if st.bucket.get(ref) != DR:
            continue
        entry = st.entries[ref]
        if ref in own:
            entry = st.entries[ref] = parse(new[ref], parse_destination_rule, own[ref])
        if entry.result is None:
            continue
        st.dr_raw.setdefault(entry.result.host, set()).add(ref)
        host = registry.resolve(entry.result.host, ref.namespace)
        st.dr_host[ref] = host
        _insort(st.dr_by_host.setdefault(host, []), ref)
        policy_hosts.add(host)
    policy_affected: set[str] = set()
    duplicates: dict[str, list[Diagnostic]] = {}
    for host in policy_hosts:
        refs = [r for _, r in st.dr_by_host.get(host, ())]
        winner = st.entries[refs[0]].result if refs else None
        if st.policies.get(host) is not winner:
            policy_affected.add(host)
            if winner is None:
                del st.policies[host]
            else:
                st.policies[host] = winner
        if not refs:
            st.dr_by_host.pop(host, None)
        duplicates[host] = [Diagnostic(Severity.WARNING, "duplicate", f"host {host!r} already has DestinationRule "
                                       f"{winner.ref}; this one is ignored", new[r].source, r, "spec.host")
                            for r in refs[1:]]

    # -- Secrets, Gateways, EnvoyFilters: few; their cross-checks are redone when one changed
    for b, parser in ((SECRET, parse_secret), (GW, parse_gateway), ("Telemetry", parse_telemetry)):
        for ref in touched.get(b, ()):
            if st.bucket.get(ref) == b:
                st.entries[ref] = parse(new[ref], parser, own[ref])
    for ref in touched.get(FILTER, ()):
        if st.bucket.get(ref) == FILTER:
            obj = new[ref]
            entry = st.entries[ref] = Entry(obj, None, list(own[ref]), own=own[ref])
            try:
                entry.result = envoy_filter.recognise(obj)
            except envoy_filter.NotRecognised as exc:
                entry.diagnostics.append(Diagnostic(
                    Severity.WARNING, "unsupported-kind", f"EnvoyFilter ({obj.api_version}) is not translated: "
                    f"{exc.reason}; {envoy_filter.PATTERN}", obj.source, obj.ref, exc.path))
    secrets = [e.result for r in _refs(st, SECRET) if (e := st.entries[r]).result is not None]
    gateways: list[Gateway] = [e.result for r in _refs(st, GW) if (e := st.entries[r]).result is not None]
    secrets_changed = SECRET in touched
    if secrets_changed or GW in touched:
        st.credential_diags = []
        istio_checks.check_credentials(gateways, secrets, [new[r] for r in _refs(st, GW)], st.credential_diags)
    grpc_web = tuple(e.result for r in _refs(st, FILTER) if (e := st.entries[r]).result is not None)
    access_logs = tuple(e.result for r in _refs(st, "Telemetry") if (e := st.entries[r]).result is not None)

    # -- VirtualServices: the changed ones, and those that looked up a host whose shape changed
    shapes: dict[int, tuple] = {}
    policies = st.policies

    def host_signature(hosts: frozenset[str]) -> tuple:
        out = []
        for h in sorted(hosts):
            svc = st.by_host.get(h)
            shape = None
            if svc is not None:
                shape = shapes.get(id(svc))
                if shape is None:
                    shape = shapes[id(svc)] = tuple((p.number, p.name, p.h2) for p in svc.ports)
            pol = policies.get(h)
            out.append((h, (shape, id(pol) if pol is not None else None)))
        return tuple(out)

    destinations = Destinations(registry=registry, policies=policies)
    recheck = set(touched.get(VS, ()))
    for h in svc_affected | policy_affected:
        recheck |= st.vs_by_host.get(h, set())
    ref_hosts: set[str] = set()  # hosts whose referenced (port, subset) set changed
    reparsed: set[ObjectRef] = set()
    for ref in recheck:
        was = previous[ref] if ref in previous else st.entries.get(ref)
        if ref not in own and ref not in previous and was is not None and \
                was.signature == host_signature(frozenset(h for h, _ in was.signature)):
            continue  # nothing it looked up changed shape
        if was is not None and ref in st.vs_indexed:
            ref_hosts |= _unindex_vs(st, ref, was)
        if st.bucket.get(ref) != VS:
            continue
        mine = own[ref] if ref in own else was.own
        reparsed.add(ref)
        entry = st.entries[ref] = parse(new[ref], lambda o, r: parse_virtual_service(o, r, destinations=destinations),
                                        mine, destinations=destinations, signature=host_signature)
        ref_hosts |= _index_vs(st, ref, entry)
    if VS in touched or reparsed or fresh:
        st.http_routes = _patched_routes(st, set(touched.get(VS, ())) | reparsed, fresh)
    http_routes: tuple[HttpRoutes, ...] = st.http_routes

    # -- Gateway API: re-run over its (few) objects; it resolves backends against the registry
    for ref in touched.get("Namespace", ()):
        obj = new.get(ref) if st.bucket.get(ref) == "Namespace" else None
        if obj is None:
            st.namespace_labels.pop(ref.name, None)
        else:
            st.namespace_labels[ref.name] = dict(obj.labels)
    for ref in touched.get(SVC, ()):
        obj = new.get(ref) if st.bucket.get(ref) == SVC else None
        gw_name = obj.labels.get(GATEWAY_NAME_LABEL) if obj is not None else None
        if gw_name:
            st.gateway_services[ref] = ((obj.namespace, gw_name), _service_addresses(obj))
        else:
            st.gateway_services.pop(ref, None)
    fronting: dict[tuple[str, str], tuple[str, ...]] = {}
    for key, addrs in st.gateway_services.values():
        fronting[key] = fronting.get(key, ()) + tuple(a for a in addrs if a not in fronting.get(key, ()))
    valid_secrets = {(s.namespace, s.name) for s in secrets if s.cert_pem and s.key_pem}
    gwapi = {k: [new[r] for r in _refs(st, GWAPI + k)] for k in GATEWAY_API_KINDS}
    api_diags: list[Diagnostic] = []
    statuses: dict[ObjectRef, dict] = {}
    api_referenced: set[tuple[str, int, str]] = set()
    api_gateways, api_routes = compile_gateway_api(
        gwapi, registry=registry, referenced=api_referenced, gateway_class=gateway_class, diags=api_diags,
        statuses=statuses, secret_ok=lambda ns, name: (ns, name) in valid_secrets,
        namespace_labels=st.namespace_labels, addresses=fronting, default_addresses=st.gateway_addresses)
    gateways += api_gateways
    if api_routes:
        http_routes = http_routes + tuple(api_routes)
    api_refs = frozenset(api_referenced)
    ref_hosts |= {h for h, _, _ in st.api_referenced ^ api_refs}
    st.api_referenced = api_refs

    # -- BackendTrafficPolicy: few objects; their targets resolve to hosts through the Gateway API routes
    for ref in touched.get("BackendTrafficPolicy", ()):
        if st.bucket.get(ref) == "BackendTrafficPolicy":
            st.entries[ref] = parse(new[ref], parse_backend_traffic_policy, own[ref])
    btps = [e.result for r in _refs(st, "BackendTrafficPolicy") if (e := st.entries[r]).result is not None]
    # -- BackendTLSPolicy: TLS origination to Services, the CA from ConfigMaps (also few)
    for ref in touched.get("ConfigMap", ()):
        obj = new.get(ref) if st.bucket.get(ref) == "ConfigMap" else None
        ca = (obj.raw.get("data") or {}).get("ca.crt") if obj is not None and obj.raw else None
        if isinstance(ca, str) and valid_ca_bundle(ca):
            st.configmap_cas[(ref.namespace, ref.name)] = ca.encode()
        else:
            st.configmap_cas.pop((ref.namespace, ref.name), None)
    for ref in touched.get("BackendTLSPolicy", ()):
        if st.bucket.get(ref) == "BackendTLSPolicy":
            st.entries[ref] = parse(new[ref], parse_backend_tls_policy, own[ref])
    if "BackendTLSPolicy" in touched or "ConfigMap" in touched or st.backend_tls_resolution is not None:
        if "BackendTLSPolicy" in touched or "ConfigMap" in touched or st.backend_tls_resolution is None:
            st.backend_tls_resolution = backend_tls.resolve(
                ((new[r], p) for r in _refs(st, "BackendTLSPolicy") if (p := st.entries[r].result) is not None),
                cas=st.configmap_cas, domain_suffix=DOMAIN_SUFFIX)
        resolution = st.backend_tls_resolution
        st.backend_tls_diags = resolution.diagnostics
        for host in resolution.by_host.keys() | st.backend_tls.keys():
            if resolution.by_host.get(host) != st.backend_tls.get(host):
                ref_hosts.add(host)
        st.backend_tls = resolution.by_host
        # status.ancestors: the Gateways whose routes reach each policy's targets (few policies)
        statuses.update(backend_tls.statuses(resolution, api_routes, {r: new[r].generation
                                                                       for r in resolution.conditions}))
        if not resolution.conditions:
            st.backend_tls_resolution = None
    if btps or st.backend_policies:
        by_host = _backend_policy_hosts(btps, api_routes)
        for host in by_host.keys() | st.backend_policies.keys():
            if by_host.get(host) is not st.backend_policies.get(host):
                ref_hosts.add(host)
        st.backend_policies = by_host

    # -- Emissary: each object parses on its own; the join re-runs when one of them, or a host, changed
    emissary_touched = False
    for kind, parser in _EMISSARY_PARSERS.items():
        for ref in touched.get(EMISSARY + kind, ()):
            emissary_touched = True
            if st.bucket.get(ref) == EMISSARY + kind:
                st.entries[ref] = parse(new[ref], parser, own[ref])
    has_emissary = any(st.order.get(EMISSARY + k) for k in _EMISSARY_PARSERS)
    if emissary_touched or ((membership or svc_affected) and has_emissary) or st.emissary is None:
        specs = {k: [e.result for r in _refs(st, EMISSARY + k) if (e := st.entries[r]).result is not None]
                 for k in _EMISSARY_PARSERS}
        em = emissary.compile_emissary(mappings=specs["Mapping"], hosts=specs["Host"], contexts=specs["TLSContext"],
                                       modules=specs["Module"], listeners=specs["Listener"],
                                       ambassador_ids=st.ambassador_ids, registry=registry, sources=_Sources(new))
        previous_em = st.emissary
        if previous_em is not None:  # unchanged gateways and routes keep their identity (views, RDS bytes)
            old_gw = {g.ref: g for g in previous_em.gateways}
            em.gateways = [old_gw[g.ref] if old_gw.get(g.ref) == g else g for g in em.gateways]
            old_hr = {hr.ref: hr for hr in previous_em.http_routes}
            em.http_routes = [old_hr[hr.ref] if old_hr.get(hr.ref) == hr else hr for hr in em.http_routes]
            if em.http_routes == previous_em.http_routes:
                em.http_routes = previous_em.http_routes
        st.emissary = em
        by_host: dict[str, dict[str, emissary.ClusterRequest]] = {}
        for req in em.clusters.values():
            by_host.setdefault(req.host, {})[req.name] = req
        for host in by_host.keys() | st.emissary_clusters.keys():
            if by_host.get(host) != st.emissary_clusters.get(host):
                ref_hosts.add(host)
        st.emissary_clusters = by_host
    em = st.emissary
    if em.gateways:
        gateways += em.gateways
    if em.http_routes:
        http_routes = http_routes + tuple(em.http_routes)

    # -- clusters and the checks that concern one host
    rebuild = svc_affected | policy_affected | ref_hosts
    if secrets_changed:  # upstream credential warnings read the Secrets: the hosts with TLS origination
        rebuild |= {h for h in st.tls_hosts if h in st.policies}
    for host in policy_affected:
        dr = st.policies.get(host)
        if dr is not None and any(p.tls is not None for p in (dr.policy, *dr.port_policies.values(),
                                                              *(x.policy for x in dr.subsets if x.policy))):
            st.tls_hosts.add(host)
        else:
            st.tls_hosts.discard(host)
    api_by_host: dict[str, set[tuple[int, str]]] = {}
    for h, p, s in api_refs:
        api_by_host.setdefault(h, set()).add((p, s))
    resort = len(rebuild) > _RESORT  # (see _RESORT)
    for host in rebuild:
        _rebuild_host(st, host, api_by_host.get(host, set()), st.emissary_clusters.get(host), keep_sorted=not resort)
        _host_checks(st, host, secrets, new, duplicates.get(host))
    if resort:
        st.cluster_names = sorted(st.clusters)
        st.cluster_list = [st.clusters[n] for n in st.cluster_names]
    for host, dups in duplicates.items():
        if host not in rebuild:
            _set_host_diag(st, host, dups + _host_checks_only(st, host, secrets, new))
    blackhole = any(c.cluster == BLACKHOLE_CLUSTER for hr in api_routes for r in hr.routes for c in r.clusters)
    if blackhole != st.blackhole:
        st.cluster_changes[BLACKHOLE_CLUSTER] = BLACKHOLE if blackhole else None
        st.blackhole = blackhole
    if st.cluster_changes or fresh or not st.cluster_tuple:
        st.cluster_tuple = tuple(st.cluster_list) + ((BLACKHOLE,) if blackhole else ())
    clusters = st.cluster_tuple

    # -- the model, and what reads all of it
    if svc_affected or fresh or len(st.services) != len(st.by_host):
        st.services = tuple(st.by_host.values())
    model = Model(gateways=tuple(gateways), http_routes=http_routes, clusters=clusters,
                  services=st.services, secrets=tuple(secrets), grpc_web=grpc_web,
                  access_logs=access_logs)
    for ref in itertools.chain(previous, recheck, svc_refs, dr_refs, *touched.values()):
        e = st.entries.get(ref)
        if e is not None and e.diagnostics:
            st.with_diags.add(ref)
        else:
            st.with_diags.discard(ref)
    diags = [x for r in st.with_diags for x in st.entries[r].diagnostics]
    diags += st.credential_diags
    for per_host in st.host_diags.values():
        diags += per_host
    diags += api_diags
    diags += em.diagnostics
    diags += st.backend_tls_diags
    istio_checks.istio_statuses(diags, statuses)
    emissary.statuses(diags, statuses)
    diags += route_analysis.analyze(model, sources=_Sources(new), memo=st.views)
    for ref in itertools.chain(previous, recheck, svc_refs, dr_refs):
        e = st.entries.get(ref)
        if e is not None and e.accepted is not None:
            st.accepted[ref] = e.accepted
        else:
            st.accepted.pop(ref, None)
    st.token = next(_tokens)
    # the state's own dict, not a copy (30,000 entries at 10,000 services): what the next compile reads as
    # "the last accepted versions"; it is changed only at the very end of a compile, above
    return Outcome(model, diags, st.accepted, statuses, st, st.token,
                   None if fresh else dict(st.cluster_changes))


def _service_addresses(obj: ConfigObject) -> tuple[str, ...]:
    """Where a Service in front of a Gateway's Envoys is reached: its load-balancer ingress, else its
    external IPs, else its cluster IP."""
    raw = obj.raw or {}
    ingress = ((raw.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    out = [str(i.get("ip") or i.get("hostname")) for i in ingress if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))]
    spec = raw.get("spec") or {}
    if not out:
        out = [str(a) for a in spec.get("externalIPs") or () if isinstance(a, str)]
    if not out and isinstance(spec.get("clusterIP"), str) and spec["clusterIP"] not in ("", "None"):
        out = [spec["clusterIP"]]
    return tuple(out)


class _Sources:
    """``ref -> file`` over the objects by key, without building a dict of them."""

    __slots__ = ("objects",)

    def __init__(self, objects: Mapping[ObjectRef, ConfigObject]) -> None:
        self.objects = objects

    def get(self, ref: ObjectRef, default: str = "") -> str:
        obj = self.objects.get(ref)
        return obj.source if obj is not None else default


def _diff_objects(st: EngineState, objects: list[ConfigObject]) \
        -> tuple[dict[ObjectRef, ConfigObject], list[ObjectRef], list[ObjectRef]]:
    """``(objects by key, changed keys, removed keys)`` against the previous compile.

    Sources hand the same objects in the same order while nothing changes, so the lists are compared by
    identity first: the very same objects at the start and at the end are kept, and only the span between
    (its differing positions, when as many objects remain) is looked at by key -- an edit, an object added
    and an object removed each cost one entry.  Outside the span every object is where it was, so with
    unique keys a key seen only on the old side of the span is gone.  The config store says which objects
    went and which came (:func:`~translators.by_identity.note_delta`), so scattered changes (one object
    per Kubernetes origin) cost what changed too.  Anything else (many changes,
    duplicate keys) falls back to comparing every key.
    """
    prev, old = st.object_list, st.objects
    if prev:
        delta = noted_delta(prev, objects)
        if delta is not None:  # told by the config store: which objects went and which came
            went, came = delta
        elif len(prev) == len(objects):  # as many objects: the differing positions (within the changed span)
            at = changed_positions(prev, objects)
            came, went = [objects[i] for i in at], [prev[i] for i in at]
        else:  # objects came or went: the span, whose ends are the very same objects
            start, old_end, new_end = changed_span(prev, objects)
            came, went = objects[start:new_end], prev[start:old_end]
        if len(came) + len(went) <= max(64, len(objects) // 8):
            arriving = {}
            for obj in came:
                arriving.setdefault(obj.ref, obj)
            leaving = {o.ref for o in went} - arriving.keys()
            added = sum(1 for r in arriving if r not in old)
            if len(arriving) == len(came) and len(old) + added - len(leaving) == len(objects):
                changed = [r for r, o in arriving.items() if old.get(r) is not o]
                removed = [r for r in leaving if r in old]
                st.previous_objects = {r: old.get(r) for r in itertools.chain(changed, removed)}
                for r in changed:
                    old[r] = arriving[r]
                for r in removed:
                    del old[r]
                return old, changed, removed  # the state's dict, patched (no one else reuses it: token)
    new: dict[ObjectRef, ConfigObject] = {}
    for obj in objects:
        new.setdefault(obj.ref, obj)
    changed = [r for r, o in new.items() if old.get(r) is not o]
    removed = [r for r in old if r not in new]
    return new, changed, removed


# ---------------------------------------------------------------------------------------------- indexes

def _index_vs(st: EngineState, ref: ObjectRef, entry: Entry) -> set[str]:
    """Record what a VirtualService looked up and routes to; the hosts whose referenced set changed."""
    st.vs_indexed.add(ref)
    for h, _ in entry.signature:
        st.vs_by_host.setdefault(h, set()).add(ref)
    changed = set()
    for h, p, s in entry.referenced:
        counts = st.referenced.setdefault(h, {})
        counts[(p, s)] = counts.get((p, s), 0) + 1
        if counts[(p, s)] == 1:
            changed.add(h)
    return changed


def _unindex_vs(st: EngineState, ref: ObjectRef, entry: Entry) -> set[str]:
    st.vs_indexed.discard(ref)
    for h, _ in entry.signature:
        refs = st.vs_by_host.get(h)
        if refs is not None:
            refs.discard(ref)
            if not refs:
                del st.vs_by_host[h]
    changed = set()
    for h, p, s in entry.referenced:
        counts = st.referenced.get(h, {})
        n = counts.get((p, s), 0) - 1
        if n <= 0:
            counts.pop((p, s), None)
            changed.add(h)
            if not counts:
                st.referenced.pop(h, None)
        else:
            counts[(p, s)] = n
    return changed


def _patched_routes(st: EngineState, refs: set[ObjectRef], fresh: bool) -> tuple[HttpRoutes, ...]:
    """The VirtualServices' routes in their sorted order: patched at the positions of ``refs`` when no
    VirtualService came or went (an edit costs what it changes), rebuilt otherwise."""
    order = st.order.get(VS, [])
    results, keys = st.vs_results, st.vs_result_keys
    if not fresh and results is not None and keys is not None:
        before, old_len = st.http_routes, len(results)
        # remove the ones that went, then replace or insert by position (keys: the sort keys of ``results``)
        for ref in refs:
            key = _sort_key(ref)
            j = bisect.bisect_left(keys, key)
            present = j < len(keys) and keys[j] == key
            i = bisect.bisect_left(order, (key,))
            if i < len(order) and order[i][1] == ref:
                if present:
                    results[j] = st.entries[ref].result
                else:
                    keys.insert(j, key)
                    results.insert(j, st.entries[ref].result)
            elif present:
                del keys[j]
                del results[j]
        if len(results) == len(order):
            out = tuple(filter(None, results))
            if len(before) == old_len and len(out) == len(results) and refs:
                # no VirtualService without routes on either side: tuple positions are result positions, so
                # the span this patch replaced is known (the views and route builders then skip their scans)
                at = [bisect.bisect_left(keys, _sort_key(r)) for r in refs]
                last = max(i + (i < len(keys) and keys[i] == _sort_key(r)) for i, r in zip(at, refs))
                tail = len(out) - last
                note_span(before, out, (min(at), len(before) - tail, last))
            return out
    st.vs_results = [st.entries[r].result for _, r in order]
    st.vs_result_keys = [k for k, _ in order]
    return tuple(filter(None, st.vs_results))


def _backend_policy_hosts(policies: list[BackendPolicy], routes) -> dict[str, BackendPolicy]:  # noqa: ANN001
    """host -> the BackendTrafficPolicy whose target reaching it is the most specific (Service, route, Gateway)."""
    ranked: dict[str, tuple[int, BackendPolicy]] = {}
    for p in policies:
        for group, kind, name, rank in p.targets:
            hosts: set[str] = set()
            if kind == "Service":
                hosts.add(f"{name}.{p.namespace}.{DOMAIN_SUFFIX}")
            else:
                key = f"gateway.networking.k8s.io:{p.namespace}/{name}"
                for hr in routes:
                    if (kind == "Gateway" and any(g.split("|")[0] == key for g in hr.gateways)) or \
                            (kind != "Gateway" and hr.ref.kind == kind and hr.ref.namespace == p.namespace
                             and hr.ref.name == name):
                        hosts |= {h for r in hr.routes for wc in r.clusters if (h := cluster_host(wc.cluster))}
            for h in hosts:
                if h not in ranked or rank > ranked[h][0]:
                    ranked[h] = (rank, p)
    return {h: p for h, (_, p) in ranked.items()}


def _with_backend_tls(policy: TrafficPolicy, port_name: str, entries: tuple | None) -> tuple[TrafficPolicy, bool]:
    """A BackendTLSPolicy's TLS where the DestinationRule set none (the port's own, else the Service's), and
    whether the port must refuse connections (a policy that cannot validate the backend: never cleartext)."""
    if not entries or policy.tls is not None:
        return policy, False
    found = next((e for e in entries if e[0] and e[0] == port_name), None) or \
        next((e for e in entries if not e[0]), None)
    if found is None:
        return policy, False
    return (replace(policy, tls=found[1]), False) if found[1] is not None else (policy, True)


def _with_backend_policy(policy: TrafficPolicy, bp: BackendPolicy | None) -> TrafficPolicy:
    if bp is None:
        return policy
    return replace(policy, health_checks=policy.health_checks or bp.health_checks or None,
                   outlier=policy.outlier if policy.outlier is not None else bp.outlier)


def _clusters_of(host: str, svc: Service, dr: DestinationPolicy | None,
                 bp: BackendPolicy | None = None, btls: tuple | None = None) -> list[Cluster]:
    """One cluster per service port, and one per DestinationRule subset of it."""
    out = []
    discovery = "STRICT_DNS" if svc.resolution == "DNS" else "EDS"
    for port in svc.ports:
        port_endpoints = tuple(e for e in svc.endpoints if e.service_port in (0, port.number))
        subsets = [("", ())] + [(s.name, s.labels) for s in (dr.subsets if dr else ())]
        for subset, selector in subsets:
            name = cluster_name(port=port.number, subset=subset, host=host)
            policy = _with_backend_policy(dr.policy_for(port=port.number, subset=subset) if dr else TrafficPolicy(), bp)
            policy, refused = _with_backend_tls(policy, port.name, btls)
            eps = () if refused else \
                tuple(e for e in port_endpoints if e.matches(selector)) if selector else port_endpoints
            out.append(Cluster(name, host, port.number, subset, port.h2, policy, discovery, eps))
    return out




def _service_clusters(st: EngineState, host: str) -> list[Cluster]:
    svc = st.by_host.get(host)
    if svc is None:
        st.built.pop(host, None)
        return []
    dr = st.policies.get(host)
    bp = st.backend_policies.get(host)
    btls = st.backend_tls.get(host)
    hit = st.built.get(host)
    if hit is None or hit[0] is not svc or hit[1] is not dr or hit[3] is not bp or hit[4] != btls:
        hit = st.built[host] = (svc, dr, _clusters_of(host, svc, dr, bp, btls), bp, btls)
    return hit[2]


def _rebuild_host(st: EngineState, host: str, api_refs: set[tuple[int, str]],
                  requests: Mapping[str, "emissary.ClusterRequest"] | None = None, *, keep_sorted: bool = True) -> None:
    """The clusters of ``host``: one per service port and subset, plus placeholders for what routes name,
    plus what Emissary Mappings ask for (with the registry's endpoints of that port).  ``keep_sorted``:
    update ``st.cluster_names`` and ``st.cluster_list`` too (else the caller sorts them afresh)."""
    own = {c.name: c for c in _service_clusters(st, host)}
    for name, req in (requests or {}).items():
        endpoints = req.endpoints
        if endpoints is None:
            svc = st.by_host.get(host)
            endpoints = tuple(e for e in svc.endpoints if e.service_port in (0, req.port)) if svc is not None else ()
        c = Cluster(name, host, req.port, req.subset, req.h2, req.policy, req.discovery, endpoints)
        was = st.clusters.get(name)
        own[name] = was if was == c else c
    dr = st.policies.get(host)
    for port, subset in sorted(set(st.referenced.get(host, {})) | api_refs):
        name = cluster_name(port=port, subset=subset, host=host)
        if name not in own:
            policy = dr.policy_for(port=port, subset=subset) if dr else TrafficPolicy()
            own[name] = Cluster(name, host, port, subset, True, policy, "EDS", ())
    before = st.host_clusters.pop(host, ())
    names, ordered = st.cluster_names, st.cluster_list  # parallel, sorted by name
    for name in before:
        if name not in own:
            del st.clusters[name]
            st.cluster_changes[name] = None
            if not keep_sorted:
                continue
            i = bisect.bisect_left(names, name)
            if i < len(names) and names[i] == name:
                del names[i]
                del ordered[i]
    for name, c in own.items():
        was = st.clusters.get(name)
        if was is not c:
            st.cluster_changes[name] = c
            st.clusters[name] = c
            if not keep_sorted:
                continue
            i = bisect.bisect_left(names, name)
            if was is None:
                names.insert(i, name)
                ordered.insert(i, c)
            else:
                ordered[i] = c
    if own:
        st.host_clusters[host] = tuple(own)


def _host_checks_only(st: EngineState, host: str, secrets: list, objects: Mapping[ObjectRef, ConfigObject]) \
        -> list[Diagnostic]:
    dr = st.policies.get(host)
    if dr is None:
        return []
    obj = objects.get(dr.ref)
    out: list[Diagnostic] = []
    if obj is not None:
        istio_checks.check_upstream_credentials({host: dr}, secrets, [obj], out)
    mine = [st.clusters[n] for n in st.host_clusters.get(host, ())]
    out += istio_checks.ejection_warnings(mine, {host: dr}, [obj] if obj is not None else [])
    return out


def _set_host_diag(st: EngineState, host: str, diags: list[Diagnostic]) -> None:
    if diags:
        st.host_diags[host] = diags
    else:
        st.host_diags.pop(host, None)


def _host_checks(st: EngineState, host: str, secrets: list, objects: Mapping[ObjectRef, ConfigObject],
                 duplicates: list[Diagnostic] | None) -> None:
    if duplicates is None:
        duplicates = [x for x in st.host_diags.get(host, ()) if x.code == "duplicate"]
    _set_host_diag(st, host, duplicates + _host_checks_only(st, host, secrets, objects))


#: what one translation hands the next: the engine state and the token that proves it is the latest
ParseMemo = dict[str, Any]


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


def compile_config(objects: Iterable[ConfigObject], *, accepted: Mapping[ObjectRef, ConfigObject] | None = None,
                   memo: ParseMemo | None = None, gateway_class: str = DEFAULT_GATEWAY_CLASS,
                   ambassador_ids: tuple[str, ...] = (DEFAULT_AMBASSADOR_ID,),
                   gateway_addresses: tuple[str, ...] = ()) -> Compiled:
    """Every object of every dialect into one IR model, incrementally: ``memo`` is the previous result's,
    and only what changed since is recompiled."""
    memo = memo or {}
    out = compile_objects(objects, accepted=accepted, state=memo.get("engine"), token=memo.get("token"),
                          gateway_class=gateway_class, ambassador_ids=tuple(ambassador_ids),
                          gateway_addresses=tuple(gateway_addresses))
    return Compiled(out.model, out.diagnostics, out.accepted, {"engine": out.state, "token": out.token},
                    out.statuses, out.cluster_changes)
