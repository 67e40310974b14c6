"""Debounced translation: store changes -> translate -> cache.

Bursts of changes are coalesced: translation starts after ``quiet`` seconds
without a change, but never later than ``max_delay`` after the first change
of a burst (100 ms and 1 s by default).  A single edit after a quiet spell
is translated after ``leading`` (10 ms), not the whole quiet period.  Translation and serialization run in
the cache's build thread so ADS streams keep flowing meanwhile.  Each translation
keeps the previous translation's *accepted* objects, so an object whose new
version is broken keeps serving its last good version.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Mapping

from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject, ObjectRef
from translators.gateway_api import DEFAULT_GATEWAY_CLASS
from translators.pipeline import Translation, translate
from xds_server import gc_policy
from xds_server.cache import SnapshotCache
from xds_server.metrics import XdsMetrics
from xds_server.redact import redact
from xds_server.store import ConfigStore

log = logging.getLogger(__name__)


gc_paused = gc_policy.paused  # (bench/translation.py uses it too)

_LEVEL = {Severity.ERROR: logging.ERROR, Severity.WARNING: logging.WARNING, Severity.INFO: logging.DEBUG}


class Controller:
    def __init__(self, *, store: ConfigStore, cache: SnapshotCache, quiet: float = 0.1, max_delay: float = 1.0,
                 leading: float = 0.01,
                 clock: Callable[[], float] = time.monotonic, gateway_class: str = DEFAULT_GATEWAY_CLASS,
                 on_translated: Callable[[Translation, Mapping[ObjectRef, ConfigObject]], None] | None = None,
                 ambassador_ids: tuple[str, ...] = ("default",), gateway_addresses: tuple[str, ...] = (),
                 metrics: "XdsMetrics | None" = None) -> None:
        #: translation time goes here (``xds_server_translation_seconds``)
        self.metrics = metrics
        #: monotonic time of the first store change not yet translated, and per translated generation the
        #: time its oldest change was seen (for ``xds_server_convergence_seconds``); bounded
        self._pending_change: float | None = None
        self._change_times: dict[int, float] = {}
        self._counted_objects: list[ConfigObject] = []
        self._counts: tuple[int, dict[str, int]] = (0, {})
        self.gateway_addresses = tuple(gateway_addresses)
        self.gateway_class = gateway_class
        self.ambassador_ids = tuple(ambassador_ids)
        #: called in a worker thread after each publish (status writing) with the translation and the objects it
        #: was made from by key (an immutable map: it may be kept); failures are logged
        self.on_translated = on_translated
        self.store = store
        self.cache = cache
        self.quiet = quiet
        self.max_delay = max_delay
        #: the short wait for a change after a quiet spell (see :meth:`_debounce`)
        self.leading = min(leading, quiet)
        self._last_step_end = float("-inf")
        self.clock = clock
        self.diagnostics: list[Diagnostic] = []
        self.translations = 0
        self.last_duration_s = 0.0
        self._accepted: dict[ObjectRef, ConfigObject] = {}
        self._previous: Translation | None = None
        self._translated_generation = -1
        self._wakeup = asyncio.Event()
        store.subscribe(self._wakeup.set)
        store.subscribe(self._note_change)
        #: snapshot reference problems found while preparing the current translation
        self._reference_problems: dict[tuple[str, str], Diagnostic] = {}
        if cache.on_inconsistent is None:
            cache.on_inconsistent = self._on_inconsistent

    def _note_change(self) -> None:
        if self._pending_change is None:
            self._pending_change = time.monotonic()

    def changed_at(self, generation: int) -> float | None:
        """When the controller saw the (first) store change the snapshot of ``generation`` was built from."""
        return self._change_times.get(generation)

    @property
    def translation(self) -> Translation | None:
        """The last successful translation."""
        return self._previous

    def sources(self, type_url: str, name: str, node=None) -> list:  # noqa: ANN001
        """The ``(file, ObjectRef)`` list a served resource was built from (empty before any translation)."""
        translation = self._previous
        return translation.sources(type_url, name, node=node) if translation is not None else []

    @property
    def object_counts(self) -> dict[str, int]:
        """kind -> count of the objects of the last translation (computed on demand, once per translation)."""
        objects = self._counted_objects
        if self._counts[0] != id(objects):
            counts: dict[str, int] = {}
            for o in objects:
                counts[o.ref.kind] = counts.get(o.ref.kind, 0) + 1
            self._counts = (id(objects), counts)
        return self._counts[1]

    def diagnostic_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in list(self.diagnostics):
            out[d.severity.value] = out.get(d.severity.value, 0) + 1
        return out

    def _on_inconsistent(self, node, problems: list[str]) -> None:  # noqa: ANN001 - worker thread
        for p in problems:
            self._reference_problems[(node.namespace, p)] = Diagnostic(
                Severity.WARNING if p.startswith("SDS secret") else Severity.ERROR, "inconsistent",
                f"{node.flavour} nodes in namespace {node.namespace}: {p}")

    async def step(self) -> None:
        """Translate and publish.  A bug in translation is logged and shown in ``/debug/diagnostics``; the
        last good snapshot keeps serving (``/readyz`` stays 503 only if no snapshot was ever built)."""
        generation = self.store.generation
        try:
            await self._step()
        except Exception as exc:  # noqa: BLE001 - nothing may take the server down
            log.exception("translation failed; the last good snapshot keeps serving")
            self._translated_generation = generation
            keeps = ("the last good snapshot keeps serving" if self.cache.ready
                     else "nothing is served until a translation succeeds")
            failure = Diagnostic(Severity.ERROR, "internal", redact(f"translation failed: {type(exc).__name__}: "
                                                                   f"{exc}"[:500]) + f"; {keeps}")
            try:
                _, origin_diags = self.store.objects()
            except Exception:  # noqa: BLE001
                origin_diags = []
            self.diagnostics = [failure, *origin_diags, *(d for d in self.diagnostics
                                                          if d.code != "internal" and d not in origin_diags)]

    async def _step(self) -> None:
        started = self.clock()
        generation = self.store.generation
        change_seen, self._pending_change = self._pending_change, None
        objects, origin_diags = self.store.objects()
        by_ref = self.store.by_ref()
        self._reference_problems = {}
        translation, prepared = await self.cache.in_builder(self._translate_and_serialize, objects, generation)
        self._previous = translation
        diags = origin_diags + translation.diagnostics + list(self._reference_problems.values())
        self._accepted = translation.accepted
        self.cache.install(prepared)
        if translation.cluster_changes is None:
            gc_policy.settle_first_build()  # (a build from scratch: see xds_server/gc_policy.py)
        self._translated_generation = generation
        self._change_times[generation] = change_seen if change_seen is not None else time.monotonic()
        while len(self._change_times) > 64:
            self._change_times.pop(next(iter(self._change_times)))
        self._counted_objects = objects  # counted when /metrics asks, not on every translation
        self.translations += 1
        self.last_duration_s = self.clock() - started
        if self.metrics is not None:
            self.metrics.translated(self.last_duration_s)
        self._log_new(diags)
        self.diagnostics = diags
        log.info("translation %d (generation %d) took %.3fs: %d clusters, %d diagnostics", self.translations,
                 generation, self.last_duration_s, len(translation.model.clusters), len(diags))
        if self.on_translated is not None:
            try:
                await asyncio.to_thread(self.on_translated, translation, by_ref)
            except Exception:  # noqa: BLE001
                log.exception("after-translation hook failed")

    def _translate_and_serialize(self, objects: list[ConfigObject], generation: int):
        """The cache's build thread (never beside a new class's first build: they share memo state).  The
        cyclic GC is paused meanwhile (``xds_server/gc_policy.py``)."""
        with gc_paused():
            translation = translate(objects, accepted=self._accepted, previous=self._previous,
                                    gateway_class=self.gateway_class, ambassador_ids=self.ambassador_ids,
                                    gateway_addresses=self.gateway_addresses)
            prepared = self.cache.prepare(translation, generation=generation)
            gc_policy.freeze_if_big()  # most of the config replaced: no stall when the GC comes back on
            return translation, prepared

    def _log_new(self, diags: list[Diagnostic]) -> None:
        before = set(self.diagnostics)
        for d in diags:
            if d not in before:
                log.log(_LEVEL[d.severity], "%s", redact(d.format()))

    async def run(self, *, stop_event: asyncio.Event | None = None) -> None:
        """Translate now, then after every debounced burst of changes, until ``stop_event``."""
        stop_event = stop_event or asyncio.Event()
        await self.step()
        while not stop_event.is_set():
            self._wakeup.clear()
            if self.store.generation == self._translated_generation:
                waiter = asyncio.ensure_future(self._wakeup.wait())
                stopper = asyncio.ensure_future(stop_event.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if stop_event.is_set():
                    return
            await self._debounce()
            await self.step()
            self._last_step_end = self.clock()

    async def _debounce(self) -> None:
        """Wait out a burst: ``quiet`` seconds without a change, at most ``max_delay`` in all.  A change
        that arrives after a quiet spell (nothing translated for ``quiet`` seconds) is a single edit, not
        a burst: it waits only ``leading`` seconds (to take the rest of the same save), so one edit is
        not delayed by the whole quiet period; what keeps coming after it is debounced as usual."""
        first = self.clock()
        if first - self._last_step_end >= self.quiet and self.leading < self.quiet:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.leading)
            except asyncio.TimeoutError:
                return  # nothing more came: translate now
        while True:
            self._wakeup.clear()
            remaining = self.max_delay - (self.clock() - first)
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=min(self.quiet, remaining))
            except asyncio.TimeoutError:
                return
