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
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import immutables
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from translators import type_urls
from translators.wire import field as _field, varint as _varint
from translators.references import eds_cluster_names, listener_route_names, route_cluster_names, sds_secret_names


#: ``Any.type_url`` fields (field 1), by type URL
_TYPE_FIELDS: dict[str, bytes] = {}

#: resolved (proxyless) names a snapshot remembers
RESOLVED_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    type_url: str
    message: Message = field(repr=False, compare=False)
    version: str
    #: ``DeltaDiscoveryResponse.resources`` entry: field 2 holding ``Resource{version=1, resource=2, name=3}``.
    #: Its ``resource`` field is the very bytes of a ``DiscoveryResponse.resources`` entry (field 2 holding
    #: ``Any``), so the SotW :attr:`entry` is a slice of it: one copy of the serialized message per resource,
    #: made once, and a response of either kind is a join of cached bytes for any number of streams
    delta_entry: bytes = field(repr=False)
    #: where :attr:`entry` lies in :attr:`delta_entry`
    _start: int = field(repr=False, compare=False)
    _stop: int = field(repr=False, compare=False)

    @classmethod
    def of(cls, *, name: str, type_url: str, message: Message) -> "Resource":
        body = message.SerializeToString(deterministic=True)
        type_field = _TYPE_FIELDS.get(type_url) or _TYPE_FIELDS.setdefault(type_url, _field(1, type_url.encode()))
        body_header = b"\x12" + _varint(len(body))
        any_len = len(type_field) + len(body_header) + len(body)
        version = getattr(message, "content_version", None)  # assembled messages hash their parts instead
        version = version if isinstance(version, str) else hashlib.sha256(body).hexdigest()[:16]
        version_field = _field(1, version.encode())
        entry_head = b"\x12" + _varint(any_len) + type_field + body_header
        tail = _field(3, name.encode())
        outer = b"\x12" + _varint(len(version_field) + len(entry_head) + len(body) + len(tail))
        delta = b"".join((outer, version_field, entry_head, body, tail))  # one copy of the body
        return cls(name, type_url, message, version, delta, len(outer) + len(version_field), len(delta) - len(tail))

    @property
    def entry(self) -> memoryview:
        """``DiscoveryResponse.resources`` entry: field 2 holding ``Any{type_url=1, value=2}`` (a view into
        :attr:`delta_entry`; ``b"".join`` takes it as it is)."""
        return memoryview(self.delta_entry)[self._start:self._stop]

    @property
    def body(self) -> bytes:
        """The serialized message (tests and tools)."""
        entry = self.entry
        i = 1  # past the tag: skip the length varint
        while entry[i] & 0x80:
            i += 1
        return any_pb2.Any.FromString(entry[i + 1:]).value


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
                     *(r.delta_entry for r in resources),
                     _field(4, type_url.encode()), _field(5, nonce.encode()),
                     *(_field(6, n.encode()) for n in removed)))


