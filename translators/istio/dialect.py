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

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, TypeVar

from translators.diagnostics import Diagnostic, Reporter, Severity
from translators.ir import BLACKHOLE_CLUSTER, Cluster, Gateway, Service, HttpRoutes, Model, Service, TrafficPolicy, cluster_name
from translators.istio import API_GROUP, API_VERSIONS, KINDS
from translators.istio.destination_rule import DestinationPolicy, parse_destination_rule
from translators.istio.destinations import Destinations
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
              destinations: Destinations | None = None) -> T | None:
        key = (obj.kind, id(obj), context)
        hit = self.old_memo.get(key)
        if hit is None or hit.obj is not obj:
            if destinations is not None:
                destinations.recording = []
            start = len(self.diagnostics)
            result = self._parse(obj, parser)
            hit = _Parsed(obj, result, self.diagnostics[start:], self.accepted.get(obj.ref),
                          frozenset(destinations.recording) if destinations is not None else frozenset())
            if destinations is not None:
                destinations.recording = None
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
        result = parser(obj, rep)
        self.diagnostics.extend(rep.items)
        if not rep.failed:
            self.accepted[obj.ref] = obj
            return result
        prev = self.previous.get(obj.ref)
        if prev is None or prev == obj:
            return None
        rep_prev = Reporter(file=prev.source, ref=prev.ref)
        result = parser(prev, rep_prev)
        if rep_prev.failed:
            return None
        self.accepted[obj.ref] = prev
        self.diagnostics.append(Diagnostic(Severity.WARNING, "kept-previous",
                                           "the new version has errors; the last accepted version keeps serving",
                                           obj.source, obj.ref, ""))
        return result


def _check_version(obj: ConfigObject, diags: list[Diagnostic]) -> bool:
    version = obj.api_version.rsplit("/", 1)[-1]
    if version not in API_VERSIONS:
        diags.append(Diagnostic(Severity.ERROR, "api-version", f"unsupported apiVersion {obj.api_version!r}; use "
                                f"{API_GROUP}/v1, v1beta1 or v1alpha3", obj.source, obj.ref, "apiVersion"))
        return False
    return True


