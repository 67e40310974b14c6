"""What a proxyless gRPC client or xDS-enabled gRPC server gets (Istio grpcgen semantics).

Proxyless clients ask for resources by name, so these are resolved per name
rather than enumerated:

* LDS ``HOST:PORT`` (the ``xds:///HOST:PORT`` target) -> a Listener with exactly
  that name, an ``api_listener`` HCM using RDS ``outbound|PORT||FQDN``.  HOST may
  be short (``greeter``, resolved in the client's namespace), ``name.ns``,
  ``name.ns.svc``, the FQDN, or a ServiceEntry host as written.
* LDS ``xds.istio.io/grpc/lds/inbound/IP:PORT`` (a server's
  ``server_listener_resource_name_template``) -> an inbound Listener (A36).
* RDS ``outbound|PORT||HOST`` -> one virtual host: the VirtualServices bound to
  ``mesh`` whose hosts match HOST (wildcards included), in order; without one,
  a default route to ``outbound|PORT||HOST``.
"""
from __future__ import annotations

from translators import ir
from translators.hosts import Registry, matches

INBOUND_PREFIX = "xds.istio.io/grpc/lds/inbound/"
CLUSTER_DOMAIN = "." + ir.DOMAIN_SUFFIX


def split_host_port(name: str) -> tuple[str, int] | None:
    host, sep, port = name.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def canonical_host(registry: Registry, host: str, *, namespace: str) -> str:
    """``greeter`` / ``greeter.default`` / ``greeter.default.svc`` -> the FQDN (or the host as written)."""
    if host in registry.by_host:
        return host
    if host.endswith(".svc") and host.count(".") == 2:
        return host + CLUSTER_DOMAIN[len(".svc"):]
    return registry.resolve(host, namespace)


def aliases(host: str) -> list[str]:
    """Every spelling a client may use for ``host``, for virtual host domains."""
    out = [host]
    if host.endswith(CLUSTER_DOMAIN):
        short = host[: -len(CLUSTER_DOMAIN)]  # name.ns
        out += [short + ".svc", short, short.split(".", 1)[0]]
    return out


def mesh_routes(model: ir.Model, *, host: str, port: int) -> tuple[list[str], list[ir.Route]]:
    """Routes of ``mesh`` VirtualServices for ``host``: (the matching VirtualService hosts, ordered routes)."""
    exact = [hr for hr in model.http_routes if "mesh" in hr.gateways and host in hr.hosts]
    chosen = exact or [hr for hr in model.http_routes if "mesh" in hr.gateways
                       and any(matches(h, host) for h in hr.hosts)]
    hosts: list[str] = []
    routes: list[ir.Route] = []
    for hr in chosen:
        for h in hr.hosts:
            if (h == host or matches(h, host)) and h not in hosts:
                hosts.append(h)
        routes += [r for r in hr.routes if r.match.port in (None, port)]
    return hosts, routes


def route_config(model: ir.Model, name: str) -> tuple[str, tuple[ir.VirtualHost, ...]] | None:
    parts = name.split("|")
    if len(parts) != 4 or parts[0] != "outbound" or not parts[1].isdigit():
        return None
    port, subset, host = int(parts[1]), parts[2], parts[3]
    vs_hosts, routes = mesh_routes(model, host=host, port=port)
    if not routes:
        routes = [ir.Route(name="default", match=ir.RouteMatch(),
                           clusters=(ir.WeightedCluster(ir.cluster_name(port=port, subset=subset, host=host), 100),))]
        vs_hosts = [host]
    domains: list[str] = []
    for h in vs_hosts:
        for a in aliases(h):
            for d in (a, f"{a}:{port}"):
                if d not in domains:
                    domains.append(d)
    return name, (ir.VirtualHost(name=f"{host}:{port}", domains=tuple(domains), routes=tuple(routes)),)
