"""Gateway API objects (by kind) -> gateways and routes of the IR, with their statuses.

Few objects in practice, so the compile step re-runs this over all of them when one changes.
"""
from __future__ import annotations

from typing import Callable, Mapping

from translators import diagnostics, fields
from translators.conditions import condition
from translators.diagnostics import Diagnostic, Reporter, Severity
from translators.gateway_api import CONTROLLER_NAME, GROUP
from translators.gateway_api.attach import attach, route_status
from translators.gateway_api.gateway import Listener, parse_gateway
from translators.gateway_api.grpcroute import RouteContext, grpc_rules, reference_grants
from translators.gateway_api.httproute import http_rules
from translators.hosts import Registry, intersect, matches
from translators.ir import GATEWAY_API_KEY_PREFIX, Gateway, HttpRoutes
from translators.objects import ConfigObject, ObjectRef

#: the kinds this dialect reads
KINDS = frozenset({"Gateway", "GRPCRoute", "HTTPRoute", "ReferenceGrant", "GatewayClass"})


def compile_gateway_api(objs: dict[str, list[ConfigObject]], *, registry: Registry, referenced: set, gateway_class: str,
                        diags: list[Diagnostic], statuses: dict[ObjectRef, dict],
                        secret_ok: Callable[[str, str], bool] = lambda ns, name: True,
                        namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
                        addresses: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
                        default_addresses: tuple[str, ...] = ()) -> tuple[list[Gateway], list[HttpRoutes]]:
    """Gateways of our class and the GRPCRoutes and HTTPRoutes attached to them, with their statuses.
    Backends resolve against ``registry``; the (host, port, subset) of every cluster a route names is added
    to ``referenced``.  ``addresses``: per Gateway (namespace, name), the addresses of the Service in front of
    its Envoys; ``default_addresses`` (``serve --gateway-address``) otherwise."""
    labels = namespace_labels or {}
    for gc in objs["GatewayClass"]:
        # ours by name (the class we serve) or by controllerName (the spec's: a controller accepts its classes)
        if gc.name == gateway_class or gc.spec.get("controllerName") == CONTROLLER_NAME:
            statuses[gc.ref] = {"conditions": _stamped([condition("Accepted", True, "Accepted")], gc)}
    gateways: list[Gateway] = []
    listeners: dict[str, list] = {}
    gateway_status: dict[str, tuple[ConfigObject, dict]] = {}
    cert_grants = reference_grants(objs["ReferenceGrant"], from_kind="Gateway", to_kind="Secret")
    for obj in objs["Gateway"]:
        if obj.spec.get("gatewayClassName") != gateway_class:
            diags.append(Diagnostic(Severity.WARNING, "other-class", f"Gateway ({obj.api_version}) has gatewayClassName "
                                    f"{obj.spec.get('gatewayClassName')!r}, not {gateway_class!r}: not translated; set "
                                    f"gatewayClassName: {gateway_class} or run with --gateway-class "
                                    f"{obj.spec.get('gatewayClassName')}", obj.source, obj.ref, "spec.gatewayClassName"))
            continue
        rep = Reporter(file=obj.source, ref=obj.ref)
        found = (addresses or {}).get((obj.namespace, obj.name)) or default_addresses
        gw, ls, status = diagnostics.isolated(parse_gateway, obj, rep, secret_ok=secret_ok,
                                              certificate_permitted=cert_grants,
                                              addresses=found) or (None, [], None)
        diags.extend(rep.items)
        key = f"{obj.namespace}/{obj.name}"
        if status is not None:
            statuses[obj.ref] = status
            gateway_status[key] = (obj, status)
        if gw is not None:
            gateways.append(gw)
            listeners[key] = ls
    routes: list[HttpRoutes] = []
    attached: dict[tuple[str, str], int] = {}
    existing = {f"{o.namespace}/{o.name}" for o in objs["Gateway"]}  # of any class
    for kind, rules in (("GRPCRoute", grpc_rules), ("HTTPRoute", http_rules)):
        ctx = RouteContext(registry=registry, permitted=reference_grants(objs["ReferenceGrant"], from_kind=kind),
                           referenced=referenced)
        for obj in objs[kind]:
            rep = Reporter(file=obj.source, ref=obj.ref)
            hrs, status = diagnostics.isolated(_route, obj, rep, kind, rules, ctx, listeners,
                                               lambda ns: labels.get(ns, {})) or ((), None)
            diags.extend(rep.items)
            if status is not None:
                statuses[obj.ref] = status
                diags.extend(_route_status_diagnostics(obj, status, existing))
            routes.extend(hrs)
            for entry in {e for hr in hrs for e in hr.gateways}:
                gkey, _, lname = entry[len(GATEWAY_API_KEY_PREFIX):].partition("|")
                attached[(gkey, lname)] = attached.get((gkey, lname), 0) + 1
    for key, (obj, status) in gateway_status.items():
        for listener in status["listeners"]:
            listener["attachedRoutes"] = attached.get((key, listener["name"]), 0)
            _stamped(listener["conditions"], obj)
        _stamped(status["conditions"], obj)
    return gateways, routes


