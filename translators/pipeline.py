"""Objects in, xDS messages out.

:func:`translate` runs the dialects once per config version and returns a
:class:`Translation`.  Cluster and endpoint messages do not depend on the
node, so they are built once and shared.  Listener and route messages depend
only on *which gateways select the node*, so they are memoized by that set:
nodes with different labels but the same gateways share the same messages.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from google.protobuf.message import Message

from translators import type_urls
from translators.builders.clusters import build_cluster
from translators.builders.endpoints import build_load_assignment
from translators.builders.listeners import build_gateway_listener
from translators.builders.routes import build_route_configuration
from translators.diagnostics import Diagnostic
from translators.gateway_view import gateway_listeners
from translators.ir import Model
from translators.istio.dialect import compile_istio
from translators.node import ENVOY, NodeInfo
from translators.objects import ConfigObject, ObjectRef

Resources = dict[str, dict[str, Message]]


@dataclass(slots=True)
class Translation:
    model: Model
    diagnostics: list[Diagnostic]
    accepted: dict[ObjectRef, ConfigObject]
    shared: Resources
    _by_gateways: dict[tuple[str, ...], Resources] = field(default_factory=dict)

    def selection_key(self, node: NodeInfo) -> tuple[str, ...]:
        labels = node.label_map
        return (node.flavour,) + tuple(g.key for g in self.model.gateways if g.selects(labels))

    def for_node(self, node: NodeInfo) -> Resources:
        """All resources for ``node``: shared CDS/EDS plus its own LDS/RDS."""
        key = self.selection_key(node)
        own = self._by_gateways.get(key)
        if own is None:
            own = self._by_gateways[key] = self._build_own(node)
        return {**self.shared, **own}

    def _build_own(self, node: NodeInfo) -> Resources:
        listeners: dict[str, Message] = {}
        routes: dict[str, Message] = {}
        if node.flavour == ENVOY:
            for l in gateway_listeners(self.model, labels=node.label_map):
                listeners[l.name] = build_gateway_listener(l)
                routes[l.route_config] = build_route_configuration(l.route_config, l.virtual_hosts)
        return {type_urls.LISTENER: listeners, type_urls.ROUTE: routes}


def build_shared(model: Model) -> Resources:
    clusters = {c.name: build_cluster(c) for c in model.clusters}
    endpoints = {c.name: build_load_assignment(c) for c in model.clusters if c.discovery == "EDS"}
    return {type_urls.CLUSTER: clusters, type_urls.ENDPOINT: endpoints}


def translate(objects: Iterable[ConfigObject], *, accepted: Mapping[ObjectRef, ConfigObject] | None = None) -> Translation:
    compiled = compile_istio(objects, accepted=accepted)
    return Translation(model=compiled.model, diagnostics=compiled.diagnostics, accepted=compiled.accepted,
                       shared=build_shared(compiled.model))
