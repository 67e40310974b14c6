"""Diagnostics are data.

Every problem found in config is a :class:`Diagnostic`.  The same list feeds
``xds-server validate``, the logs, the admin endpoint and (later) Kubernetes
status, so the wording is written once, here, in :meth:`Diagnostic.format`:

    file: kind/namespace/name: field.path: message
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

from translators.objects import ObjectRef

T = TypeVar("T")


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    file: str = ""
    object_ref: ObjectRef | None = None
    field_path: str = ""

    def format(self) -> str:
        parts = [self.file or "<config>"]
        if self.object_ref is not None:
            parts.append(str(self.object_ref))
        if self.field_path:
            parts.append(self.field_path)
        prefix = ": ".join(parts)
        tag = "" if self.severity is Severity.ERROR else f"{self.severity.value}: "
        return f"{prefix}: {tag}{self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "file": self.file,
            "object": str(self.object_ref) if self.object_ref else "",
            "field": self.field_path,
            "message": self.message,
        }


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def errors_by_object(diagnostics: Iterable[Diagnostic], *, group: str) -> dict[ObjectRef, list[Diagnostic]]:
    """The errors on each object of one API group, in order: what a dialect writes into their status."""
    out: dict[ObjectRef, list[Diagnostic]] = {}
    for d in diagnostics:
        if d.object_ref is not None and d.object_ref.group == group and d.severity is Severity.ERROR:
            out.setdefault(d.object_ref, []).append(d)
    return out


class Reporter:
    """Collects diagnostics for one object, filling in file and ref."""

    __slots__ = ("file", "ref", "items")

    def __init__(self, *, file: str, ref: ObjectRef | None) -> None:
        self.file = file
        self.ref = ref
        self.items: list[Diagnostic] = []

    def error(self, field_path: str, message: str, *, code: str = "invalid") -> None:
        self.items.append(Diagnostic(Severity.ERROR, code, message, self.file, self.ref, field_path))

    def warning(self, field_path: str, message: str, *, code: str = "warning") -> None:
        self.items.append(Diagnostic(Severity.WARNING, code, message, self.file, self.ref, field_path))

    @property
    def failed(self) -> bool:
        return has_errors(self.items)

    def info(self, field_path: str, message: str, *, code: str = "info") -> None:
        self.items.append(Diagnostic(Severity.INFO, code, message, self.file, self.ref, field_path))


def isolated(parser: Callable[..., T], obj: Any, rep: Reporter, *args: Any, **kwargs: Any) -> T | None:
    """Run one object's parser; an unexpected exception becomes an error on that object, never a crash
    of the whole translation (the rest of the config still translates).  Callers look it up as
    ``diagnostics.isolated`` at call time, so tests can unmask it."""
    try:
        return parser(obj, rep, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one object must not take the others down
        rep.error("", f"internal error translating {obj.ref}: {type(exc).__name__}: {exc}"[:500], code="internal")
        return None
