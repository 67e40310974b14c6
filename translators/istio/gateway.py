"""Istio Gateway -> :class:`translators.ir.Gateway`.

``spec.selector`` is matched against the connecting Envoy's node metadata
labels.  Each ``servers[]`` entry becomes a listener port; ``hosts`` accept
``ns/host`` and wildcards.  HTTP, HTTP2, GRPC and GRPC-WEB servers are
translated; HTTPS/TLS/TCP servers are reported as unsupported for now.
"""
from __future__ import annotations

from translators.diagnostics import Reporter
from translators.ir import Gateway, GatewayServer
from translators.istio import fields
from translators.istio.hosts import split_namespaced
from translators.objects import ConfigObject

HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
OTHER_PROTOCOLS = frozenset({"HTTPS", "TLS", "TCP", "MONGO", "HBONE", "UDP"})


def parse_gateway(obj: ConfigObject, rep: Reporter) -> Gateway | None:
    spec = obj.spec
    selector = fields.labels(spec.get("selector"), "spec.selector", rep)
    servers = []
    raw_servers = fields.sequence(spec.get("servers"), "spec.servers", rep)
    if not raw_servers:
        rep.error("spec.servers", "at least one server is required")
    for i, s in enumerate(raw_servers):
        sp = f"spec.servers[{i}]"
        m = fields.mapping(s, sp, rep)
        if m is None:
            continue
        port = fields.mapping(m.get("port"), f"{sp}.port", rep)
        if port is None:
            rep.error(f"{sp}.port", "is required")
            continue
        number = fields.port_number(port.get("number"), f"{sp}.port.number", rep, required=True)
        name = fields.string(port.get("name"), f"{sp}.port.name", rep) or ""
        protocol = (fields.string(port.get("protocol"), f"{sp}.port.protocol", rep, required=True) or "").upper()
        hosts_raw = fields.sequence(m.get("hosts"), f"{sp}.hosts", rep)
        if not hosts_raw:
            rep.error(f"{sp}.hosts", "at least one host is required")
        hosts = []
        for j, h in enumerate(hosts_raw):
            host = fields.string(h, f"{sp}.hosts[{j}]", rep, required=True)
            if host is not None:
                hosts.append(split_namespaced(host, default_namespace=obj.namespace))
        if number is None or not protocol:
            continue
        if protocol in OTHER_PROTOCOLS:
            rep.warning(f"{sp}.port.protocol", f"{protocol} servers are not served yet; this server is skipped",
                        code="unsupported")
            continue
        if protocol not in HTTP_PROTOCOLS:
            rep.error(f"{sp}.port.protocol", f"unknown protocol {protocol!r}; use HTTP, HTTP2, GRPC or GRPC-WEB")
            continue
        if m.get("tls") is not None:
            tls = m.get("tls") or {}
            if isinstance(tls, dict) and tls.get("httpsRedirect"):
                rep.warning(f"{sp}.tls.httpsRedirect", "httpsRedirect is not applied yet", code="unsupported")
        servers.append(GatewayServer(number, name, protocol, tuple(hosts)))
    if rep.failed:
        return None
    return Gateway(obj.ref, selector, tuple(servers))