@dataclass(frozen=True, slots=True, weakref_slot=True)
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
    _versions: dict = field(default_factory=dict, compare=False, repr=False)

    #: per type, the names whose resource changed from the previous translation's snapshot of this class
    #: (empty: the very same resources; None: unknown)
    changed: Mapping[str, frozenset[str] | None] = field(default_factory=dict, compare=False, repr=False)
    #: per type, the wrapped dict ``changed`` is relative to
    changed_from: Mapping[str, Mapping[str, Resource]] = field(default_factory=dict, compare=False, repr=False)
    #: memo of :meth:`_sds_refs`, and of :meth:`delta_since` (a weak reference to the snapshot it was asked
    #: about, and the answer: a strong one would chain every snapshot ever built to the newest)
    _sds: list = field(default_factory=list, compare=False, repr=False)
    _delta: list = field(default_factory=list, compare=False, repr=False)
    #: memo of :meth:`_cluster_ref_counts`
    _refs: list = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def build(cls, resources: Mapping[str, Mapping[str, Resource]], *, generation: int = 0,
              resolver: Callable[[str, str], Resource | None] | None = None,
              changed: Mapping[str, frozenset[str] | None] | None = None,
              changed_from: Mapping[str, Mapping[str, Resource]] | None = None) -> "Snapshot":
        return cls(resources, generation, resolver, changed=changed or {}, changed_from=changed_from or {})

    def delta_since(self, since: "Snapshot | None") -> dict[str, frozenset[str]] | None:
        """Per type, the names whose Resource differs from ``since``'s; None when that is not known cheaply
        (then callers look at everything)."""
        if since is None:
            return None
        if self._delta and self._delta[0]() is since:
            return self._delta[1]  # consistent() and the SDS references both ask
        out: dict[str, frozenset[str]] | None = {}
        for t in set(self.resources) | set(since.resources):
            mine, theirs = self.resources.get(t, {}), since.resources.get(t, {})
            known = self.changed_since(t, theirs)
            if known is not None:
                out[t] = known
            elif len(mine) + len(theirs) <= 1024:
                out[t] = frozenset(n for n in set(mine) | set(theirs) if mine.get(n) is not theirs.get(n))
            else:
                out = None
                break
        self._delta[:] = [weakref.ref(since), out]
        return out

    def changed_since(self, type_url: str, base: Mapping[str, Resource] | None) -> frozenset[str] | None:
        """The names of ``type_url`` whose Resource differs from those in ``base`` (a dict of resources this
        snapshot or an earlier one carried): empty when it is the very same dict, the recorded changes when
        this snapshot's dict was patched from it, None when that is not known without comparing."""
        if base is None:
            return None
        mine = self.resources.get(type_url, {})
        if mine is base:
            return frozenset()
        if self.changed_from.get(type_url) is base:
            return self.changed.get(type_url)
        return None

    @property
    def versions(self) -> Mapping[str, str]:
        for t in self.resources:
            self.version(t)
        return self._versions

    def version(self, type_url: str, names: frozenset[str] | None = None) -> str:
        """The SotW version of a type (all of it, or the resources ``names`` selects), computed once per
        snapshot and subscription: a thousand streams with the same subscription hash it once."""
        key = type_url if names is None else (type_url, names)
        found = self._versions.get(key)  # type: ignore[call-overload]
        if found is None:
            found = self._versions[key] = version_of(self.select(type_url, names))  # type: ignore[index]
        return found

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

    def consistent(self, *, secrets: bool = True, since: "Snapshot | None" = None) -> list[str]:
        """Reference problems that would make Envoy wait or fail; empty when consistent.

        Every EDS cluster has an assignment, every RDS name used by a listener
        exists, every cluster a route names exists, and (with ``secrets``)
        every SDS secret a listener or cluster names is carried
        (go-control-plane's ``Snapshot.Consistent``, extended to route targets
        and secrets).
        """
        delta = self.delta_since(since)
        problems = []
        clusters = self.get(type_urls.CLUSTER)
        endpoints = self.get(type_urls.ENDPOINT)
        routes = self.get(type_urls.ROUTE)
        listeners = self.get(type_urls.LISTENER)
        if delta is None:
            eds = eds_cluster_names(r.message for r in clusters.values())
        else:  # ``since`` was consistent: only what changed can break it
            touched = delta.get(type_urls.CLUSTER, frozenset()) | delta.get(type_urls.ENDPOINT, frozenset())
            eds = eds_cluster_names(clusters[n].message for n in touched if n in clusters)
        for name in sorted(eds):
            if name not in endpoints:
                problems.append(f"EDS cluster {name!r} has no ClusterLoadAssignment")
        if delta is None or delta.get(type_urls.LISTENER) or delta.get(type_urls.ROUTE):
            for name in sorted(listener_route_names(r.message for r in listeners.values())):
                if name not in routes:
                    problems.append(f"listener refers to missing route configuration {name!r}")
        # a cluster that went away may still be named by a route nobody changed: the counts say whether any
        # route configuration or virtual host still names it, so only then is every one of them looked at
        gone = [n for n in delta.get(type_urls.CLUSTER, ()) if n not in clusters] if delta is not None else []
        counts = self._cluster_ref_counts(since)
        still_named = any(counts.get(n) for n in gone)
        for type_url in (type_urls.ROUTE, type_urls.VIRTUAL_HOST):  # route configurations, and VHDS hosts
            have = self.get(type_url)
            if delta is None or still_named:
                checked = have.values()
            else:  # only the resources that changed, and of those only references that are new
                checked = [have[n] for n in delta.get(type_url, ()) if n in have]
            for r in checked:
                old = since.get(type_url).get(r.name) if since is not None and delta is not None else None
                old_refs = _cluster_refs(old) if old is not None and not still_named else frozenset()
                for cluster in sorted(c for c in _cluster_refs(r) - old_refs if c not in clusters):
                    what = "route configuration" if type_url == type_urls.ROUTE else "virtual host"
                    problems.append(f"{what} {r.name!r} refers to missing cluster {cluster!r}")
        if secrets:
            problems += [f"SDS secret {name!r} is referenced but not generated (Envoy would keep the listener or "
                         "cluster that needs it warming, then reject it)" for name in self.missing_secrets(since)]
        return problems

    def _cluster_ref_counts(self, since: "Snapshot | None") -> immutables.Map:
        """Cluster name -> how many route configurations and virtual hosts name it; remembered, and derived
        from ``since``'s counts by the resources that changed (a persistent map: the cost is the change)."""
        if self._refs:
            return self._refs[0]
        delta = self.delta_since(since)
        base = since._refs[0] if delta is not None and since is not None and since._refs else None
        if base is None:
            counts: dict[str, int] = {}
            for type_url in (type_urls.ROUTE, type_urls.VIRTUAL_HOST):
                for r in self.get(type_url).values():
                    for c in _cluster_refs(r):
                        counts[c] = counts.get(c, 0) + 1
            out = immutables.Map(counts)
        else:
            with base.mutate() as m:
                for type_url in (type_urls.ROUTE, type_urls.VIRTUAL_HOST):
                    have, had = self.get(type_url), since.get(type_url)
                    for n in delta.get(type_url, ()):
                        old, new = had.get(n), have.get(n)
                        if old is not None:
                            for c in _cluster_refs(old):
                                k = m.get(c, 0) - 1
                                if k > 0:
                                    m[c] = k
                                else:
                                    m.pop(c, None)
                        if new is not None:
                            for c in _cluster_refs(new):
                                m[c] = m.get(c, 0) + 1
                out = m.finish()
        self._refs.append(out)
        return out

    def missing_secrets(self, since: "Snapshot | None" = None) -> list[str]:
        """SDS names a listener or cluster refers to that this snapshot does not carry."""
        listener_names, by_secret = self._sds_refs(since)
        have = self.get(type_urls.SECRET)
        return sorted(n for n in listener_names | by_secret.keys() if n not in have)

    def _sds_refs(self, since: "Snapshot | None") -> tuple[set[str], dict[str, set[str]]]:
        """(SDS names listeners refer to, SDS name -> clusters referring to it); remembered, and derived from
        ``since`` by the clusters that changed while the listeners did not."""
        if self._sds:
            return self._sds[0]
        clusters = self.get(type_urls.CLUSTER)
        delta = self.delta_since(since)
        if delta is not None and since is not None and since._sds:
            listener_names, by_secret = since._sds[0]
            if delta.get(type_urls.LISTENER):
                listener_names = sds_secret_names((r.message for r in self.get(type_urls.LISTENER).values()), ())
            changed = delta.get(type_urls.CLUSTER, frozenset())
            if changed:
                by_secret = {k: v - changed for k, v in by_secret.items()}
                _add_cluster_secrets(by_secret, ((n, clusters[n]) for n in changed if n in clusters))
                by_secret = {k: v for k, v in by_secret.items() if v}
        else:
            listener_names = sds_secret_names((r.message for r in self.get(type_urls.LISTENER).values()), ())
            by_secret = {}
            _add_cluster_secrets(by_secret, clusters.items())
        self._sds.append((listener_names, by_secret))
        return listener_names, by_secret


def _cluster_refs(r: Resource) -> frozenset[str]:
    """The clusters a route configuration or virtual host names."""
    refs = getattr(r.message, "cluster_refs", None)
    if isinstance(refs, frozenset):
        return refs
    msg = r.message
    if not hasattr(msg, "virtual_hosts"):  # a VHDS virtual host
        msg = route_pb2.RouteConfiguration(virtual_hosts=[msg])
    return frozenset(c for _, c in route_cluster_names([msg]))


def _add_cluster_secrets(by_secret: dict[str, set[str]], clusters: Iterable[tuple[str, Resource]]) -> None:
    """Record, for each SDS secret the given clusters refer to, which clusters do."""
    for name, r in clusters:
        for secret in sds_secret_names((), (r.message,)):
            by_secret.setdefault(secret, set()).add(name)
