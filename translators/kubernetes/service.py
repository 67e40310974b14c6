"""Core ``v1/Service`` and ``discovery.k8s.io/v1`` EndpointSlice -> :class:`translators.ir.Service`.

A Service declares the host ``name.namespace.svc.cluster.local`` with its ports; its endpoints come
from the EndpointSlices labelled ``kubernetes.io/service-name: NAME`` in its namespace.
"""
from __future__ import annotations

from translators import fields
from translators.diagnostics import Reporter
from translators.hosts import fqdn
from translators.ir import Endpoint, Service, ServicePort
from translators.objects import ConfigObject

#: the label that ties an EndpointSlice to its Service
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def slice_endpoints(slices: list[ConfigObject], ports: list[ServicePort]) -> tuple[Endpoint, ...]:
    """EndpointSlices (``discovery.k8s.io/v1``) -> endpoints per service port.

    Only ready endpoints (``conditions.ready`` true or absent) are kept; the slice's
    ``zone`` becomes the locality.  A service port matches the slice port of the same name.
    """
    out = []
    for sl in slices:
        raw = sl.raw
        raw_ports, raw_endpoints = raw.get("ports"), raw.get("endpoints")
        slice_ports = {p.get("name") or "": p.get("port") for p in (raw_ports if isinstance(raw_ports, list) else ())
                       if isinstance(p, dict) and isinstance(p.get("name") or "", str)}
        for ep in raw_endpoints if isinstance(raw_endpoints, list) else ():
            conditions = ep.get("conditions") if isinstance(ep, dict) else None
            if not isinstance(ep, dict) or (isinstance(conditions, dict) and conditions.get("ready") is False):
                continue
            zone = ep.get("zone") if isinstance(ep.get("zone"), str) else ""
            addresses = ep.get("addresses")
            for address in addresses if isinstance(addresses, list) else ():
                if not fields.is_ip(address):
                    continue  # the API server validates slices; a hand-written one with a bad address is skipped
                for sp in ports:
                    number = slice_ports.get(sp.name, slice_ports.get("") if len(slice_ports) == 1 else None)
                    if type(number) is int and 0 < number < 65536:
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
        if isinstance(target, int) and not isinstance(target, bool):
            target = fields.port_number(target, f"{pp}.targetPort", rep)
        elif target is not None and not isinstance(target, str):
            rep.error(f"{pp}.targetPort", f"must be a port number or a port name, got {target!r}")
        if number is not None:
            ports.append(ServicePort(number, name, protocol, target if type(target) is int else 0))
    if rep.failed:
        return []
    return [Service(host=fqdn(obj.name, obj.namespace), namespace=obj.namespace, ports=tuple(ports),
                    resolution="STATIC", endpoints=slice_endpoints(slices or [], ports), source=obj.ref)]
