"""Gateway API objects (by kind) -> gateways and routes of the IR, with their statuses.

Few objects in practice, so the compile step re-runs this over all of them when one changes.
"""
from __future__ import annotations

from translators import diagnostics
from translators.diagnostics import Diagnostic, Reporter, Severity
from translators.gateway_api import GROUP
from translators.conditions import condition
from translators.gateway_api.gateway import parse_gateway
from translators.gateway_api.grpcroute import RouteContext, parse_grpc_route, reference_grants
from translators.hosts import Registry
from translators.ir import Gateway, HttpRoutes
from translators.objects import ConfigObject, ObjectRef

#: the kinds this dialect reads
KINDS = frozenset({"Gateway", "GRPCRoute", "ReferenceGrant", "GatewayClass"})


def compile_gateway_api(objs: dict[str, list[ConfigObject]], *, registry: Registry, referenced: set, gateway_class: str,
                 diags: list[Diagnostic], statuses: dict[ObjectRef, dict]) -> tuple[list[Gateway], list[HttpRoutes]]:
    """Gateways of our class and the GRPCRoutes attached to them, with their statuses.  Backends resolve
    against ``registry``; the (host, port, subset) of every cluster a route names is added to ``referenced``."""
    for gc in objs["GatewayClass"]:
        if gc.name == gateway_class:
            statuses[gc.ref] = {"conditions": [condition("Accepted", True, "Accepted")]}
    gateways: list[Gateway] = []
    listeners: dict[str, dict[str, int]] = {}
    for obj in objs["Gateway"]:
        if obj.spec.get("gatewayClassName") != gateway_class:
            diags.append(Diagnostic(Severity.WARNING, "other-class", f"Gateway ({obj.api_version}) has gatewayClassName "
                                    f"{obj.spec.get('gatewayClassName')!r}, not {gateway_class!r}: not translated; set "
                                    f"gatewayClassName: {gateway_class} or run with --gateway-class "
                                    f"{obj.spec.get('gatewayClassName')}", obj.source, obj.ref, "spec.gatewayClassName"))
            continue
        rep = Reporter(file=obj.source, ref=obj.ref)
        gw, status = diagnostics.isolated(parse_gateway, obj, rep) or (None, None)
        diags.extend(rep.items)
        if status is not None:
            statuses[obj.ref] = status
        if gw is not None:
            gateways.append(gw)
            listeners[f"{obj.namespace}/{obj.name}"] = {s.port_name: s.port for s in gw.servers}
    ctx = RouteContext(registry=registry, permitted=reference_grants(objs["ReferenceGrant"]), gateways=listeners,
                       referenced=referenced)
    routes: list[HttpRoutes] = []
    attached: dict[str, int] = {}
    existing = {f"{o.namespace}/{o.name}" for o in objs["Gateway"]}  # of any class
    for obj in objs["GRPCRoute"]:
        rep = Reporter(file=obj.source, ref=obj.ref)
        hr, status = diagnostics.isolated(parse_grpc_route, obj, rep, ctx) or (None, None)
        diags.extend(rep.items)
        if status is not None:
            statuses[obj.ref] = status
            diags.extend(_route_status_diagnostics(obj, status, existing))
        if hr is not None:
            routes.append(hr)
            for key in hr.gateways:
                attached[key] = attached.get(key, 0) + 1
    for gw in gateways:
        for listener in statuses[gw.ref]["listeners"]:
            listener["attachedRoutes"] = attached.get(gw.key, 0)
    return gateways, routes


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
