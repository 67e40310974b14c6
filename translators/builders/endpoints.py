"""EDS: one ClusterLoadAssignment per EDS cluster, grouped by locality.

Every EDS cluster gets an assignment, even an empty one: a cluster without
one would keep Envoy warming until ``initial_fetch_timeout``.

Speed: an endpoint appears in several assignments (the service's and each
subset's), so each ``LbEndpoint`` is serialized once and assignments are
assembled from those bytes (repeated fields concatenate on the wire) and
handed on as those bytes (:class:`~translators.builders.prebuilt.Prebuilt`).
"""
from __future__ import annotations

from functools import lru_cache
from itertools import groupby

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import wrappers_pb2

from translators import ir
from translators.builders.prebuilt import Prebuilt
from translators.wire import field, varint


@lru_cache(maxsize=1 << 16)
def _lb_endpoint(address: str, port: int, weight: int) -> bytes:
    """``LocalityLbEndpoints.lb_endpoints`` entry (field 2) for one endpoint."""
    msg = ec.LbEndpoint(
        endpoint=ec.Endpoint(address=address_pb2.Address(socket_address=address_pb2.SocketAddress(
            address=address, port_value=port))),
        load_balancing_weight=wrappers_pb2.UInt32Value(value=max(weight, 1)))
    return field(2, msg.SerializeToString())


@lru_cache(maxsize=1024)
def _locality(text: str) -> bytes:
    """``LocalityLbEndpoints.locality`` (field 1) for ``region/zone/sub_zone``."""
    region, zone, sub_zone = (text.split("/") + ["", "", ""])[:3]
    return field(1, base_pb2.Locality(region=region, zone=zone, sub_zone=sub_zone).SerializeToString())


def _sort_key(e: ir.Endpoint) -> tuple:
    return (e.locality, e.address, e.port)


def load_assignment_bytes(cluster: ir.Cluster) -> bytes:
    """The serialized ``ClusterLoadAssignment`` of ``cluster``, joined from cached per-endpoint bytes."""
    parts = [field(1, cluster.name.encode())]
    for locality, eps in groupby(sorted(cluster.endpoints, key=_sort_key), key=lambda e: e.locality):
        items = [_lb_endpoint(e.address, e.port, e.weight) for e in eps]
        # load_balancing_weight (field 3, UInt32Value{value=1}): gRPC ignores localities without one
        weight = field(3, b"\x08" + varint(len(items)))
        parts.append(field(2, _locality(locality) + b"".join(items) + weight))
    return b"".join(parts)


def build_load_assignment(cluster: ir.Cluster) -> endpoint_pb2.ClusterLoadAssignment:
    """The assignment as a message (a STRICT_DNS cluster's inline ``load_assignment``)."""
    return endpoint_pb2.ClusterLoadAssignment.FromString(load_assignment_bytes(cluster))


def prebuilt_load_assignment(cluster: ir.Cluster) -> Prebuilt:
    """The EDS resource of ``cluster``: its bytes as they are (parsed only if something reads a field)."""
    return Prebuilt(endpoint_pb2.ClusterLoadAssignment, load_assignment_bytes(cluster))
