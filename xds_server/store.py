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

from typing import Callable, Iterable

from translators.by_identity import note_span
from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject, ObjectRef


class ConfigStore:
    def __init__(self) -> None:
        self._by_origin: dict[str, tuple[ConfigObject, ...]] = {}
        self._origin_diags: dict[str, tuple[Diagnostic, ...]] = {}
        #: the order in which origins first appeared: the first-loaded owner of a key keeps it
        self._order: dict[str, int] = {}
        self._loads = 0
        #: the last merge, and what changed since: (origin, its objects before, its diagnostics before)
        self._cached: tuple[list[ConfigObject], list[Diagnostic]] | None = None
        #: the object list last handed out: the next patched one notes its span against it
        #: (translators/by_identity.py), so the engine's diff of 30,000 objects costs what changed
        self._handed: list[ConfigObject] | None = None
        self._position: dict[ObjectRef, int] = {}
        self._owner: dict[ObjectRef, str] = {}
        self._dirty: list[tuple[str, tuple | None, tuple]] | None = []
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
        if self._dirty is not None:
            self._dirty.append((origin, self._by_origin.get(origin), self._origin_diags.get(origin, ())))
            if len(self._dirty) > 64:
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
            self._dirty = None  # positions shift: merge everything next time
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

        Incremental: after the last call, a new origin loaded last whose keys are all new is appended,
        and an origin replaced with the same keys in the same order is patched in place; anything else
        (a removal, a duplicate) merges everything again.
        """
        fast = self._patched()
        if fast is not None:
            return fast
        result = self._merge()
        self._remember(result)
        self._handed = result[0]
        return result

    def _remember(self, result: tuple[list[ConfigObject], list[Diagnostic]]) -> None:
        objects, diags = result
        self._cached = (list(objects), list(diags))
        self._position = {o.ref: i for i, o in enumerate(objects)}
        self._owner = {}
        for origin, objs in self._by_origin.items():
            for o in objs:
                self._owner.setdefault(o.ref, origin)
        self._dirty = []
        self._has_duplicates = any(d.code == "duplicate" for d in diags)

    def _patched(self) -> tuple[list[ConfigObject], list[Diagnostic]] | None:
        if self._cached is None or self._has_duplicates or self._dirty is None:
            return None
        if not self._dirty:
            out = list(self._cached[0])
            self._hand(out, (len(out), len(out), len(out)), old_len=len(out))
            return out, list(self._cached[1])
        objects = list(self._cached[0])
        old_len, low, high = len(objects), len(objects), 0  # the positions patched or appended
        diags_changed = False
        for origin, old_objs, old_diags in self._dirty:
            new_objs = self._by_origin.get(origin)
            if new_objs is None:
                return None  # removed: positions shift
            if old_diags != self._origin_diags.get(origin, ()):
                diags_changed = True
            if old_objs is None:  # a new origin: appended, if its keys are all new and it is the newest
                if self._order.get(origin) != self._loads or any(o.ref in self._position for o in new_objs):
                    return None
                refs = [o.ref for o in new_objs]
                if len(set(refs)) != len(refs):
                    return None
                low = min(low, len(objects))
                for o in new_objs:
                    self._position[o.ref] = len(objects)
                    self._owner[o.ref] = origin
                    objects.append(o)
                high = len(objects)
                continue
            if [o.ref for o in old_objs] != [o.ref for o in new_objs] or \
                    any(self._owner.get(o.ref) != origin for o in new_objs):
                return None
            for o in new_objs:
                i = self._position[o.ref]
                objects[i] = o
                low, high = min(low, i), max(high, i + 1)
        self._dirty = []
        diags = self._cached[1]
        if diags_changed:
            diags = [d for origin in sorted(self._by_origin, key=lambda o: (self._order.get(o, 0), o))
                     for d in self._origin_diags.get(origin, ())]
        self._cached = (objects, diags)
        out = list(objects)
        high = max(high, low)
        self._hand(out, (low, old_len - (len(out) - high), high), old_len=old_len)
        return out, list(diags)

    def _hand(self, out: list[ConfigObject], span: tuple[int, int, int], *, old_len: int) -> None:
        """Note ``out``'s span against the list handed out before, which held the same objects as the
        cached list ``out`` was patched from (``old_len`` of them)."""
        if self._handed is not None and len(self._handed) == old_len:
            note_span(self._handed, out, span)
        self._handed = out

    def _merge(self) -> tuple[list[ConfigObject], list[Diagnostic]]:
        seen: dict[ObjectRef, ConfigObject] = {}
        diags: list[Diagnostic] = []
        for origin in sorted(self._by_origin, key=lambda o: (self._order.get(o, 0), o)):
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
