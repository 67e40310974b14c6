"""Immutable snapshots of serialized resources.

A :class:`Resource` is serialized exactly once: its ``entry`` is the bytes of
one ``resources`` field of a ``DiscoveryResponse`` (tag, length, ``Any``).
Repeated fields concatenate on the wire, so a response is assembled by
joining cached entries -- a push to a thousand streams costs no protobuf
work at all (see :func:`encode_response`).

Versions are content hashes: an unchanged resource keeps its version across
config changes, so a stream whose resources did not change is not woken.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from google.protobuf.message import Message

from translators import type_urls
from translators.wire import field as _field
from translators.references import eds_cluster_names, listener_route_names, route_cluster_names, sds_secret_names


#: resolved (proxyless) names a snapshot remembers
RESOLVED_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    type_url: str
    message: Message = field(repr=False, compare=False)
    body: bytes = field(repr=False)
    version: str
    #: ``DiscoveryResponse.resources`` entry: field 2 holding ``Any{type_url=1, value=2}``
    entry: bytes = field(repr=False, compare=False)

    @classmethod
    def of(cls, *, name: str, type_url: str, message: Message) -> "Resource":
        body = message.SerializeToString(deterministic=True)
        any_bytes = _field(1, type_url.encode()) + _field(2, body)
        return cls(name, type_url, message, body, hashlib.sha256(body).hexdigest()[:16], _field(2, any_bytes))


def version_of(resources: Iterable[Resource]) -> str:
    h = hashlib.sha256()
    for r in sorted(resources, key=lambda r: r.name):
        h.update(r.name.encode())
        h.update(b"\0")
        h.update(r.version.encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def encode_response(*, version: str, type_url: str, nonce: str, resources: Iterable[Resource]) -> bytes:
    """Serialized ``envoy.service.discovery.v3.DiscoveryResponse`` from cached entries.

    Field numbers: version_info=1, resources=2, type_url=4, nonce=5.
    """
    return b"".join((_field(1, version.encode()), *(r.entry for r in resources),
                     _field(4, type_url.encode()), _field(5, nonce.encode())))


def encode_delta_response(*, system_version: str, type_url: str, nonce: str, resources: Iterable[Resource],
                          removed: Iterable[str] = ()) -> bytes:
    """Serialized ``DeltaDiscoveryResponse`` from cached entries.

    Field numbers: system_version_info=1, resources=2, type_url=4, nonce=5, removed_resources=6; each
    ``Resource`` is version=1, resource=2 (the very ``Any`` entry SotW sends), name=3.
    """
    return b"".join((_field(1, system_version.encode()),
                     *(_field(2, _field(1, r.version.encode()) + r.entry + _field(3, r.name.encode()))
                       for r in resources),
                     _field(4, type_url.encode()), _field(5, nonce.encode()),
                     *(_field(6, n.encode()) for n in removed)))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """``type_url -> {name: Resource}``, plus a version per type (computed on first use: streams compute
    versions over what they subscribe to, so only the admin endpoint needs whole-type versions)."""

    resources: Mapping[str, Mapping[str, Resource]]
    #: monotonic generation of the config this snapshot was built from
    generation: int = 0
    #: resources that exist by name only (proxyless LDS/RDS), resolved on first request
    resolver: Callable[[str, str], Resource | None] | None = field(default=None, compare=False, repr=False)
    _resolved: "OrderedDict[tuple[str, str], Resource | None]" = field(default_factory=lambda: OrderedDict(),
                                                                        compare=False, repr=False)
    _versions: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, resources: Mapping[str, Mapping[str, Resource]], *, generation: int = 0,
              resolver: Callable[[str, str], Resource | None] | None = None) -> "Snapshot":
        return cls(resources, generation, resolver)

    @property
    def versions(self) -> Mapping[str, str]:
        if not self._versions and self.resources:
            self._versions.update({t: version_of(rs.values()) for t, rs in self.resources.items()})
        return self._versions

    def lookup(self, type_url: str, name: str) -> Resource | None:
        """One resource by name (resolving proxyless names on first use)."""
        return self._lookup(type_url, name)

    def _lookup(self, type_url: str, name: str) -> Resource | None:
        found = self.resources.get(type_url, {}).get(name)
        if found is not None or self.resolver is None:
            return found
        key = (type_url, name)
        if key in self._resolved:
            self._resolved.move_to_end(key)
            return self._resolved[key]
        found = self._resolved[key] = self.resolver(type_url, name)
        if len(self._resolved) > RESOLVED_LIMIT:  # clients choose the names: bounded, least recently used out
            self._resolved.popitem(last=False)
        return found

    def get(self, type_url: str) -> Mapping[str, Resource]:
        return self.resources.get(type_url, {})

    def select(self, type_url: str, names: Iterable[str] | None) -> list[Resource]:
        """Resources of ``type_url``; all of them when ``names`` is None (wildcard)."""
        if names is None:
            have = self.get(type_url)
            return [have[n] for n in sorted(have)]
        return [r for n in sorted(set(names)) if (r := self._lookup(type_url, n)) is not None]

    def consistent(self, *, secrets: bool = True) -> list[str]:
        """Reference problems that would make Envoy wait or fail; empty when consistent.

        Every EDS cluster has an assignment, every RDS name used by a listener
        exists, every cluster a route names exists, and (with ``secrets``)
        every SDS secret a listener or cluster names is carried
        (go-control-plane's ``Snapshot.Consistent``, extended to route targets
        and secrets).
        """
        problems = []
        clusters = self.get(type_urls.CLUSTER)
        endpoints = self.get(type_urls.ENDPOINT)
        routes = self.get(type_urls.ROUTE)
        for name in sorted(eds_cluster_names(r.message for r in clusters.values())):
            if name not in endpoints:
                problems.append(f"EDS cluster {name!r} has no ClusterLoadAssignment")
        for name in sorted(listener_route_names(r.message for r in self.get(type_urls.LISTENER).values())):
            if name not in routes:
                problems.append(f"listener refers to missing route configuration {name!r}")
        for route_name, cluster in sorted(route_cluster_names(r.message for r in routes.values())):
            if cluster not in clusters:
                problems.append(f"route configuration {route_name!r} refers to missing cluster {cluster!r}")
        if secrets:
            problems += [f"SDS secret {name!r} is referenced but not generated (Envoy would keep the listener or "
                         "cluster that needs it warming, then reject it)" for name in self.missing_secrets()]
        return problems

    def missing_secrets(self) -> list[str]:
        """SDS names a listener or cluster refers to that this snapshot does not carry."""
        have = self.get(type_urls.SECRET)
        wanted = sds_secret_names((r.message for r in self.get(type_urls.LISTENER).values()),
                                  (r.message for r in self.get(type_urls.CLUSTER).values()))
        return sorted(n for n in wanted if n not in have)
