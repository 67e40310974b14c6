"""The config store: current objects by key, per source, and what changed.

Sources report whole batches per *origin* (a file path, a Kubernetes
kind): :meth:`ConfigStore.replace` swaps what that origin contributes.  The
store keeps diagnostics about the origins themselves (a file that is not
valid YAML), notifies one listener that something changed, and counts
generations so the debouncer knows whether work is pending.

When two origins define the same key, the first origin in sort order wins and
a warning names both.
"""
from __future__ import annotations

from typing import Callable, Iterable

from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject, ObjectRef


class ConfigStore:
    def __init__(self) -> None:
        self._by_origin: dict[str, tuple[ConfigObject, ...]] = {}
        self._origin_diags: dict[str, tuple[Diagnostic, ...]] = {}
        self.generation = 0
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def replace(self, origin: str, objects: Iterable[ConfigObject], diagnostics: Iterable[Diagnostic] = ()) -> None:
        objs = tuple(objects)
        diags = tuple(diagnostics)
        if self._by_origin.get(origin) == objs and self._origin_diags.get(origin, ()) == diags:
            return
        self._by_origin[origin] = objs
        self._origin_diags[origin] = diags
        self._changed()

    def origins(self) -> list[str]:
        return sorted(self._by_origin)

    def remove(self, origin: str) -> None:
        if self._by_origin.pop(origin, None) is not None or self._origin_diags.pop(origin, None) is not None:
            self._changed()

    def keep_with_diagnostics(self, origin: str, diagnostics: Iterable[Diagnostic]) -> None:
        """An origin failed to load: keep its previous objects, replace its diagnostics."""
        diags = tuple(diagnostics)
        if self._origin_diags.get(origin) != diags:
            self._origin_diags[origin] = diags
            self._by_origin.setdefault(origin, ())
            self._changed()

    def _changed(self) -> None:
        self.generation += 1
        for cb in self._listeners:
            cb()

    def objects(self) -> tuple[list[ConfigObject], list[Diagnostic]]:
        """All objects (duplicates resolved) and the origin-level diagnostics."""
        seen: dict[ObjectRef, ConfigObject] = {}
        diags: list[Diagnostic] = []
        for origin in sorted(self._by_origin):
            diags.extend(self._origin_diags.get(origin, ()))
            for obj in self._by_origin[origin]:
                first = seen.get(obj.ref)
                if first is not None:
                    diags.append(Diagnostic(Severity.WARNING, "duplicate", f"also defined in {first.source}; "
                                            "that definition wins", obj.source, obj.ref, "metadata.name"))
                    continue
                seen[obj.ref] = obj
        return list(seen.values()), diags
