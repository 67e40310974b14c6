"""Typed config objects, the unit that sources hand to the config store.

A source (file watcher, Kubernetes watch) turns the outside world into
:class:`ConfigObject` values keyed by ``(kind, namespace, name)``.  The object
keeps the file it came from so every diagnostic can name it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple


class ObjectRef(NamedTuple):
    """``kind/namespace/name``: the identity of a config object.

    A tuple, so that hashing and comparing it (done for every object of every translation) happens in
    C rather than in a generated ``__hash__``; ordered by kind, namespace, name, group."""

    kind: str
    namespace: str
    name: str
    #: API group, so that Istio's Gateway and Gateway API's Gateway never collide; not printed
    group: str = ""

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ConfigObject:
    """One Kubernetes-style document: ``apiVersion``, ``kind``, ``metadata``, ``spec``."""

    ref: ObjectRef
    api_version: str
    spec: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    #: the whole document, for kinds whose payload is not under ``spec`` (Secret, Service)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.ref.kind

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def generation(self) -> int | None:
        """``metadata.generation`` (what status conditions' ``observedGeneration`` reports), if any."""
        g = (self.raw.get("metadata") or {}).get("generation") if self.raw else None
        return g if isinstance(g, int) and not isinstance(g, bool) else None

    @property
    def group(self) -> str:
        return self.api_version.rsplit("/", 1)[0] if "/" in self.api_version else ""
