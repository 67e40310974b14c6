"""Istio Gateway -> :class:`translators.ir.Gateway`.

``spec.selector`` is matched against the connecting Envoy's node metadata
labels.  Each ``servers[]`` entry becomes a listener port; ``hosts`` accept
``ns/host`` and wildcards; ``bind`` (an IP address) is the address the
listener binds, ``0.0.0.0`` by default.  HTTP, HTTP2, GRPC, GRPC-WEB and HTTPS (TLS
mode SIMPLE or MUTUAL with ``credentialName``) servers are translated;
PASSTHROUGH, TLS and TCP servers are reported as unsupported for now.
"""
from __future__ import annotations

import ipaddress
import re

from translators.diagnostics import Reporter
from translators.ir import DEFAULT_BIND, Gateway, GatewayServer, ServerTls
from translators import fields
from translators.health import grpc_stats_all_methods
from translators.hosts import split_namespaced
from translators.objects import ConfigObject

HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTPS"})
OTHER_PROTOCOLS = frozenset({"TCP", "MONGO", "HBONE", "UDP"})
TLS_VERSIONS = frozenset({"TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"})
#: a server host: '*', '*.domain' or a DNS name (with an optional port-less trailing dot), in full
_HOST = re.compile(r"\*|(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_-]*)(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*))*\.?")
_VERSION_ORDER = ("TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")


def _server_tls(value, path: str, rep: Reporter, *, protocol: str) -> tuple[ServerTls | None, bool, bool]:
    """(terminating TLS settings, httpsRedirect, skip this server)."""
    m = fields.mapping(value, path, rep)
    if protocol != "HTTPS":
        redirect = bool(m and fields.boolean(m.get("httpsRedirect"), f"{path}.httpsRedirect", rep))
        if m and m.get("mode") is not None:
            rep.warning(f"{path}.mode", f"tls.mode has no effect on a {protocol} server", code="ignored")
        return None, redirect, False
    if m is None:
        rep.error(path, "an HTTPS server needs tls settings (mode and credentialName)")
        return None, False, True
    mode = (fields.string(m.get("mode"), f"{path}.mode", rep) or "SIMPLE").upper()
    if mode in ("AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"):
        rep.warning(f"{path}.mode", f"tls mode {mode} is not served yet; this server is skipped", code="unsupported")
        return None, False, True
    if mode not in ("SIMPLE", "MUTUAL"):
        rep.error(f"{path}.mode", f"must be SIMPLE, MUTUAL or PASSTHROUGH, got {mode!r}")
        return None, False, True
    credential = fields.string(m.get("credentialName"), f"{path}.credentialName", rep)
    if not credential:
        if m.get("serverCertificate") is not None:
            rep.warning(f"{path}.serverCertificate", "file-based certificates are not supported; use credentialName",
                        code="unsupported")
        else:
            rep.error(f"{path}.credentialName", "is required for SIMPLE and MUTUAL")
        return None, False, True
    versions = []
    for key in ("minProtocolVersion", "maxProtocolVersion"):
        v = (fields.string(m.get(key), f"{path}.{key}", rep) or "").upper()
        if v and v not in TLS_VERSIONS:
            rep.error(f"{path}.{key}", f"must be one of {', '.join(sorted(TLS_VERSIONS))}, got {v!r}")
        versions.append(v if v != "TLS_AUTO" and v in TLS_VERSIONS else "")
    if versions[0] and versions[1] and _VERSION_ORDER.index(versions[0]) > _VERSION_ORDER.index(versions[1]):
        rep.error(f"{path}.minProtocolVersion", f"{versions[0]} is above maxProtocolVersion {versions[1]}")
    ciphers = fields.cipher_suites(m.get("cipherSuites"), f"{path}.cipherSuites", rep)
    sans = fields.strings(m.get("subjectAltNames"), f"{path}.subjectAltNames", rep)
    return ServerTls(mode, credential, versions[0], versions[1], ciphers, sans), False, False


def _bind(value, path: str, rep: Reporter) -> tuple[str, bool]:
    """``servers[].bind``: (the IP address the listener binds, "" for 0.0.0.0; skip this server)."""
    text = fields.string(value, path, rep)
    if not text:
        return "", False
    if text.startswith("unix://"):
        rep.warning(path, "unix domain socket binds are not served yet; this server is skipped", code="unsupported")
        return "", True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        rep.error(path, f"must be an IP address (or unix://PATH), got {text!r}")
        return "", True
    return ("" if str(address) == DEFAULT_BIND else str(address)), False


def parse_gateway(obj: ConfigObject, rep: Reporter) -> Gateway | None:
    spec = obj.spec
    selector = fields.labels(spec.get("selector"), "spec.selector", rep)
    all_methods = grpc_stats_all_methods(obj.annotations, rep)
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
                ns, host_name = split_namespaced(host, default_namespace=obj.namespace)
                if not ns or not _HOST.fullmatch(host_name):
                    rep.error(f"{sp}.hosts[{j}]", f"must be [namespace/]host with host '*', '*.domain' or a DNS "
                              f"name, got {host!r}")
                    continue
                hosts.append((ns, host_name))
        bind, bad_bind = _bind(m.get("bind"), f"{sp}.bind", rep)
        if number is None or not protocol or bad_bind:
            continue
        if protocol in OTHER_PROTOCOLS:
            rep.warning(f"{sp}.port.protocol", f"{protocol} servers are not served yet; this server is skipped",
                        code="unsupported")
            continue
        tls_spec = m.get("tls") if isinstance(m.get("tls"), dict) else {}
        if protocol in ("TLS", "HTTPS") and str(tls_spec.get("mode", "")).upper() == "PASSTHROUGH":
            servers.append(GatewayServer(number, name, protocol, tuple(hosts), passthrough=True, bind=bind))
            continue
        if protocol == "TLS":
            rep.warning(f"{sp}.tls.mode", "TLS servers are served in PASSTHROUGH mode only; this server is skipped",
                        code="unsupported")
            continue
        if protocol not in HTTP_PROTOCOLS:
            rep.error(f"{sp}.port.protocol", f"unknown protocol {protocol!r}; use HTTP, HTTP2, GRPC, GRPC-WEB or HTTPS")
            continue
        tls, redirect, skip = _server_tls(m.get("tls"), f"{sp}.tls", rep, protocol=protocol)
        if not skip:
            servers.append(GatewayServer(number, name, protocol, tuple(hosts), tls, redirect, bind=bind,
                                         grpc_stats_all=all_methods))
    if rep.failed:
        return None
    return Gateway(obj.ref, selector, tuple(servers))
