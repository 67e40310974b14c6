"""The snapshot cache: one immutable snapshot per node class.

Tiny interface (as go-control-plane's ``SnapshotCache``):

* :meth:`SnapshotCache.publish` -- a new translation arrived; rebuild the
  snapshot of every known node class and wake their streams;
* :meth:`SnapshotCache.get` -- the current snapshot of a node class
  (built on first use);
* :meth:`SnapshotCache.wait` -- until a snapshot newer than the one a stream
  has is available.  A node that connects before the first translation
  waits here; it never receives an empty config.

One build thread: translations (the controller's, through :meth:`SnapshotCache.in_builder`) run in one
worker thread, one after another.  A new class's first snapshot is built on the event loop, but never while
a translation runs: both update state the translations share (the gateway views' memo, the built-cluster
table), so :meth:`SnapshotCache.wait` waits for the build thread to be idle first.  (Building it in the build
thread instead took the loop stall of a new class at 10,000 services from ~1 s to ~0.14 s, but cost ~110 MB
at 40 clients, and still ~100 MB once a leak of old snapshots was fixed, with or without ``malloc_trim``; a
1,000-client gateway fleet cannot afford it under 1 GB.  See docs/benchmarks.md, section 3.  Wrapping only
the shared CDS/EDS there cost the same ~100 MB.)  The bulk of a first snapshot at scale, wrapping its flavour's
shared CDS/EDS, is the same for every class: it runs on the loop in slices with the other streams served
between them (:meth:`_ResourceTable.wrap_shared_steps`), once per flavour and table; translations patch it
even while no node of the flavour is known.

Serialize once: a translation's messages are wrapped into
:class:`~xds_server.snapshot.Resource` once, memoized by message identity,
so node classes that share clusters share the same bytes.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

from google.protobuf.message import Message

from translators import persistent, type_urls
from translators.node import NodeInfo
from translators.pipeline import Translation
from xds_server.snapshot import Resource, Snapshot

log = logging.getLogger(__name__)


class _ResourceTable:
    """Wraps one translation's messages into Resources, each serialized once.

    Per type, a wrapped dict is remembered by the identity of the messages dict it wraps.  The next table
    reuses it when the translation hands the very same dict again (nothing changed), and patches the previous
    one (a persistent map: the changed entries only) when the translation says which names changed (CDS/EDS
    after a cluster edit): an unchanged resource keeps its Resource, bytes and version without a loop over
    all of them.
    """

    __slots__ = ("translation", "generation", "_memo", "previous", "wrapped", "previous_wrapped", "shared",
                 "previous_shared")

    def __init__(self, translation: Translation, generation: int, previous: "_ResourceTable | None" = None) -> None:
        self.translation = translation
        self.generation = generation
        self._memo: dict[int, tuple[Message, Resource]] = {}
        #: the previous table, while this one is being prepared: messages reused from the previous
        #: translation keep their serialized bytes
        self.previous = previous
        #: id(messages dict) -> (messages dict, wrapped dict)
        self.wrapped: dict[int, tuple[dict, dict[str, Resource]]] = {}
        self.previous_wrapped = previous.wrapped if previous is not None else {}
        #: (flavour, type) -> (messages dict, wrapped dict) of the shared CDS/EDS, the base of the next patch
        self.shared: dict[tuple[str, str], tuple[dict, dict[str, Resource]]] = {}
        self.previous_shared = previous.shared if previous is not None else {}

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

    def _wrapped_dict(self, type_url: str, messages: dict, flavour: str) \
            -> tuple[dict[str, Resource], frozenset | None, dict[str, Resource] | None]:
        """The wrapped dict for ``messages``, the names that changed (None: unknown), and the wrapped dict
        they changed from."""
        hit = self._reused(messages)
        if hit is not None:
            self.wrapped[id(messages)] = hit
            if type_url in _SHARED_TYPES:
                self.shared[(flavour, type_url)] = hit
            return hit[1], frozenset(), hit[1]
        changes, base = self._shared_patch(type_url, flavour) if type_url in _SHARED_TYPES else (None, None)
        patched = self.translation.patched.get(id(messages)) if type_url not in _SHARED_TYPES else None
        if patched is not None and patched[0] is messages:  # a per-node dict patched from the previous one
            prev = self.previous_wrapped.get(id(patched[1]))
            if prev is not None and prev[0] is patched[1]:
                base, changes = prev[1], patched[2]
        if base is not None:  # patched: a persistent map shares every entry but the changed ones
            out = persistent.patched(base, put=[(n, self._wrap(n, type_url, m)) for n in changes
                                                if (m := messages.get(n)) is not None],
                                     drop=[n for n in changes if n not in messages])
        else:
            out = {name: self._wrap(name, type_url, msg) for name, msg in messages.items()}
            if isinstance(messages, persistent.Map):  # the big tables (CDS, EDS, VHDS): patched from now on
                out = persistent.frozen(out)
            changes = None
        self.wrapped[id(messages)] = (messages, out)
        if type_url in _SHARED_TYPES:
            self.shared[(flavour, type_url)] = (messages, out)
        return out, changes, base

    def _reused(self, messages: dict) -> tuple[dict, dict[str, Resource]] | None:
        """The wrapping of the very same messages dict, by this table or the previous one."""
        hit = self.wrapped.get(id(messages)) or self.previous_wrapped.get(id(messages))
        return hit if hit is not None and hit[0] is messages else None

    def _shared_patch(self, type_url: str, flavour: str) -> tuple[frozenset | None, dict[str, Resource] | None]:
        """For a shared type: the names this translation changed, and the previous table's wrapping they are
        relative to (``base`` None: it is wrapped whole)."""
        changes = self.translation.shared_changes.get(flavour)
        return changes, self._previous_shared_wrapped(type_url, flavour) if changes is not None else None

    def _previous_shared_wrapped(self, type_url: str, flavour: str) -> dict[str, Resource] | None:
        """The previous table's wrapping of exactly the dict this translation's changes are relative to."""
        hit = self.previous_shared.get((flavour, type_url))
        base = self.translation.shared_base.get(flavour, {}).get(type_url)
        return hit[1] if hit is not None and base is not None and hit[0] is base else None

    def has_shared(self, flavour: str) -> bool:
        """Whether this table has wrapped ``flavour``'s shared CDS/EDS."""
        return all((flavour, t) in self.shared for t in _SHARED_TYPES)

    def wrap_shared(self, flavour: str) -> None:
        """Wrap ``flavour``'s shared CDS/EDS into this table (the same, patched or whole), as a snapshot of a
        class of that flavour would."""
        shared = self.translation.shared(flavour)
        for type_url in sorted(_SHARED_TYPES):
            self._wrapped_dict(type_url, shared[type_url], flavour)

    def wrap_shared_steps(self, flavour: str, *, step: int = 2000) -> Iterator[None]:
        """Wrap ``flavour``'s shared CDS/EDS as a class's first snapshot would, yielding after every ``step``
        resources: the bulk of a new class's first snapshot at scale (the same for every class), which
        :meth:`SnapshotCache.wait` runs on the event loop in slices, so the other streams are served
        between them.  (Not in the build thread: its allocator arena kept ~100 MB more; docs/benchmarks.md.)"""
        shared = self.translation.shared(flavour)
        for type_url in sorted(_SHARED_TYPES):
            messages = shared[type_url]
            if (flavour, type_url) in self.shared or self._reused(messages) is not None or \
                    self._shared_patch(type_url, flavour)[1] is not None:
                continue  # the very same, or a patch of the previous table's: cheap, made by the snapshot
            items = list(messages.items())
            for i in range(0, len(items), step):
                for name, msg in items[i:i + step]:
                    self._wrap(name, type_url, msg)  # (memoized: the snapshot's wrapping finds them)
                yield

    def snapshot_for(self, node: NodeInfo) -> Snapshot:
        out: dict[str, dict[str, Resource]] = {}
        changed: dict[str, frozenset | None] = {}
        bases: dict[str, dict[str, Resource]] = {}
        for type_url, messages in self.translation.for_node(node).items():
            out[type_url], changed[type_url], base = self._wrapped_dict(type_url, messages, node.flavour)
            if base is not None:
                bases[type_url] = base

        def resolve(type_url: str, name: str) -> Resource | None:
            # not memoized in the table: the snapshot's own bounded cache keeps resolved names
            msg = self.translation.resolve(node, type_url, name)
            return None if msg is None else Resource.of(name=name, type_url=type_url, message=msg)

        return Snapshot.build(out, generation=self.generation, resolver=resolve, changed=changed,
                              changed_from=bases)


