"""Gateway API ``Gateway`` -> :class:`translators.ir.Gateway` (selected by the gateway-name label).

Only Gateways whose ``gatewayClassName`` is ours are served.  Listeners: HTTP and HTTPS (TLS mode
Terminate, ``certificateRefs`` to Secrets in the Gateway's namespace) by port and hostname;
``allowedRoutes.namespaces.from`` Same or All.
"""
from __future__ import annotations

from translators.diagnostics import Reporter
from translators.conditions import condition
from translators.ir import Gateway, GatewayServer, ServerTls
from translators import fields
from translators.objects import ConfigObject

PROTOCOLS = frozenset({"HTTP", "HTTPS"})


def parse_gateway(obj: ConfigObject, rep: Reporter) -> tuple[Gateway | None, dict]:
    """The IR gateway (None when it has no servable listener) and its status."""
    spec = obj.spec
    servers = []
    listener_status = []
    for i, l in enumerate(fields.sequence(spec.get("listeners"), "spec.listeners", rep)):
        lp = f"spec.listeners[{i}]"
        m = fields.mapping(l, lp, rep) or {}
        name = fields.string(m.get("name"), f"{lp}.name", rep, required=True) or f"listener-{i}"
        port = fields.port_number(m.get("port"), f"{lp}.port", rep, required=True)
        protocol = (fields.string(m.get("protocol"), f"{lp}.protocol", rep, required=True) or "").upper()
        hostname = fields.string(m.get("hostname"), f"{lp}.hostname", rep) or "*"
        allowed = fields.mapping(m.get("allowedRoutes"), f"{lp}.allowedRoutes", rep) or {}
        ns_from = ((allowed.get("namespaces") or {}).get("from") or "Same") if isinstance(allowed.get("namespaces"), dict) \
            else "Same"
        if ns_from == "Selector":
            rep.warning(f"{lp}.allowedRoutes.namespaces.from", "namespace selectors are not evaluated yet; "
                        "routes from all namespaces are allowed", code="unsupported")
        ns_filter = obj.namespace if ns_from == "Same" else "*"
        tls = None
        ok, reason, message = True, "Accepted", ""
        if protocol not in PROTOCOLS:
            ok, reason, message = False, "UnsupportedProtocol", f"protocol {protocol} is not served (HTTP, HTTPS)"
            rep.warning(f"{lp}.protocol", message, code="unsupported")
        elif protocol == "HTTPS":
            t = fields.mapping(m.get("tls"), f"{lp}.tls", rep) or {}
            refs = fields.sequence(t.get("certificateRefs"), f"{lp}.tls.certificateRefs", rep)
            if (t.get("mode") or "Terminate") != "Terminate" or not refs:
                ok, reason, message = False, "InvalidCertificateRef", "HTTPS listeners need mode Terminate and a certificateRef"
                rep.warning(f"{lp}.tls", message, code="unsupported")
            else:
                ref = refs[0] if isinstance(refs[0], dict) else {}
                if ref.get("namespace") not in (None, obj.namespace):
                    ok, reason, message = False, "RefNotPermitted", "cross-namespace certificateRefs are not supported yet"
                    rep.warning(f"{lp}.tls.certificateRefs[0].namespace", message, code="unsupported")
                else:
                    tls = ServerTls("SIMPLE", str(ref.get("name", "")))
        listener_status.append({"name": name, "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}],
                                "attachedRoutes": 0, "conditions": [condition("Accepted", ok, reason, message),
                                                                    condition("Programmed", ok, "Programmed" if ok else reason)]})
        if ok and port is not None:
            servers.append(GatewayServer(port, name, protocol, ((ns_filter, hostname),), tls))
    status = {"conditions": [condition("Accepted", True, "Accepted"),
                             condition("Programmed", bool(servers), "Programmed" if servers else "Invalid")],
              "listeners": listener_status}
    if rep.failed:
        return None, status
    return Gateway(obj.ref, (), tuple(servers), gateway_api=True), status
