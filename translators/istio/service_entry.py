"""ServiceEntry -> :class:`translators.ir.Service`.

ServiceEntry is how backends are declared without Kubernetes: hosts, ports
with protocols, resolution STATIC or DNS, and ``endpoints`` that become EDS.
Core Services and EndpointSlices are the ``kubernetes`` dialect's
(:mod:`translators.kubernetes.service`).
"""
from __future__ import annotations

import ipaddress
import re

from translators.diagnostics import Reporter
from translators.ir import Endpoint, Service, ServicePort
from translators import fields
from translators.hosts import fqdn
from translators.objects import ConfigObject

#: a DNS name Envoy can resolve (letters, digits, hyphens, underscores, dots), matched in full
_DNS_NAME = re.compile(r"(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?")
_UINT32_MAX = 2**32 - 1


def _check_address(address: str, path: str, rep: Reporter, *, resolution: str) -> bool:
    """STATIC endpoints need an IP (or ``unix://`` path); DNS endpoints an IP or a DNS name."""
    if resolution == "STATIC":
        if address.startswith("unix://") and len(address) > len("unix://"):
            return True
        if not fields.is_ip(address):
            rep.error(path, f"resolution STATIC needs an IP address, got {address!r}")
            return False
        return True
    if fields.is_ip(address) or _DNS_NAME.fullmatch(address):
        return True
    rep.error(path, f"must be an IP address or a DNS name, got {address!r}")
    return False


def _addresses(value, path: str, rep: Reporter) -> None:
    """``spec.addresses``: IPs or CIDR blocks (VIPs; not used by the gateway, but checked)."""
    for i, a in enumerate(fields.strings(value, path, rep)):
        try:
            ipaddress.ip_network(a, strict=False)
        except ValueError:
            rep.error(f"{path}[{i}]", f"must be an IP address or CIDR block, got {a!r}")


PROTOCOLS = frozenset({"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS", "UDP"})
RESOLUTIONS = frozenset({"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"})


def _ports(value, path: str, rep: Reporter) -> tuple[ServicePort, ...]:
    out = []
    for i, p in enumerate(fields.sequence(value, path, rep)):
        pp = f"{path}[{i}]"
        m = fields.mapping(p, pp, rep)
        if m is None:
            continue
        number = fields.port_number(m.get("number"), f"{pp}.number", rep, required=True)
        name = fields.string(m.get("name"), f"{pp}.name", rep) or ""
        protocol = (fields.string(m.get("protocol"), f"{pp}.protocol", rep) or "").upper()
        if protocol and protocol not in PROTOCOLS:
            rep.warning(f"{pp}.protocol", f"unknown protocol {protocol!r}; treated as TCP")
        target = fields.port_number(m.get("targetPort"), f"{pp}.targetPort", rep) or 0
        if number is not None:
            out.append(ServicePort(number, name, protocol, target))
    return tuple(out)


