"""ServiceEntry (and core ``v1/Service``) -> :class:`translators.ir.Service`.

ServiceEntry is how backends are declared without Kubernetes: hosts, ports
with protocols, resolution STATIC or DNS, and ``endpoints`` that become EDS.
A core Service found in the config directory declares a
``name.namespace.svc.cluster.local`` host with its ports; its endpoints come
from EndpointSlices in Kubernetes mode.
"""
from __future__ import annotations

import ipaddress
import re

from translators.diagnostics import Reporter
from translators.ir import Endpoint, Service, ServicePort
from translators.istio import fields
from translators.istio.hosts import fqdn
from translators.objects import ConfigObject

_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")


def _is_ip(address: str) -> bool:
    if _IPV4.match(address) or address.startswith("unix://"):
        return True
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


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
        if resolution == "STATIC" and not _is_ip(address):
            rep.error(f"{ep}.address", f"resolution STATIC needs an IP address, got {address!r}")
            continue
        port_map = fields.mapping(m.get("ports"), f"{ep}.ports", rep) or {}
        for pname in port_map:
            if pname not in by_name:
                rep.error(f"{ep}.ports.{pname}", f"no port named {pname!r} in spec.ports")
        labels = fields.labels(m.get("labels"), f"{ep}.labels", rep)
        weight = fields.integer(m.get("weight"), f"{ep}.weight", rep, lo=0, hi=2**32 - 1) or 1
        locality = fields.string(m.get("locality"), f"{ep}.locality", rep) or ""
        # an endpoint carries one port per service port: ports[name] or the service port's target
        for p in ports:
            number = port_map.get(p.name) if p.name in port_map else (p.target_port or p.number)
            if isinstance(number, int):
                endpoints.append(Endpoint(address, number, labels, weight, locality, p.number))
    if rep.failed:
        return []
    services = []
    for i, h in enumerate(hosts):
        host = fields.string(h, f"spec.hosts[{i}]", rep, required=True)
        if host is None:
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
    if type(address) is not str or (resolution == "STATIC" and not _IPV4.match(address)):
        return None
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


def slice_endpoints(slices: list[ConfigObject], ports: list[ServicePort]) -> tuple[Endpoint, ...]:
    """EndpointSlices (``discovery.k8s.io/v1``) -> endpoints per service port.

    Only ready endpoints (``conditions.ready`` true or absent) are kept; the slice's
    ``zone`` becomes the locality.  A service port matches the slice port of the same name.
    """
    out = []
    for sl in slices:
        raw = sl.raw
        slice_ports = {p.get("name") or "": p.get("port") for p in raw.get("ports") or [] if isinstance(p, dict)}
        for ep in raw.get("endpoints") or []:
            if not isinstance(ep, dict) or (ep.get("conditions") or {}).get("ready") is False:
                continue
            zone = ep.get("zone") or ""
            for address in ep.get("addresses") or []:
                for sp in ports:
                    number = slice_ports.get(sp.name, slice_ports.get("") if len(slice_ports) == 1 else None)
                    if isinstance(number, int):
                        out.append(Endpoint(address, number, (), 1, f"/{zone}" if zone else "", sp.number))
    return tuple(out)


def parse_kubernetes_service(obj: ConfigObject, rep: Reporter, slices: list[ConfigObject] | None = None) -> list[Service]:
    """A core v1 Service: the host ``name.ns.svc.cluster.local``, its ports, and its EndpointSlices' endpoints."""
    spec = obj.raw.get("spec") or {}
    ports = []
    for i, p in enumerate(fields.sequence(spec.get("ports"), "spec.ports", rep)):
        pp = f"spec.ports[{i}]"
        m = fields.mapping(p, pp, rep)
        if m is None:
            continue
        number = fields.port_number(m.get("port"), f"{pp}.port", rep, required=True)
        name = fields.string(m.get("name"), f"{pp}.name", rep) or ""
        app = (fields.string(m.get("appProtocol"), f"{pp}.appProtocol", rep) or "").lower()
        protocol = {"grpc": "GRPC", "kubernetes.io/h2c": "HTTP2", "http2": "HTTP2", "grpc-web": "GRPC-WEB",
                    "http": "HTTP", "kubernetes.io/http": "HTTP"}.get(app, "")
        target = m.get("targetPort")
        if number is not None:
            ports.append(ServicePort(number, name, protocol, target if isinstance(target, int) else 0))
    if rep.failed:
        return []
    return [Service(host=fqdn(obj.name, obj.namespace), namespace=obj.namespace, ports=tuple(ports),
                    resolution="STATIC", endpoints=slice_endpoints(slices or [], ports), source=obj.ref)]
