"""The snapshot cache: one immutable snapshot per node class.

Tiny interface (as go-control-plane's ``SnapshotCache``):

* :meth:`SnapshotCache.publish` -- a new translation arrived; rebuild the
  snapshot of every known node class and wake their streams;
* :meth:`SnapshotCache.get` -- the current snapshot of a node class
  (built on first use);
* :meth:`SnapshotCache.wait` -- until a snapshot newer than the one a stream
  has is available.  A node that connects before the first translation
  waits here; it never receives an empty config.

Serialize once: a translation's messages are wrapped into
:class:`~xds_server.snapshot.Resource` once, memoized by message identity,
so node classes that share clusters share the same bytes.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from google.protobuf.message import Message

from translators.node import NodeInfo
from translators.pipeline import Translation
from xds_server.snapshot import Resource, Snapshot

log = logging.getLogger(__name__)


class _ResourceTable:
    """Wraps one translation's messages into Resources, each serialized once."""

    __slots__ = ("translation", "generation", "_memo", "previous")

    def __init__(self, translation: Translation, generation: int, previous: "_ResourceTable | None" = None) -> None:
        self.translation = translation
        self.generation = generation
        self._memo: dict[int, tuple[Message, Resource]] = {}
        #: the previous table, while this one is being prepared: messages reused from the previous
        #: translation keep their serialized bytes
        self.previous = previous

    def _wrap(self, name: str, type_url: str, msg: Message) -> Resource:
        key = id(msg)
        hit = self._memo.get(key)
        if hit is None:
            old = self.previous._memo.get(key) if self.previous is not None else None
            if old is not None and old[0] is msg:
                hit = old
            else:
                hit = (msg, Resource.of(name=name, type_url=type_url, message=msg))
            self._memo[key] = hit
        return hit[1]

    def snapshot_for(self, node: NodeInfo) -> Snapshot:
        out = {type_url: {name: self._wrap(name, type_url, msg) for name, msg in messages.items()}
               for type_url, messages in self.translation.for_node(node).items()}

        def resolve(type_url: str, name: str) -> Resource | None:
            # not memoized in the table: the snapshot's own bounded cache keeps resolved names
            msg = self.translation.resolve(node, type_url, name)
            return None if msg is None else Resource.of(name=name, type_url=type_url, message=msg)

        return Snapshot.build(out, generation=self.generation, resolver=resolve)


class TooManyClasses(Exception):
    """A new node would exceed the cap on distinct node classes."""


class SnapshotCache:
    """Snapshots keyed by *node class*: what a node's config depends on (its flavour, its namespace and the
    gateways that select it; :meth:`Translation.selection_key`), never its raw labels.  A thousand nodes
    with made-up label sets that select the same gateways share one snapshot, and the number of distinct
    classes is capped (``max_classes``), so self-asserted metadata cannot multiply the work."""

    def __init__(self, *, max_classes: int = 1000,
                 on_inconsistent: Callable[[NodeInfo, list[str]], None] | None = None) -> None:
        self._table: _ResourceTable | None = None
        #: class key -> snapshot
        self._snapshots: dict[tuple, Snapshot] = {}
        #: every node a stream uses -> its class key under the current table
        self._nodes: dict[NodeInfo, tuple] = {}
        self._changed = asyncio.Event()
        #: called (possibly in a worker thread) with a node and the reference problems of its snapshot
        self.on_inconsistent = on_inconsistent
        self.max_classes = max_classes

    @property
    def ready(self) -> bool:
        return self._table is not None

    @property
    def generation(self) -> int:
        return self._table.generation if self._table else 0

    @property
    def request_diagnostics(self) -> list:
        """Problems with names clients asked for (proxyless names), from the current translation."""
        return list(self._table.translation.requested.values()) if self._table is not None else []

    @property
    def classes(self) -> dict[NodeInfo, Snapshot]:
        """One representative node per class, with the class's snapshot."""
        out: dict[NodeInfo, Snapshot] = {}
        seen: set[tuple] = set()
        for node, key in list(self._nodes.items()):
            if key not in seen and key in self._snapshots:
                seen.add(key)
                out[node] = self._snapshots[key]
        return out

    def _build(self, table: _ResourceTable, node: NodeInfo) -> Snapshot | None:
        """A consistent snapshot, or None.  A missing SDS secret is reported but does not hold the snapshot
        back: the cluster or listener that needs it is the only thing that cannot work, and a Secret that
        exists only in another namespace must not freeze every other change for this node."""
        snap = table.snapshot_for(node)
        missing = snap.missing_secrets()
        if missing and self.on_inconsistent:
            self.on_inconsistent(node, [f"SDS secret {n!r} is referenced but does not exist for nodes in "
                                        f"namespace {node.namespace!r}" for n in missing])
        problems = snap.consistent(secrets=False)
        if problems:
            log.error("snapshot for %s is inconsistent; keeping the previous one: %s", node, "; ".join(problems))
            if self.on_inconsistent:
                self.on_inconsistent(node, problems)
            return None
        return snap

    def prepare(self, translation: Translation, *, generation: int) -> tuple[_ResourceTable, dict, dict]:
        """Serialize one snapshot per class of every known node.  Safe to run in a worker thread."""
        table = _ResourceTable(translation, generation, previous=self._table)
        nodes = dict(self._nodes)
        keys: dict[NodeInfo, tuple] = {}
        built: dict[tuple, Snapshot] = {}
        for node, old_key in nodes.items():
            key = keys[node] = translation.selection_key(node)
            if key in built:
                continue
            snap = self._build(table, node)
            if snap is None:  # inconsistent: the node's previous snapshot keeps serving
                snap = self._snapshots.get(old_key)
            if snap is not None:
                built[key] = snap
        table.previous = None
        return table, built, keys

    def install(self, prepared: tuple[_ResourceTable, dict, dict]) -> None:
        """Make prepared snapshots current and wake the streams.  Event-loop thread only."""
        table, built, keys = prepared
        self._table = table
        self._snapshots = dict(built)
        for node in list(self._nodes):  # nodes that arrived while the build ran are keyed on first use
            self._nodes[node] = keys.get(node) or table.translation.selection_key(node)
        self._wake()

    def publish(self, translation: Translation, *, generation: int) -> None:
        self.install(self.prepare(translation, generation=generation))

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def get(self, node: NodeInfo) -> Snapshot | None:
        """The snapshot of ``node``'s class; raises :class:`TooManyClasses` for a node of a new class
        beyond the cap."""
        if self._table is None:
            return None
        key = self._nodes.get(node)
        if key is None:
            key = self._table.translation.selection_key(node)
        snap = self._snapshots.get(key)
        if snap is None:
            if len(self._snapshots) >= self.max_classes:
                raise TooManyClasses(f"{len(self._snapshots)} node classes exist; the limit is {self.max_classes}")
            snap = self._build(self._table, node)
            if snap is None:
                return None
            self._snapshots[key] = snap
        self._nodes[node] = key
        return snap

    async def wait(self, node: NodeInfo, *, newer_than: Snapshot | None) -> Snapshot:
        while True:
            event = self._changed
            snap = self.get(node)
            if snap is not None and snap is not newer_than:
                return snap
            await event.wait()

    def forget(self, node: NodeInfo) -> None:
        """Drop a node no stream uses any more, and its class when no other node is in it."""
        key = self._nodes.pop(node, None)
        if key is not None and key not in self._nodes.values():
            self._snapshots.pop(key, None)