def _generation(obj: ConfigObject) -> int | None:
    return obj.generation


def _stamped(conditions: list[dict], obj: ConfigObject) -> list[dict]:
    """Every condition carries the ``observedGeneration`` it was computed from."""
    g = _generation(obj)
    if g is not None:
        for c in conditions:
            c["observedGeneration"] = g
    return conditions


def _isolated_hosts(listener: Listener, hostnames: tuple[str, ...], siblings: list[Listener]) -> tuple[str, ...] | None:
    """Listener isolation (GEP-1713): a request goes to the most specific listener of its port that matches
    it, so the route's hosts (intersected with ``listener``'s hostname) that a more specific listener of the
    same port covers entirely are not served through ``listener``.  None: nothing is taken away (the
    route's own hostnames are kept as they are)."""
    narrower = [l.hostname for l in siblings if l.accepted and l.port == listener.port and l.name != listener.name
                and l.hostname != listener.hostname and matches(listener.hostname, l.hostname)]
    if not narrower:
        return None
    effective = [e for h in hostnames if (e := intersect(listener.hostname, h)) is not None]
    kept = tuple(dict.fromkeys(e for e in effective if not any(matches(n, e) for n in narrower)))
    return None if len(kept) == len(set(effective)) else kept


def _route(obj: ConfigObject, rep: Reporter, kind: str, rules: Callable, ctx: RouteContext,
           listeners: Mapping[str, list], labels_of: Callable[[str], dict]) -> tuple[tuple[HttpRoutes, ...], dict]:
    """One route: attach it to listeners, compile its rules, and compute its status.  Usually one
    :class:`HttpRoutes`; one per distinct host set when listener isolation narrows the hosts of some
    listeners (those left with no host still count as attached)."""
    hostnames = tuple(str(h) for h in fields.sequence(obj.spec.get("hostnames"), "spec.hostnames", rep)) or ("*",)
    attached = attach(obj, rep, kind=kind, hostnames=hostnames, gateways=listeners, labels_of=labels_of)
    compiled, resolved = rules(obj, rep, ctx)
    bad = [s for s in resolved if not s[0]]
    refs = condition("ResolvedRefs", not bad, bad[0][1] if bad else "ResolvedRefs", bad[0][2] if bad else "")
    if rep.failed:  # an invalid value: not accepted anywhere, and the status says why
        first = next(d for d in rep.items if d.severity is Severity.ERROR)
        attached.parents = [(pm, False, "UnsupportedValue", f"{first.field_path}: {first.message}")
                            for pm, _, _, _ in attached.parents]
        attached.bindings = []
    status = route_status(attached, refs, generation=_generation(obj))
    if not attached.bindings:
        return (), status
    by_hosts: dict[tuple[str, ...], list[str]] = {}
    for entry, listener in zip(attached.bindings, attached.listeners):
        hosts = _isolated_hosts(listener, hostnames, listeners.get(listener.gateway, []))
        by_hosts.setdefault(hostnames if hosts is None else hosts, []).append(entry)
    # hosts (): attached (attachedRoutes counts it), but every host belongs to a more specific listener
    return tuple(HttpRoutes(obj.ref, hosts, tuple(entries), tuple(compiled))
                 for hosts, entries in by_hosts.items()), status


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
                                      f"({GROUP}) in the config; the route is not attached; {text}",
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
