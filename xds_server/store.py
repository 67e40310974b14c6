"""The config store: current objects by key, per source, and what changed.

Sources report whole batches per *origin* (a file path, a Kubernetes
kind): :meth:`ConfigStore.replace` swaps what that origin contributes.  The
store keeps diagnostics about the origins themselves (a file that is not
valid YAML), notifies one listener that something changed, and counts
generations so the debouncer knows whether work is pending.

When two origins define the same key, the origin that was loaded first keeps
the object (a new file cannot take an object over), and a warning on each
file names the other.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import immutables

from translators.by_identity import note_delta
from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject, ObjectRef

#: changed origins merged incrementally; more at once (a resync) merge everything
MAX_PATCHED = 4096


class ConfigStore:
    def __init__(self) -> None:
        self._by_origin: dict[str, tuple[ConfigObject, ...]] = {}
        self._origin_diags: dict[str, tuple[Diagnostic, ...]] = {}
        #: the order in which origins first appeared: the first-loaded owner of a key keeps it
        self._order: dict[str, int] = {}
        self._loads = 0
        #: the last merge: its objects by key, in merge order (a dict keeps insertion order through
        #: replacements and deletions, so patching it is patching the merged list), and its diagnostics
        self._cached: tuple[dict[ObjectRef, ConfigObject], list[Diagnostic]] | None = None
        #: the same objects by key, as a persistent map: what :meth:`by_ref` hands out (immutable, so a
        #: status writer in another thread may keep it while the store changes; patched at the cost of
        #: the change)
        self._by_ref: immutables.Map = immutables.Map()
        #: the newest origin order in the last merge: origins loaded after it are appended
        self._merged_top = 0
        #: the object list last handed out: the next patched one notes what went and came against it
        #: (translators/by_identity.py), so the engine's diff of 30,000 objects costs what changed
        self._handed: list[ConfigObject] | None = None
        self._owner: dict[ObjectRef, str] = {}
        #: origin -> (its objects, its diagnostics, its order) at the last merge, for the origins changed since
        #: (None: too many changes, merge everything)
        self._dirty: dict[str, tuple[tuple | None, tuple, int | None]] | None = {}
        self._has_duplicates = False
        self.generation = 0
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def replace(self, origin: str, objects: Iterable[ConfigObject], diagnostics: Iterable[Diagnostic] = ()) -> None:
        objs = tuple(objects)
        diags = tuple(diagnostics)
        if self._by_origin.get(origin) == objs and self._origin_diags.get(origin, ()) == diags:
            return
        self._note(origin)
        self._by_origin[origin] = objs
        self._origin_diags[origin] = diags
        self._first_seen(origin)
        self._changed()

    def _note(self, origin: str) -> None:
        """Remember what ``origin`` held before it changes (for the incremental merge)."""
        if self._dirty is not None and origin not in self._dirty:
            self._dirty[origin] = (self._by_origin.get(origin), self._origin_diags.get(origin, ()),
                                   self._order.get(origin))
            if len(self._dirty) > MAX_PATCHED:
                self._dirty = None  # many changes at once: merge everything

    def _first_seen(self, origin: str) -> None:
        if origin not in self._order:
            self._loads += 1
            self._order[origin] = self._loads

    def set_diagnostics(self, origin: str, diagnostics: Iterable[Diagnostic]) -> None:
        """Diagnostics about an origin that holds no objects of its own (a missing directory)."""
        diags = tuple(diagnostics)
        if self._origin_diags.get(origin, ()) == diags:
            return
        self._note(origin)
        if diags:
            self._origin_diags[origin] = diags
            self._by_origin.setdefault(origin, ())
            self._first_seen(origin)
        else:
            self._origin_diags.pop(origin, None)
            if not self._by_origin.get(origin):
                self._by_origin.pop(origin, None)
        self._changed()

    def has_origin(self, origin: str) -> bool:
        return origin in self._by_origin

    def has_diagnostics(self, origin: str) -> bool:
        return bool(self._origin_diags.get(origin))

    def origins(self) -> list[str]:
        return sorted(self._by_origin)

    def remove(self, origin: str) -> None:
        if origin in self._by_origin or origin in self._origin_diags:
            self._note(origin)
            self._by_origin.pop(origin, None)
            self._origin_diags.pop(origin, None)
            self._order.pop(origin, None)
            self._changed()

    def keep_with_diagnostics(self, origin: str, diagnostics: Iterable[Diagnostic]) -> None:
        """An origin failed to load: keep its previous objects, replace its diagnostics."""
        diags = tuple(diagnostics)
        if self._origin_diags.get(origin) != diags:
            self._note(origin)
            self._origin_diags[origin] = diags
            self._by_origin.setdefault(origin, ())
            self._first_seen(origin)
            self._changed()

    def _changed(self) -> None:
        self.generation += 1
        for cb in self._listeners:
            cb()

    def objects(self) -> tuple[list[ConfigObject], list[Diagnostic]]:
        """All objects (duplicates resolved: the first-loaded origin keeps a key) and the origin-level
        diagnostics.

        Incremental, costing what changed: since the last call, origins loaded for the first time (or
        again) whose keys are all new are appended, an origin replaced with the same keys in the same order
        is patched in place, and a removed origin's objects are taken out; anything else (an origin's keys
        changed, a duplicate key anywhere, over :data:`MAX_PATCHED` origins changed) merges everything
        again.  Either way the result is what a full merge gives (tests/test_store.py).
        """
        fast = self._patched()
        if fast is not None:
            return fast
        result = self._merge()
        self._remember(result)
        self._handed = result[0]
        return result

    def by_ref(self) -> Mapping[ObjectRef, ConfigObject]:
        """The objects of the last :meth:`objects` call by key (the first-loaded origin's, for a key defined
        twice): an immutable map, made at the cost of what changed."""
        return self._by_ref

    def _remember(self, result: tuple[list[ConfigObject], list[Diagnostic]]) -> None:
        objects, diags = result
        self._cached = ({o.ref: o for o in objects}, list(diags))
        self._by_ref = immutables.Map(self._cached[0])
        self._owner = {}
        for origin, objs in self._by_origin.items():
            for o in objs:
                self._owner.setdefault(o.ref, origin)
        self._merged_top = max(self._order.values(), default=0)
        self._dirty = {}
        self._has_duplicates = any(d.code == "duplicate" for d in diags)

    def _patched(self) -> tuple[list[ConfigObject], list[Diagnostic]] | None:
        if self._cached is None or self._has_duplicates or self._dirty is None:
            return None
        merged, diags = self._cached
        went: list[ConfigObject] = []
        came: list[ConfigObject] = []
        if self._dirty:
            in_place: list[tuple[tuple, tuple]] = []
            leaving: list[tuple[str, tuple]] = []
            arriving: list[tuple[int, str]] = []
            diags_changed = False
            for origin, (old_objs, old_diags, old_order) in self._dirty.items():
                new_objs, order = self._by_origin.get(origin), self._order.get(origin)
                if old_diags != self._origin_diags.get(origin, ()):
                    diags_changed = True
                if old_objs is not None and new_objs is not None and order == old_order:
                    if old_objs is not new_objs:
                        if [o.ref for o in old_objs] != [o.ref for o in new_objs]:
                            return None  # its keys changed: its objects move within the merge order
                        in_place.append((old_objs, new_objs))
                    continue
                if old_objs:  # removed (or removed and loaded again: it is the newest now)
                    leaving.append((origin, old_objs))
                if new_objs is not None:
                    if order is None or order <= self._merged_top:
                        return None  # not the newest (its order outlived a removal): its place is inside
                    arriving.append((order, origin))
            arriving.sort()
            gone = {o.ref for _, objs in leaving for o in objs}
            new_refs: set[ObjectRef] = set()
            for _, origin in arriving:
                for o in self._by_origin[origin]:
                    if o.ref in new_refs or (o.ref in merged and o.ref not in gone):
                        return None  # a duplicate key: the full merge says who keeps it, and warns
                    new_refs.add(o.ref)
            # valid: patch the merge
            by_ref = self._by_ref.mutate()
            for origin, objs in leaving:
                for o in objs:
                    del merged[o.ref]
                    del by_ref[o.ref]
                    if self._owner.get(o.ref) == origin:
                        del self._owner[o.ref]
                went.extend(objs)
            for old_objs, new_objs in in_place:
                for a, b in zip(old_objs, new_objs):
                    if a is not b:
                        merged[b.ref] = by_ref[b.ref] = b
                        went.append(a)
                        came.append(b)
            for order, origin in arriving:
                for o in self._by_origin[origin]:
                    merged[o.ref] = by_ref[o.ref] = o
                    self._owner[o.ref] = origin
                    came.append(o)
                self._merged_top = max(self._merged_top, order)
            if diags_changed:
                diags = [d for origin in self._origins_in_order() for d in self._origin_diags.get(origin, ())]
                self._cached = (merged, diags)
            self._dirty = {}
            self._by_ref = by_ref.finish()
        out = list(merged.values())
        if self._handed is not None and len(self._handed) - len(went) + len(came) == len(out):
            note_delta(self._handed, out, went=went, came=came)
        self._handed = out
        return out, list(diags)

    def _origins_in_order(self) -> list[str]:
        """Origins in merge order: the first loaded first (then by name)."""
        return sorted(self._by_origin, key=lambda o: (self._order.get(o, 0), o))

    def _merge(self) -> tuple[list[ConfigObject], list[Diagnostic]]:
        seen: dict[ObjectRef, ConfigObject] = {}
        diags: list[Diagnostic] = []
        for origin in self._origins_in_order():
            diags.extend(self._origin_diags.get(origin, ()))
            for obj in self._by_origin[origin]:
                first = seen.get(obj.ref)
                if first is not None:
                    if first.source == obj.source:
                        diags.append(Diagnostic(Severity.WARNING, "duplicate", "defined twice in this file; the "
                                                "first definition wins", obj.source, obj.ref, "metadata.name"))
                        continue
                    diags.append(Diagnostic(Severity.WARNING, "duplicate", f"also defined in {first.source}, which "
                                            "was loaded first and keeps it; this definition is ignored", obj.source,
                                            obj.ref, "metadata.name"))
                    diags.append(Diagnostic(Severity.WARNING, "duplicate", f"also defined in {obj.source}; this "
                                            "definition (loaded first) wins", first.source, obj.ref, "metadata.name"))
                    continue
                seen[obj.ref] = obj
        return list(seen.values()), diags
