"""Route attachment as the spec defines it, the same for GRPCRoute and HTTPRoute.

For each ``parentRef`` (a Gateway of our class):

1. the listeners it names: all of them, or the one ``sectionName`` names, narrowed by ``port``;
   none -> ``Accepted=False, NoMatchingParent``;
2. those that allow the route: its kind in ``allowedRoutes.kinds``, its namespace by
   ``allowedRoutes.namespaces`` (Same, All, or a label Selector on the Namespace); none ->
   ``NotAllowedByListeners``;
3. those whose hostname intersects one of the route's ``hostnames`` (wildcards included; no
   hostnames matches every listener); none -> ``NoMatchingListenerHostname``.

The route binds to exactly the listeners left (``KEY|LISTENER`` in :attr:`HttpRoutes.gateways`), so
a route bound to one listener never lands on another listener of the same port.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from translators import fields
from translators.conditions import condition
from translators.diagnostics import Reporter
from translators.gateway_api import CONTROLLER_NAME, GROUP
from translators.gateway_api.gateway import Listener
from translators.hosts import intersect
from translators.ir import GATEWAY_API_KEY_PREFIX
from translators.objects import ConfigObject


@dataclass(slots=True)
class Attached:
    #: ``KEY|LISTENER`` entries, and the listeners themselves
    bindings: list[str] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    #: per parentRef: (the parentRef as written, Accepted, reason, message)
    parents: list[tuple[dict, bool, str, str]] = field(default_factory=list)


def attach(obj: ConfigObject, rep: Reporter, *, kind: str, hostnames: Sequence[str],
           gateways: Mapping[str, Sequence[Listener]], labels_of: Callable[[str], dict]) -> Attached:
    out = Attached()
    ns = obj.namespace
    for i, p in enumerate(fields.sequence(obj.spec.get("parentRefs"), "spec.parentRefs", rep)):
        pp = f"spec.parentRefs[{i}]"
        pm = fields.mapping(p, pp, rep) or {}
        pkind = fields.string(pm.get("kind"), f"{pp}.kind", rep) or "Gateway"
        pgroup = pm.get("group", GROUP) or ""
        pns = fields.string(pm.get("namespace"), f"{pp}.namespace", rep) or ns
        name = fields.string(pm.get("name"), f"{pp}.name", rep, required=True)
        section = fields.string(pm.get("sectionName"), f"{pp}.sectionName", rep)
        port = fields.port_number(pm.get("port"), f"{pp}.port", rep)
        key = f"{pns}/{name}"
        if pkind != "Gateway" or pgroup != GROUP or key not in gateways:
            out.parents.append((pm, False, "NoMatchingParent", f"no Gateway {key} of our class"))
            continue
        candidates = [l for l in gateways[key] if (section is None or l.name == section)
                      and (port is None or l.port == port)]
        if not candidates:
            what = " ".join(x for x in (f"sectionName {section!r}" if section else "", f"port {port}" if port else "") if x)
            out.parents.append((pm, False, "NoMatchingParent", f"Gateway {key} has no listener with {what}"))
            continue
        gw_ns = pns
        allowed = [l for l in candidates if kind in l.kinds and l.admits_namespace(ns, gw_ns, labels_of)]
        if not allowed:
            out.parents.append((pm, False, "NotAllowedByListeners",
                                f"no listener of Gateway {key} allows {kind}s from namespace {ns}"))
            continue
        matching = [l for l in allowed if any(intersect(l.hostname, h) is not None for h in hostnames)]
        if not matching:
            out.parents.append((pm, False, "NoMatchingListenerHostname",
                                f"no listener hostname of Gateway {key} intersects {', '.join(hostnames)}"))
            continue
        out.parents.append((pm, True, "Accepted", ""))
        for l in matching:
            entry = f"{GATEWAY_API_KEY_PREFIX}{key}|{l.name}"
            if entry not in out.bindings:
                out.bindings.append(entry)
                out.listeners.append(l)
    return out


def route_status(attached: Attached, resolved: dict, *, generation: int | None) -> dict:
    """The route's ``status.parents``: Accepted (with its reason) and ResolvedRefs, per parentRef."""
    parents = []
    for pm, ok, reason, message in attached.parents:
        conditions = [condition("Accepted", ok, reason, message), dict(resolved)]
        if generation is not None:
            for c in conditions:
                c["observedGeneration"] = generation
        parents.append({"parentRef": {k: v for k, v in pm.items() if k in ("group", "kind", "namespace", "name",
                                                                            "sectionName", "port")},
                        "controllerName": CONTROLLER_NAME, "conditions": conditions})
    return {"parents": parents}