def compile_istio(objects: Iterable[ConfigObject], *, accepted: Mapping[ObjectRef, ConfigObject] | None = None,
                  memo: ParseMemo | None = None, gateway_class: str = DEFAULT_GATEWAY_CLASS) -> Compiled:
    fb = _Fallback(accepted or {}, memo)
    diags = fb.diagnostics
    by_kind: dict[str, list[ConfigObject]] = {k: [] for k in KINDS | {"Service", "Secret", "EndpointSlice"}}
    gwapi: dict[str, list[ConfigObject]] = {k: [] for k in GATEWAY_API_KINDS}
    for obj in sorted(objects, key=lambda o: (o.namespace, o.name, o.kind)):
        if obj.group == API_GROUP and obj.kind in KINDS:
            if _check_version(obj, diags):
                by_kind[obj.kind].append(obj)
        elif obj.group == "" and obj.kind in ("Service", "Secret"):
            by_kind[obj.kind].append(obj)
        elif obj.group == "discovery.k8s.io" and obj.kind == "EndpointSlice":
            by_kind["EndpointSlice"].append(obj)
        elif (obj.group, obj.kind) in QUIET_KINDS:
            continue
        elif obj.group == GATEWAY_API_GROUP and obj.kind in GATEWAY_API_KINDS:
            gwapi[obj.kind].append(obj)
        elif obj.group == GATEWAY_API_GROUP:
            diags.append(Diagnostic(Severity.WARNING, "unsupported", f"Gateway API {obj.kind} is not translated yet",
                                    obj.source, obj.ref, "kind"))
        else:
            diags.append(Diagnostic(Severity.INFO, "ignored", f"kind {obj.kind} ({obj.api_version}) is not used "
                                    "by xds-server; ignored", obj.source, obj.ref, "kind"))

    services: list[Service] = []
    for obj in by_kind["ServiceEntry"]:
        services.extend(fb.parse(obj, parse_service_entry) or ())
    slices: dict[tuple[str, str], list[ConfigObject]] = {}
    for sl in by_kind["EndpointSlice"]:
        owner = sl.labels.get("kubernetes.io/service-name")
        if owner:
            slices.setdefault((sl.namespace, owner), []).append(sl)
    for obj in by_kind["Service"]:
        own = slices.get((obj.namespace, obj.name), [])
        services.extend(fb.parse(obj, lambda o, r, own=own: parse_kubernetes_service(o, r, own),
                                 context=hash(tuple(id(s) for s in own))) or ())
    registry = Registry(services)

    policies: dict[str, DestinationPolicy] = {}
    for obj in by_kind["DestinationRule"]:
        dr = fb.parse(obj, parse_destination_rule)
        if dr is None:
            continue
        host = registry.resolve(dr.host, obj.namespace)
        if host in policies:
            diags.append(Diagnostic(Severity.WARNING, "duplicate", f"host {host!r} already has DestinationRule "
                                    f"{policies[host].ref}; this one is ignored", obj.source, obj.ref, "spec.host"))
            continue
        policies[host] = dr

    secrets = [s for obj in by_kind["Secret"] if (s := fb.parse(obj, parse_secret)) is not None]
    gateways: list[Gateway] = [g for obj in by_kind["Gateway"] if (g := fb.parse(obj, parse_gateway)) is not None]
    _check_credentials(gateways, secrets, by_kind["Gateway"], diags)

    destinations = Destinations(registry=registry, policies=policies)
    # VirtualServices depend on every service and DestinationRule: reuse them only while those are unchanged
    context = hash(tuple(id(o) for kind in ("ServiceEntry", "Service", "DestinationRule") for o in by_kind[kind]))
    http_routes: list[HttpRoutes] = []
    for obj in by_kind["VirtualService"]:
        routes = fb.parse(obj, lambda o, r: parse_virtual_service(o, r, destinations=destinations),
                          context=context, destinations=destinations)
        if routes is not None:
            http_routes.append(routes)

    statuses: dict[ObjectRef, dict] = {}
    api_gateways, api_routes = _gateway_api(gwapi, registry=registry, referenced=destinations.referenced,
                                            gateway_class=gateway_class, diags=diags, statuses=statuses)
    gateways += api_gateways
    http_routes += api_routes
    _istio_statuses(diags, statuses)

    clusters = _clusters(registry=registry, policies=policies, referenced=destinations.referenced,
                         memo=fb.memo, old_memo=fb.old_memo)
    if any(c.cluster == BLACKHOLE_CLUSTER for hr in api_routes for r in hr.routes for c in r.clusters):
        clusters.append(Cluster(BLACKHOLE_CLUSTER, "blackhole", 0, "", True, TrafficPolicy(), "EDS", ()))
    model = Model(gateways=tuple(gateways), http_routes=tuple(http_routes), clusters=tuple(clusters),
                  services=tuple(registry.by_host.values()), secrets=tuple(secrets))
    return Compiled(model, diags, fb.accepted, fb.memo, statuses)


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
            diags.append(Diagnostic(Severity.INFO, "ignored", f"gatewayClassName {obj.spec.get('gatewayClassName')!r} "
                                    f"is not {gateway_class!r}; not ours", obj.source, obj.ref, "spec.gatewayClassName"))
            continue
        rep = Reporter(file=obj.source, ref=obj.ref)
        gw, status = parse_gateway_api_gateway(obj, rep)
        diags.extend(rep.items)
        statuses[obj.ref] = status
        if gw is not None:
            gateways.append(gw)
            listeners[f"{obj.namespace}/{obj.name}"] = {s.port_name: s.port for s in gw.servers}
    ctx = RouteContext(registry=registry, permitted=reference_grants(objs["ReferenceGrant"]), gateways=listeners,
                       referenced=referenced)
    routes: list[HttpRoutes] = []
    attached: dict[str, int] = {}
    for obj in objs["GRPCRoute"]:
        rep = Reporter(file=obj.source, ref=obj.ref)
        hr, status = parse_grpc_route(obj, rep, ctx)
        diags.extend(rep.items)
        statuses[obj.ref] = status
        if hr is not None:
            routes.append(hr)
            for key in hr.gateways:
                attached[key] = attached.get(key, 0) + 1
    for gw in gateways:
        for listener in statuses[gw.ref]["listeners"]:
            listener["attachedRoutes"] = attached.get(gw.key, 0)
    return gateways, routes


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
    """A credentialName that names no Secret: a warning (the Secret may come later); the server is not served."""
    have = {(s.namespace, s.name) for s in secrets if s.cert_pem}
    have_ca = {(s.namespace, s.name) for s in secrets if s.ca_pem}
    source = {o.ref: o.source for o in objects}
    for g in gateways:
        for i, server in enumerate(g.servers):
            if server.tls is None:
                continue
            name = server.tls.credential_name
            if (g.ref.namespace, name) not in have:
                diags.append(Diagnostic(Severity.WARNING, "unknown-secret", f"no TLS Secret {name!r} in namespace "
                                        f"{g.ref.namespace!r}; this server is not served until it exists",
                                        source.get(g.ref, ""), g.ref, f"spec.servers[{i}].tls.credentialName"))
            elif server.tls.mode == "MUTUAL" and (g.ref.namespace, name) not in have_ca \
                    and (g.ref.namespace, f"{name}-cacert") not in have_ca:
                diags.append(Diagnostic(Severity.WARNING, "unknown-secret", f"MUTUAL needs a client CA: ca.crt in "
                                        f"Secret {name!r} or a Secret {name}-cacert", source.get(g.ref, ""), g.ref,
                                        f"spec.servers[{i}].tls.mode"))


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

