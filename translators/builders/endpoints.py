"""EDS: one ClusterLoadAssignment per EDS cluster, grouped by locality.

Every EDS cluster gets an assignment, even an empty one: a cluster without
one would keep Envoy warming until ``initial_fetch_timeout``.
"""
from __future__ import annotations

from itertools import groupby

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import wrappers_pb2

from translators import ir


def _locality(text: str) -> base_pb2.Locality:
    region, zone, sub_zone = (text.split("/") + ["", "", ""])[:3]
    return base_pb2.Locality(region=region, zone=zone, sub_zone=sub_zone)


def lb_endpoints(endpoints: tuple[ir.Endpoint, ...]) -> list[ec.LocalityLbEndpoints]:
    groups = []
    for locality, eps in groupby(sorted(endpoints, key=lambda e: (e.locality, e.address, e.port)), key=lambda e: e.locality):
        items = [ec.LbEndpoint(
            endpoint=ec.Endpoint(address=address_pb2.Address(socket_address=address_pb2.SocketAddress(
                address=e.address, port_value=e.port))),
            load_balancing_weight=wrappers_pb2.UInt32Value(value=max(e.weight, 1)),
        ) for e in eps]
        groups.append(ec.LocalityLbEndpoints(locality=_locality(locality), lb_endpoints=items,
                                             load_balancing_weight=wrappers_pb2.UInt32Value(value=len(items))))
    return groups


def build_load_assignment(cluster: ir.Cluster) -> endpoint_pb2.ClusterLoadAssignment:
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster.name, endpoints=lb_endpoints(cluster.endpoints))