def parse_service_entry(obj: ConfigObject, rep: Reporter) -> list[Service]:
    spec = obj.spec
    hosts = fields.sequence(spec.get("hosts"), "spec.hosts", rep)
    if not hosts:
        rep.error("spec.hosts", "at least one host is required")
    ports = _ports(spec.get("ports"), "spec.ports", rep)
    resolution = (fields.string(spec.get("resolution"), "spec.resolution", rep) or "NONE").upper()
    if resolution not in RESOLUTIONS:
        rep.error("spec.resolution", f"must be one of {', '.join(sorted(RESOLUTIONS))}, got {resolution!r}")
    if resolution == "DNS_ROUND_ROBIN":
        resolution = "DNS"
    if spec.get("workloadSelector") is not None:
        rep.warning("spec.workloadSelector", "workloadSelector is not supported; use endpoints", code="unsupported")
    if resolution == "NONE" and ports:
        rep.warning("spec.resolution", "resolution NONE (passthrough) is not supported by the gateway; "
                    "clusters for these hosts have no endpoints", code="unsupported")
    _addresses(spec.get("addresses"), "spec.addresses", rep)
    by_name = {p.name: p for p in ports if p.name}
    endpoints: list[Endpoint] = []
    for i, e in enumerate(fields.sequence(spec.get("endpoints"), "spec.endpoints", rep)):
        fast = _well_formed(e, resolution=resolution, by_name=by_name)
        if fast is not None:
            address, port_map, labels, weight, locality = fast
            for p in ports:
                number = port_map[p.name] if p.name in port_map else (p.target_port or p.number)
                endpoints.append(Endpoint(address, number, labels, weight, locality, p.number))
            continue
        ep = f"spec.endpoints[{i}]"  # the validating path: names every problem
        m = fields.mapping(e, ep, rep)
        if m is None:
            continue
        address = fields.string(m.get("address"), f"{ep}.address", rep, required=True)
        if address is None:
            continue
        if not _check_address(address, f"{ep}.address", rep, resolution=resolution):
            continue
        port_map = {}
        for pname, pnum in (fields.mapping(m.get("ports"), f"{ep}.ports", rep) or {}).items():
            if not isinstance(pname, str) or pname not in by_name:
                rep.error(f"{ep}.ports.{pname}", f"no port named {pname!r} in spec.ports")
                continue
            number = fields.port_number(pnum, f"{ep}.ports.{pname}", rep, required=True)
            if number is not None:
                port_map[pname] = number
        labels = fields.labels(m.get("labels"), f"{ep}.labels", rep)
        weight = fields.integer(m.get("weight"), f"{ep}.weight", rep, lo=0, hi=_UINT32_MAX) or 1
        locality = fields.string(m.get("locality"), f"{ep}.locality", rep) or ""
        # an endpoint carries one port per service port: ports[name] or the service port's target
        for p in ports:
            number = port_map[p.name] if p.name in port_map else (p.target_port or p.number)
            endpoints.append(Endpoint(address, number, labels, weight, locality, p.number))
    for p in ports:  # Envoy refuses a locality whose endpoint weights sum past uint32
        total = sum(e.weight for e in endpoints if e.service_port == p.number)
        if total > _UINT32_MAX:
            rep.error("spec.endpoints", f"the endpoint weights of port {p.number} sum to {total}, "
                      f"more than Envoy's limit of {_UINT32_MAX}")
            break
    if rep.failed:
        return []
    services = []
    for i, h in enumerate(hosts):
        host = fields.string(h, f"spec.hosts[{i}]", rep, required=True)
        if host is None:
            continue
        if not (host == "*" or _DNS_NAME.fullmatch(host.removeprefix("*."))):
            rep.error(f"spec.hosts[{i}]", f"must be a DNS name, optionally with a leading '*.', got {host!r}")
            continue
        services.append(Service(host=host, namespace=obj.namespace, ports=ports, resolution=resolution,
                                endpoints=_endpoints_for_dns(host, ports, endpoints, resolution), source=obj.ref))
    return services


_ENDPOINT_KEYS = frozenset({"address", "ports", "labels", "weight", "locality", "network", "serviceAccount"})


def _well_formed(e, *, resolution: str, by_name: dict) -> tuple | None:
    """The common, valid endpoint, read without per-field diagnostics; None sends it down the validating path."""
    if type(e) is not dict or not _ENDPOINT_KEYS.issuperset(e):
        return None
    address = e.get("address")
    if type(address) is not str or not fields.is_ip(address):
        return None  # names (DNS), unix:// paths and anything odd take the validating path
    port_map = e.get("ports") or {}
    if type(port_map) is not dict or not all(k in by_name and type(v) is int and 0 < v < 65536
                                             for k, v in port_map.items()):
        return None
    labels = e.get("labels") or {}
    if type(labels) is not dict or not all(type(k) is str and type(v) is str for k, v in labels.items()):
        return None
    weight = e.get("weight", 1)
    locality = e.get("locality") or ""
    if type(weight) is not int or not 0 <= weight < 2**32 or type(locality) is not str:
        return None
    return address, port_map, tuple(sorted(labels.items())), weight or 1, locality


def _endpoints_for_dns(host: str, ports: tuple[ServicePort, ...], endpoints: list[Endpoint],
                       resolution: str) -> tuple[Endpoint, ...]:
    """DNS resolution without endpoints resolves the host itself (Istio semantics)."""
    if resolution == "DNS" and not endpoints and not host.startswith("*"):
        return tuple(Endpoint(host, p.target_port or p.number, service_port=p.number) for p in ports)
    return tuple(endpoints)
