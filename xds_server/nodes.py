"""From an xDS ``Node`` to the :class:`~translators.node.NodeInfo` that decides its config.

* flavour: ``grpc`` when metadata ``GENERATOR`` is ``grpc`` or the
  ``user_agent_name`` starts with ``gRPC``; otherwise ``envoy``;
* namespace: metadata ``NAMESPACE``, ``default`` when missing;
* labels: metadata ``labels`` or Istio's ``LABELS`` (a struct of strings).
"""
from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2

from translators.node import ENVOY, GRPC, NodeInfo


def _struct_strings(value: struct_pb2.Value) -> dict[str, str]:
    if value.WhichOneof("kind") != "struct_value":
        return {}
    out = {}
    for k, v in value.struct_value.fields.items():
        kind = v.WhichOneof("kind")
        if kind == "string_value":
            out[k] = v.string_value
        elif kind == "number_value":
            out[k] = str(int(v.number_value)) if v.number_value.is_integer() else str(v.number_value)
        elif kind == "bool_value":
            out[k] = "true" if v.bool_value else "false"
    return out


def node_info(node: base_pb2.Node) -> NodeInfo:
    meta = node.metadata.fields
    generator = meta["GENERATOR"].string_value if "GENERATOR" in meta else ""
    flavour = GRPC if generator.lower() == "grpc" or node.user_agent_name.startswith("gRPC") else ENVOY
    namespace = meta["NAMESPACE"].string_value if "NAMESPACE" in meta else ""
    labels: dict[str, str] = {}
    for key in ("LABELS", "labels"):
        if key in meta:
            labels.update(_struct_strings(meta[key]))
    return NodeInfo.of(flavour=flavour, namespace=namespace or "default", labels=labels)


def claimed_namespace(node: base_pb2.Node) -> str:
    """The ``NAMESPACE`` the node wrote ("" when it wrote none)."""
    meta = node.metadata.fields
    return meta["NAMESPACE"].string_value if "NAMESPACE" in meta else ""


def claimed_service_account(node: base_pb2.Node) -> str:
    """The ``SERVICE_ACCOUNT`` the node wrote (Istio's node metadata key), "" when none."""
    meta = node.metadata.fields
    return meta["SERVICE_ACCOUNT"].string_value if "SERVICE_ACCOUNT" in meta else ""
