"""Routes that can never be reached, found on the IR (a pure analysis, no xDS).

Several VirtualServices for the same host are merged, in VirtualService order,
into one virtual host (see :mod:`translators.gateway_view`), and Envoy takes the
first route that matches.  So a route that matches everything -- no match, or
only ``uri: {prefix: /}`` -- hides every route after it, often one from another
VirtualService that merely sorts later (``grpc-resilience`` before
``grpc-routing``).  Each such case is a warning on the object whose routes are
hidden, naming the object and route that hide them.

The reverse trap of gRPC-Web guides: a route carrying the ``corsPolicy`` that
matches only ``content-type: application/grpc-web*`` never sees a CORS
preflight (``OPTIONS`` has no such content-type), so a later catch-all without
a ``corsPolicy`` takes the preflight and sends it to the backend.

Only Istio Gateways are analysed: the virtual hosts are the ones an Envoy whose
labels equal each Gateway's selector would get.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from translators import ir
from translators.by_identity import came_and_went, changed_positions
from translators.diagnostics import Diagnostic, Severity
from translators.gateway_view import gateway_listeners
from translators.objects import ObjectRef

CODE_SHADOWED = "shadowed-route"
CODE_PREFLIGHT = "grpc-web-preflight-shadowed"


def matches_everything(route: ir.Route) -> bool:
    """No conditions other than port/gateway (already applied by the merge): every request matches."""
    m = route.match
    if m.headers or m.query_params:
        return False
    p = m.path
    if p is None:
        return True
    if p.kind in ("prefix", "segment"):
        return p.value in ("", "/")
    if p.kind == "regex":
        return p.value in (".*", "/.*", "^/.*", "^.*$", "/.*$", "^/.*$")
    return False


def _grpc_web_only(route: ir.Route) -> bool:
    """Matches only requests with ``content-type: application/grpc-web*`` (which a preflight never has)."""
    return any(h.name.lower() == "content-type" and not h.invert and h.match.kind in ("exact", "prefix", "regex")
               and "grpc-web" in h.match.value for h in route.match.headers)


def _field_path(route: ir.Route) -> str:
    """``spec.http[N]`` from a default route name ``ns/name/http[N](.M)``; "" for named routes."""
    ref = route.source
    if ref is None:
        return ""
    prefix = f"{ref.namespace}/{ref.name}/"
    if not route.name.startswith(prefix):
        return ""
    rest = route.name[len(prefix):]
    return "spec." + rest.split("].", 1)[0] + ("]" if "]." in rest else "")


def _owner(route: ir.Route) -> str:
    return str(route.source) if route.source is not None else "<unknown>"


def virtual_hosts(model: ir.Model, *, memo: dict | None = None) -> Iterable[tuple[ir.HttpListener, ir.VirtualHost]]:
    """Every merged virtual host of every Istio Gateway selection, once per distinct selection."""
    for _, listener in _selections(model, memo):
        for vhost in listener.virtual_hosts:
            yield listener, vhost


_MEMO_KEY = ("route-analysis",)
_RESULT_KEY = ("route-analysis-result",)


def _selections(model: ir.Model, memo: dict | None) -> list[tuple[tuple, ir.HttpListener]]:
    """The listeners of each distinct selection of Istio Gateways (the Envoy whose labels equal a
    Gateway's selector)."""
    out = []
    seen: set[frozenset[str]] = set()
    for g in model.gateways:
        if g.gateway_api:
            continue
        labels, namespace = dict(g.selector), g.ref.namespace
        selection = frozenset(x.key for x in model.gateways if x.selects(labels, namespace))
        if selection in seen:
            continue
        seen.add(selection)
        out += [((), l) for l in gateway_listeners(model, labels=labels, namespace=namespace, memo=memo)]
    return out


def listeners_vh(listeners: list[ir.HttpListener]) -> tuple:
    return tuple(l.virtual_hosts for l in listeners)


def _findings(routes: tuple[ir.Route, ...]) -> tuple[list, list]:
    """What one merged virtual host shows: (shadowing catch-alls, CORS routes whose preflights a later
    catch-all takes), each with the key that deduplicates it across hosts and ports."""
    shadow = []
    first = next((i for i, r in enumerate(routes) if matches_everything(r)), None)
    if first is not None and first + 1 < len(routes):
        catch_all = routes[first]
        by_owner: dict[ObjectRef | None, list[ir.Route]] = {}
        for r in routes[first + 1:]:
            by_owner.setdefault(r.source, []).append(r)
        for owner, hidden in by_owner.items():
            shadow.append(((catch_all.name, owner, tuple(r.name for r in hidden)), catch_all, hidden))
    pre = []
    for i, r in enumerate(routes):
        if r.cors is None or not _grpc_web_only(r):
            continue
        later = next((c for c in routes[i + 1:] if matches_everything(c)), None)
        if later is None or later.cors is not None:
            continue
        pre.append(((r.name, later.name), r, later))
    return shadow, pre


def analyze(model: ir.Model, *, sources: Mapping[ObjectRef, str] | None = None,
            memo: dict | None = None) -> list[Diagnostic]:
    """Warnings for routes hidden behind an earlier catch-all, and for gRPC-Web CORS routes whose
    preflights a catch-all takes; deduplicated across hosts and ports (which the message lists)."""
    sources = sources or {}
    selections = _selections(model, memo)
    if memo is not None:
        # the same merged virtual hosts as last time: the same findings
        listeners = [l for _, l in selections]
        signature = tuple(id(l.virtual_hosts) for l in listeners)
        last = memo.get(_RESULT_KEY)
        if last is not None and last[0] == signature and all(a is b for a, b in zip(last[1], listeners_vh(listeners))):
            return list(last[2])
    shadowed: dict[tuple[str, ObjectRef | None, tuple[str, ...]], tuple[ir.Route, list[ir.Route], list[str]]] = {}
    preflight: dict[tuple[str, str], tuple[ir.Route, ir.Route, list[str]]] = {}
    previous = memo.get(_MEMO_KEY, {}) if memo is not None else {}
    kept: dict[tuple, tuple] = {}
    for n, (_, listener) in enumerate(selections):
        # per listener: the virtual hosts with findings (by domain); only hosts that are new objects are
        # analysed -- found by position when no host came or went (a route edit), by domain otherwise
        vhosts = listener.virtual_hosts
        key = (n, listener.name)
        last = previous.get(key)
        if last is not None and last[0] is vhosts:
            entry = last
        else:
            before_vhosts, before_found = (last[0], last[1]) if last is not None else ((), {})
            found = dict(before_found)
            changed = None
            if len(before_vhosts) == len(vhosts):
                at = changed_positions(before_vhosts, vhosts)  # told by the view, else found at C speed
                if all(before_vhosts[i].domains[0] == vhosts[i].domains[0] for i in at):
                    changed = [vhosts[i] for i in at]
            if changed is None:  # hosts came or went: the host objects that came, and the findings of those gone
                changed, went = came_and_went(before_vhosts, vhosts)
                for v in went:
                    hit = found.get(v.domains[0])
                    if hit is not None and hit[0] is v:
                        del found[v.domains[0]]
            for v in changed:
                found.pop(v.domains[0], None)
                shadow, pre = _findings(v.routes)
                if shadow or pre:
                    found[v.domains[0]] = (v, (shadow, pre))
            entry = (vhosts, found)
        kept[key] = entry
        for vhost, (shadow, pre) in sorted(entry[1].values(), key=lambda h: h[0].domains[0]):  # the tuple's order
            where = f"{vhost.domains[0]} (port {listener.port})"
            for k, catch_all, hidden in shadow:
                agg = shadowed.setdefault(k, (catch_all, hidden, []))
                if where not in agg[2]:
                    agg[2].append(where)
            for k, r, later in pre:
                agg = preflight.setdefault(k, (r, later, []))
                if where not in agg[2]:
                    agg[2].append(where)
    if memo is not None:
        memo[_MEMO_KEY] = kept

    out: list[Diagnostic] = []
    for (_, owner, _), (catch_all, hidden, wheres) in shadowed.items():
        names = ", ".join(repr(r.name) for r in hidden)
        same = catch_all.source == owner
        by = f"route {catch_all.name!r} of " + ("this same object" if same else _owner(catch_all))
        out.append(Diagnostic(
            Severity.WARNING, CODE_SHADOWED,
            f"route{'s' if len(hidden) > 1 else ''} {names} can never be reached on {', '.join(wheres)}: {by} "
            f"comes earlier in the merged virtual host and matches every request (VirtualServices for one host are "
            f"merged in namespace/name order); give it a match or move it last",
            sources.get(owner, "") if owner is not None else "", owner, _field_path(hidden[0])))
    for (_, _), (cors_route, catch_all, wheres) in preflight.items():
        out.append(Diagnostic(
            Severity.WARNING, CODE_PREFLIGHT,
            f"CORS preflights (OPTIONS) carry no content-type application/grpc-web, so route {cors_route.name!r} "
            f"and its corsPolicy never see them on {', '.join(wheres)}: catch-all route {catch_all.name!r} of "
            f"{_owner(catch_all)} has no corsPolicy and sends them to the backend; match the preflight too "
            f"(e.g. a match on method OPTIONS) or give the catch-all the corsPolicy",
            sources.get(cors_route.source, "") if cors_route.source is not None else "", cors_route.source,
            _field_path(cors_route)))
    if memo is not None:
        memo[_RESULT_KEY] = (signature, listeners_vh(listeners), list(out))
    return out
