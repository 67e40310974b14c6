"""EnvoyFilter: exactly one pattern is translated, the gRPC-Web filter of Istio's guide.

::

    apiVersion: networking.istio.io/v1alpha3
    kind: EnvoyFilter
    spec:
      workloadSelector: {labels: {istio: ingressgateway}}     # optional
      configPatches:
      - applyTo: HTTP_FILTER
        match:
          context: GATEWAY                                    # or ANY, or absent
          listener:
            filterChain:
              filter:
                name: envoy.filters.network.http_connection_manager
                subFilter: {name: envoy.filters.http.router}  # optional
        patch:
          operation: INSERT_BEFORE                            # or INSERT_FIRST, INSERT_AFTER
          value:
            name: envoy.filters.http.grpc_web
            typed_config:                                     # optional
              "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb

It becomes an :class:`translators.ir.GrpcWebSelector`: gateways of the nodes it selects get the
``grpc_web`` filter on every HTTP listener (before the router, wherever the patch asked to put
it: xds-server's filter order is fixed).  Without a ``workloadSelector`` it selects every
workload of its namespace, or of every namespace when it lives in the root namespace
``istio-system``.  Anything else is not recognised and the caller warns: an EnvoyFilter is never
dropped silently.
"""
from __future__ import annotations

from typing import Any

from translators.ir import GrpcWebSelector
from translators.objects import ConfigObject

ROOT_NAMESPACE = "istio-system"
HCM = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"
GRPC_WEB = "envoy.filters.http.grpc_web"
GRPC_WEB_TYPE = "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"
OPERATIONS = frozenset({"INSERT_BEFORE", "INSERT_FIRST", "INSERT_AFTER"})
PATTERN = ("only the gRPC-Web pattern is translated (applyTo: HTTP_FILTER, match.context GATEWAY/ANY, "
           f"listener.filterChain.filter.name: {HCM}, patch.operation INSERT_BEFORE/INSERT_FIRST/INSERT_AFTER, "
           f"patch.value.name: {GRPC_WEB})")


class NotRecognised(Exception):
    """The EnvoyFilter is not the gRPC-Web pattern; ``path`` says where it departs from it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _only(m: Any, path: str, keys: set[str]) -> dict:
    if m is None:
        raise NotRecognised(path, "is missing")
    if not isinstance(m, dict):
        raise NotRecognised(path, f"must be a mapping, got {type(m).__name__}")
    extra = sorted(str(k) for k in m if k not in keys)
    if extra:
        raise NotRecognised(f"{path}.{extra[0]}", f"{extra[0]!r} is not part of the gRPC-Web pattern")
    return m


def _expect(value: Any, path: str, allowed: set[str | None]) -> None:
    if value not in allowed:
        want = " or ".join(sorted(repr(a) for a in allowed if a is not None))
        raise NotRecognised(path, f"is {value!r}; the gRPC-Web pattern needs {want}")


def recognise(obj: ConfigObject) -> GrpcWebSelector:
    """The selector of a gRPC-Web EnvoyFilter; raises :class:`NotRecognised` for anything else."""
    spec = _only(obj.spec, "spec", {"workloadSelector", "configPatches"})
    labels: tuple[tuple[str, str], ...] = ()
    if spec.get("workloadSelector") is not None:
        ws = _only(spec["workloadSelector"], "spec.workloadSelector", {"labels"})
        raw = ws.get("labels") or {}
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise NotRecognised("spec.workloadSelector.labels", "must map label names to strings")
        labels = tuple(sorted((str(k), v) for k, v in raw.items()))
    patches = spec.get("configPatches")
    if not isinstance(patches, list) or not patches:
        raise NotRecognised("spec.configPatches", "needs at least one patch")
    for i, patch in enumerate(patches):
        p = f"spec.configPatches[{i}]"
        cp = _only(patch, p, {"applyTo", "match", "patch"})
        _expect(cp.get("applyTo"), f"{p}.applyTo", {"HTTP_FILTER"})
        match = _only(cp.get("match"), f"{p}.match", {"context", "listener"})
        _expect(match.get("context"), f"{p}.match.context", {None, "GATEWAY", "ANY"})
        listener = _only(match.get("listener"), f"{p}.match.listener", {"filterChain"})
        chain = _only(listener.get("filterChain"), f"{p}.match.listener.filterChain", {"filter"})
        filt = _only(chain.get("filter"), f"{p}.match.listener.filterChain.filter", {"name", "subFilter"})
        _expect(filt.get("name"), f"{p}.match.listener.filterChain.filter.name", {HCM})
        if filt.get("subFilter") is not None:
            sub = _only(filt["subFilter"], f"{p}.match.listener.filterChain.filter.subFilter", {"name"})
            _expect(sub.get("name"), f"{p}.match.listener.filterChain.filter.subFilter.name", {ROUTER})
        body = _only(cp.get("patch"), f"{p}.patch", {"operation", "value"})
        _expect(body.get("operation"), f"{p}.patch.operation", set(OPERATIONS))
        value = _only(body.get("value"), f"{p}.patch.value", {"name", "typed_config", "typedConfig"})
        _expect(value.get("name"), f"{p}.patch.value.name", {GRPC_WEB})
        key = "typed_config" if "typed_config" in value else "typedConfig"
        if value.get(key) is not None:
            tc = _only(value[key], f"{p}.patch.value.{key}", {"@type"})
            _expect(tc.get("@type"), f"{p}.patch.value.{key}.@type", {GRPC_WEB_TYPE})
    namespace = "" if obj.namespace == ROOT_NAMESPACE else obj.namespace
    return GrpcWebSelector(ref=obj.ref, namespace=namespace, labels=labels)