#: the types every node of a flavour shares (built once per translation, patched between translations)
_SHARED_TYPES = frozenset({type_urls.CLUSTER, type_urls.ENDPOINT})


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
        #: the build thread (see the module docstring); created on first use
        self._builder: ThreadPoolExecutor | None = None
        #: jobs submitted to the build thread and not finished; set when there are none
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
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

    def _build(self, table: _ResourceTable, node: NodeInfo, since: Snapshot | None = None) -> Snapshot | None:
        """A consistent snapshot, or None.  A missing SDS secret is reported but does not hold the snapshot
        back: the cluster or listener that needs it is the only thing that cannot work, and a Secret that
        exists only in another namespace must not freeze every other change for this node.  ``since``: the
        class's previous (consistent) snapshot, so only what changed is checked."""
        snap = table.snapshot_for(node)
        missing = snap.missing_secrets(since)
        if missing and self.on_inconsistent:
            self.on_inconsistent(node, [f"SDS secret {n!r} is referenced but does not exist for nodes in "
                                        f"namespace {node.namespace!r}" for n in missing])
        problems = snap.consistent(secrets=False, since=since)
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
            snap = self._build(table, node, since=self._snapshots.get(old_key))
            if snap is None:  # inconsistent: the node's previous snapshot keeps serving
                snap = self._snapshots.get(old_key)
            if snap is not None:
                built[key] = snap
        if translation.cluster_changes is not None:  # kept warm while no node of a flavour is known: a patch
            for flavour in sorted({f for f, _ in table.previous_shared} - {n.flavour for n in nodes}):
                table.wrap_shared(flavour)
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

    async def in_builder(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Run ``fn(*args)`` in the build thread (translations: see the module docstring)."""
        if self._builder is None:
            self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xds-build")
        self._busy += 1
        self._idle.clear()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._builder, fn, *args)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    def _known(self, node: NodeInfo) -> tuple[tuple | None, Snapshot | None]:
        """``(class key, its snapshot or None)`` without building; raises :class:`TooManyClasses` for a
        node of a new class beyond the cap."""
        if self._table is None:
            return None, None
        key = self._nodes.get(node)
        if key is None:
            key = self._table.translation.selection_key(node)
        snap = self._snapshots.get(key)
        if snap is None and len(self._snapshots) >= self.max_classes:
            raise TooManyClasses(f"{len(self._snapshots)} node classes exist; the limit is {self.max_classes}")
        return key, snap

    def known(self, node: NodeInfo) -> Snapshot | None:
        """The snapshot of ``node``'s class if one is built; never builds (status views)."""
        try:
            return self._known(node)[1]
        except TooManyClasses:
            return None

    def get(self, node: NodeInfo) -> Snapshot | None:
        """The snapshot of ``node``'s class, built here if the class is new; raises :class:`TooManyClasses`
        for a node of a new class beyond the cap.  Not while the build thread runs a translation: streams
        use :meth:`wait`, which waits for that."""
        key, snap = self._known(node)
        if key is None:
            return None
        if snap is None:
            snap = self._build(self._table, node)
            if snap is None:
                return None
            self._snapshots[key] = snap
        self._nodes[node] = key
        return snap

    async def wait(self, node: NodeInfo, *, newer_than: Snapshot | None) -> Snapshot:
        """The class's snapshot once there is one that is not ``newer_than``.  A new class's first snapshot
        is built once the build thread is idle.  Most of its work at scale (the shared CDS/EDS of its flavour,
        if the current table has not wrapped them yet, and its virtual hosts' routes) runs first, in slices
        with the other streams served between them; then the rest, which the loop runs to the end (no
        translation can start meanwhile, since the controller starts them from the loop)."""
        while True:
            event = self._changed
            table = self._table
            if table is not None and self._known(node)[1] is None:
                if self._busy:
                    await self._idle.wait()
                    continue
                # the bulk of the work, in slices: its flavour's shared CDS/EDS (unless this table has them),
                # then its own virtual hosts' routes; no slice runs beside a translation (the controller starts
                # them from the loop: checked after every slice)
                steps = itertools.chain(() if table.has_shared(node.flavour) else table.wrap_shared_steps(node.flavour),
                                        table.translation.warm_steps(node))
                interrupted = False
                for _ in steps:
                    await asyncio.sleep(0)  # the other streams run between the slices
                    if self._busy or self._table is not table:
                        interrupted = True
                        break
                if interrupted:
                    continue  # a translation started meanwhile: its table is the one to build from
            snap = self.get(node)
            if snap is not None and snap is not newer_than:
                return snap
            await event.wait()

    def forget(self, node: NodeInfo) -> None:
        """Drop a node no stream uses any more, and its class when no other node is in it."""
        key = self._nodes.pop(node, None)
        if key is not None and key not in self._nodes.values():
            self._snapshots.pop(key, None)
