"""Names that xDS resources refer to, for snapshot consistency checks."""
from __future__ import annotations

from typing import Iterable, Iterator

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2


def eds_cluster_names(clusters: Iterable[cluster_pb2.Cluster]) -> set[str]:
    return {c.eds_cluster_config.service_name or c.name for c in clusters if c.type == cluster_pb2.Cluster.EDS}


def _managers(listener: listener_pb2.Listener) -> Iterator[hcm.HttpConnectionManager]:
    if listener.HasField("api_listener"):
        m = hcm.HttpConnectionManager()
        if listener.api_listener.api_listener.Unpack(m):
            yield m
    for chain in listener.filter_chains:
        for f in chain.filters:
            m = hcm.HttpConnectionManager()
            if f.typed_config.Unpack(m):
                yield m


def listener_route_names(listeners: Iterable[listener_pb2.Listener]) -> set[str]:
    return {m.rds.route_config_name for l in listeners for m in _managers(l) if m.HasField("rds")}


def route_cluster_names(routes: Iterable[route_pb2.RouteConfiguration]) -> set[tuple[str, str]]:
    out = set()
    for rc in routes:
        refs = getattr(rc, "cluster_refs", None)  # assembled from bytes: its references are known
        if isinstance(refs, frozenset):
            name = _prebuilt_name(rc)
            out.update((name, c) for c in refs)
            continue
        for vh in rc.virtual_hosts:
            for r in vh.routes:
                if not r.HasField("route"):
                    continue
                if r.route.cluster:
                    out.add((rc.name, r.route.cluster))
                for w in r.route.weighted_clusters.clusters:
                    out.add((rc.name, w.name))
                for m in r.route.request_mirror_policies:
                    out.add((rc.name, m.cluster))
    return out


def _common_sds_names(common: common_pb2.CommonTlsContext) -> Iterator[str]:
    for c in common.tls_certificate_sds_secret_configs:
        yield c.name
    if common.HasField("validation_context_sds_secret_config"):
        yield common.validation_context_sds_secret_config.name
    if common.HasField("combined_validation_context"):
        cvc = common.combined_validation_context
        if cvc.HasField("validation_context_sds_secret_config"):
            yield cvc.validation_context_sds_secret_config.name


def sds_secret_names(listeners: Iterable[listener_pb2.Listener], clusters: Iterable[cluster_pb2.Cluster]) -> set[str]:
    """Every SDS secret a listener's filter chains or a cluster's transport socket refers to."""
    out: set[str] = set()
    for listener in listeners:
        for chain in listener.filter_chains:
            ctx = tls_pb2.DownstreamTlsContext()
            if chain.HasField("transport_socket") and chain.transport_socket.typed_config.Unpack(ctx):
                out.update(_common_sds_names(ctx.common_tls_context))
    for cluster in clusters:
        has_socket = cluster.HasField("transport_socket")
        if not has_socket and not cluster.transport_socket_matches:
            continue  # (most clusters: plaintext)
        sockets = [cluster.transport_socket] if has_socket else []
        sockets += [m.transport_socket for m in cluster.transport_socket_matches]
        for socket in sockets:
            ctx = tls_pb2.UpstreamTlsContext()
            if socket.typed_config.Unpack(ctx):
                out.update(_common_sds_names(ctx.common_tls_context))
    return out


def _prebuilt_name(rc) -> str:  # noqa: ANN001
    """A prebuilt RouteConfiguration's name: field 1, the first field of its bytes."""
    data = rc.SerializeToString()
    if data[:1] != b"\x0a":
        return rc.message.name
    n, shift, i = 0, 0, 1
    while True:
        b = data[i]
        n |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            break
        shift += 7
    return data[i:i + n].decode()
