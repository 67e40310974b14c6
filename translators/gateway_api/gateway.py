"""Gateway API ``Gateway`` -> :class:`translators.ir.Gateway` (selected by the gateway-name label), its
listeners as attachment targets, and its status.

Only Gateways whose ``gatewayClassName`` is ours are served.  Listeners: HTTP and HTTPS (TLS mode
Terminate, ``certificateRefs`` to Secrets, in another namespace with a ReferenceGrant), each with a
``hostname`` and ``allowedRoutes`` (``namespaces.from`` Same, All or Selector; ``kinds``).  Status as the
spec defines it: Gateway Accepted and Programmed with ``addresses``; per listener Accepted, Programmed,
ResolvedRefs (InvalidCertificateRef, InvalidRouteKinds, RefNotPermitted) and Conflicted, ``supportedKinds``;
``attachedRoutes`` is filled in by the dialect once routes are attached.  No ``infrastructure.parametersRef``
kind is supported: a Gateway with one is not accepted (InvalidParameters) and not served.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from translators import fields
from translators.health import grpc_stats_all_methods
from translators.conditions import condition
from translators.diagnostics import Reporter
from translators.gateway_api import GROUP
from translators.ir import Gateway, GatewayServer, ServerTls
from translators.objects import ConfigObject

PROTOCOLS = frozenset({"HTTP", "HTTPS"})
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: the route kinds an HTTP/HTTPS listener takes when ``allowedRoutes.kinds`` is not given
DEFAULT_KINDS = ("HTTPRoute", "GRPCRoute")


@dataclass(frozen=True, slots=True)
class Listener:
    """One listener of one of our Gateways, as routes attach to it."""

    gateway: str  # "ns/name"
    name: str
    port: int
    hostname: str  # "*" when absent
    namespace_from: str  # Same | All | Selector
    #: Selector: matchLabels pairs and matchExpressions (key, operator, values)
    selector: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    kinds: tuple[str, ...] = DEFAULT_KINDS
    programmed: bool = True
    accepted: bool = True

    def admits_namespace(self, namespace: str, gateway_namespace: str, labels_of: Callable[[str], dict]) -> bool:
        if self.namespace_from == "All":
            return True
        if self.namespace_from == "Same":
            return namespace == gateway_namespace
        # Kubernetes (1.22+) labels every Namespace with its name, immutably: present even when the Namespace
        # object is not in the config
        labels = {**labels_of(namespace), NAMESPACE_NAME_LABEL: namespace}
        if not all(labels.get(k) == v for k, v in self.selector):
            return False
        for key, op, values in self.expressions:
            present = key in labels
            if op == "In" and (not present or labels[key] not in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


def _kinds(value: Any, path: str, rep: Reporter) -> tuple[tuple[str, ...], list[str]]:
    """``allowedRoutes.kinds`` -> (supported kinds, unsupported ``group/kind`` names)."""
    if value is None:
        return DEFAULT_KINDS, []
    good, bad = [], []
    for i, k in enumerate(fields.sequence(value, path, rep)):
        m = fields.mapping(k, f"{path}[{i}]", rep) or {}
        group = m.get("group", GROUP) or ""
        kind = m.get("kind")
        if group == GROUP and kind in DEFAULT_KINDS:
            if kind not in good:
                good.append(kind)
        else:
            bad.append(f"{group}/{kind}")
    return tuple(good), bad


def parse_gateway(obj: ConfigObject, rep: Reporter, *, secret_ok: Callable[[str, str], bool],
                  certificate_permitted: Callable[[str, str, str], bool],
                  addresses: tuple[str, ...] = ()) -> tuple[Gateway | None, list[Listener], dict]:
    """The IR gateway (None when it has no servable listener), its listeners and its status."""
    spec = obj.spec
    servers = []
    listeners: list[Listener] = []
    listener_status = []
    seen: dict[tuple[int, str], str] = {}
    key = f"{obj.namespace}/{obj.name}"
    for i, l in enumerate(fields.sequence(spec.get("listeners"), "spec.listeners", rep)):
        lp = f"spec.listeners[{i}]"
        m = fields.mapping(l, lp, rep) or {}
        name = fields.string(m.get("name"), f"{lp}.name", rep, required=True) or f"listener-{i}"
        port = fields.port_number(m.get("port"), f"{lp}.port", rep, required=True)
        protocol = (fields.string(m.get("protocol"), f"{lp}.protocol", rep, required=True) or "").upper()
        hostname = fields.string(m.get("hostname"), f"{lp}.hostname", rep) or "*"
        allowed = fields.mapping(m.get("allowedRoutes"), f"{lp}.allowedRoutes", rep) or {}
        nsm = allowed.get("namespaces") if isinstance(allowed.get("namespaces"), dict) else {}
        ns_from = nsm.get("from") or "Same"
        selector: tuple = ()
        expressions: tuple = ()
        if ns_from == "Selector":
            sel = fields.mapping(nsm.get("selector"), f"{lp}.allowedRoutes.namespaces.selector", rep) or {}
            selector = fields.labels(sel.get("matchLabels"), f"{lp}.allowedRoutes.namespaces.selector.matchLabels", rep)
            exprs = []
            for j, e in enumerate(fields.sequence(sel.get("matchExpressions"),
                                                  f"{lp}.allowedRoutes.namespaces.selector.matchExpressions", rep)):
                em = e if isinstance(e, dict) else {}
                exprs.append((str(em.get("key", "")), str(em.get("operator", "")),
                              tuple(str(v) for v in em.get("values") or ())))
            expressions = tuple(exprs)
        elif ns_from not in ("Same", "All"):
            rep.error(f"{lp}.allowedRoutes.namespaces.from", f"must be Same, All or Selector, got {ns_from!r}")
        kinds, bad_kinds = _kinds(allowed.get("kinds"), f"{lp}.allowedRoutes.kinds", rep)
        tls = None
        accepted, a_reason, a_message = True, "Accepted", ""
        refs_ok, r_reason, r_message = True, "ResolvedRefs", ""
        if protocol not in PROTOCOLS:
            accepted, a_reason, a_message = False, "UnsupportedProtocol", f"protocol {protocol} is not served (HTTP, HTTPS)"
            rep.warning(f"{lp}.protocol", a_message, code="unsupported")
            kinds = ()
        elif protocol == "HTTPS":
            t = fields.mapping(m.get("tls"), f"{lp}.tls", rep) or {}
            refs = fields.sequence(t.get("certificateRefs"), f"{lp}.tls.certificateRefs", rep)
            if (t.get("mode") or "Terminate") != "Terminate":
                accepted, a_reason, a_message = False, "UnsupportedValue", "only tls.mode Terminate is served"
                rep.warning(f"{lp}.tls.mode", a_message, code="unsupported")
            elif not refs:
                refs_ok, r_reason, r_message = False, "InvalidCertificateRef", "an HTTPS listener needs a certificateRef"
                rep.warning(f"{lp}.tls.certificateRefs", r_message, code="InvalidCertificateRef")
            else:
                ref = refs[0] if isinstance(refs[0], dict) else {}
                ref_ns = ref.get("namespace") or obj.namespace
                ref_name = str(ref.get("name", ""))
                if (ref.get("group") or "") not in ("", "core") or (ref.get("kind") or "Secret") != "Secret":
                    refs_ok, r_reason, r_message = False, "InvalidCertificateRef", "certificateRefs must name a Secret"
                elif ref_ns != obj.namespace and not certificate_permitted(obj.namespace, ref_ns, ref_name):
                    refs_ok, r_reason, r_message = False, "RefNotPermitted", (
                        f"Secret {ref_ns}/{ref_name} is in another namespace and no ReferenceGrant there permits it")
                elif not secret_ok(ref_ns, ref_name):
                    refs_ok, r_reason, r_message = False, "InvalidCertificateRef", (
                        f"Secret {ref_ns}/{ref_name} does not exist or is not a valid TLS Secret")
                else:  # in another namespace only with a ReferenceGrant (checked above)
                    tls = ServerTls("SIMPLE", ref_name,
                                    credential_namespace=ref_ns if ref_ns != obj.namespace else "")
                if not refs_ok:
                    rep.warning(f"{lp}.tls.certificateRefs[0]", r_message, code=r_reason)
        if bad_kinds:
            refs_ok, r_reason, r_message = False, "InvalidRouteKinds", f"unsupported route kinds: {', '.join(bad_kinds)}"
            rep.warning(f"{lp}.allowedRoutes.kinds", r_message, code="InvalidRouteKinds")
        conflicted = False
        if port is not None:
            other = seen.get((port, hostname))
            if other is not None:
                conflicted = True
                accepted, a_reason, a_message = False, "HostnameConflict", f"listener {other} has the same port and hostname"
                rep.warning(f"{lp}.hostname", a_message, code="conflict")
            seen.setdefault((port, hostname), name)
        programmed = accepted and refs_ok and port is not None and (protocol != "HTTPS" or tls is not None)
        listener_status.append({
            "name": name, "supportedKinds": [{"group": GROUP, "kind": k} for k in kinds], "attachedRoutes": 0,
            "conditions": [condition("Accepted", accepted, a_reason, a_message),
                           condition("ResolvedRefs", refs_ok, r_reason, r_message),
                           condition("Programmed", programmed, "Programmed" if programmed else "Invalid",
                                     "" if programmed else (r_message or a_message)),
                           condition("Conflicted", conflicted, "HostnameConflict" if conflicted else "NoConflicts")]})
        if port is not None:
            # a listener that is not accepted still exists for parentRefs (sectionName, port): it allows no route
            # kind, so a route naming it is NotAllowedByListeners rather than NoMatchingParent
            listeners.append(Listener(key, name, port, hostname, ns_from if ns_from in ("Same", "All", "Selector")
                                      else "Same", selector, expressions, kinds if accepted else (), programmed,
                                      accepted))
        if programmed:
            servers.append(GatewayServer(port, name, protocol, (("*", hostname),), tls,
                                         grpc_stats_all=grpc_stats_all_methods(obj.annotations, rep)))
    # Accepted: True while at least one listener is; ListenersNotValid (with True or False) once one is not
    not_accepted = [ls["name"] for ls in listener_status
                    if any(c["type"] == "Accepted" and c["status"] != "True" for c in ls["conditions"])]
    if not_accepted:
        gw_accepted = condition("Accepted", len(not_accepted) < len(listener_status), "ListenersNotValid",
                                f"listeners not accepted: {', '.join(not_accepted)}")
    else:
        gw_accepted = condition("Accepted", True, "Accepted")
    infra = fields.mapping(spec.get("infrastructure"), "spec.infrastructure", rep) or {}
    params = infra.get("parametersRef")
    rejected = ""
    if params is not None:
        # no parameters resource is implemented, so every parametersRef names an unsupported kind (or nothing):
        # the spec's Accepted=False/InvalidParameters, and the Gateway is not served
        pm = params if isinstance(params, dict) else {}
        rejected = (f"spec.infrastructure.parametersRef {pm.get('group') or 'core'}/{pm.get('kind')} "
                    f"{pm.get('name')!r}: no parameters resource is supported")
        rep.warning("spec.infrastructure.parametersRef", rejected, code="InvalidParameters")
        gw_accepted = condition("Accepted", False, "InvalidParameters", rejected)
        servers = []
        for ls in listener_status:
            ls["conditions"] = [c if c["type"] != "Programmed" else condition("Programmed", False, "Invalid", rejected)
                                for c in ls["conditions"]]
    status = {"conditions": [gw_accepted,
                             condition("Programmed", bool(servers), "Programmed" if servers else "Invalid",
                                       "" if servers else (rejected or "no listener can be served"))],
              "listeners": listener_status}
    if addresses:
        status["addresses"] = [{"type": "IPAddress" if fields.is_ip(a) else "Hostname", "value": a} for a in addresses]
    if rep.failed or rejected:
        return None, [], status
    return Gateway(obj.ref, (), tuple(servers), gateway_api=True), listeners, status
