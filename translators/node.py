"""What the translator needs to know about a connecting node.

Two nodes with equal :class:`NodeInfo` get identical config, so the cache
keys snapshots by it (a "node class"): a thousand Envoys with the same labels
share one snapshot and one set of serialized bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

ENVOY = "envoy"
GRPC = "grpc"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    flavour: str = ENVOY
    namespace: str = "default"
    labels: tuple[tuple[str, str], ...] = ()
    #: an Envoy on Delta xDS that gets its gateway virtual hosts over VHDS (one resource per host, so an
    #: edit sends and re-applies one host, not the whole route configuration)
    vhds: bool = False

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @classmethod
    def of(cls, *, flavour: str = ENVOY, namespace: str = "default", labels: dict[str, str] | None = None) -> "NodeInfo":
        return cls(flavour, namespace or "default", tuple(sorted((labels or {}).items())))
