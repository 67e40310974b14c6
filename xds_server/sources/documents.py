"""YAML/JSON documents -> :class:`~translators.objects.ConfigObject`.

Multi-document YAML (and JSON, which is YAML) with PyYAML's C loader.
``kind: List`` is unwrapped.  Each problem names the file, the document and
the field.
"""
from __future__ import annotations

from typing import Any

import yaml

from translators.diagnostics import Diagnostic, Severity
from translators.objects import ConfigObject, ObjectRef

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class LoadError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


def _error(file: str, message: str, *, ref: ObjectRef | None = None, field: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, "load", message, file, ref, field)


def parse_text(text: str, *, file: str) -> tuple[list[ConfigObject], list[Diagnostic]]:
    """Objects and per-document diagnostics.  Raises :class:`LoadError` when the file is not YAML."""
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise LoadError(_error(file, f"invalid YAML: {where}{problem}")) from None
    objects: list[ConfigObject] = []
    diags: list[Diagnostic] = []
    for index, doc in enumerate(docs):
        _collect(doc, file=file, where=f"document {index + 1}", objects=objects, diags=diags)
    return objects, diags


def to_config_objects(doc: Any, *, source: str, where: str = "object") -> tuple[list[ConfigObject], list[Diagnostic]]:
    """One already-decoded document (from a file or the Kubernetes API) as config objects."""
    objects: list[ConfigObject] = []
    diags: list[Diagnostic] = []
    _collect(doc, file=source, where=where, objects=objects, diags=diags)
    return objects, diags


def _collect(doc: Any, *, file: str, where: str, objects: list[ConfigObject], diags: list[Diagnostic]) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        diags.append(_error(file, f"{where}: expected a mapping with apiVersion and kind, got {type(doc).__name__}"))
        return
    kind = doc.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)):
        for i, item in enumerate(doc.get("items") or []):
            _collect(item, file=file, where=f"{where} items[{i}]", objects=objects, diags=diags)
        return
    api_version = doc.get("apiVersion")
    meta = doc.get("metadata")
    if not isinstance(kind, str) or not kind:
        diags.append(_error(file, f"{where} has no kind", field="kind"))
        return
    if not isinstance(api_version, str) or not api_version:
        diags.append(_error(file, f"{where} ({kind}) has no apiVersion", field="apiVersion"))
        return
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        diags.append(_error(file, f"{where} ({kind}) has no metadata.name", field="metadata.name"))
        return
    namespace = meta.get("namespace") or "default"
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    ref = ObjectRef(kind, str(namespace), meta["name"], group)
    spec = doc.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        diags.append(_error(file, f"must be a mapping, got {type(spec).__name__}", ref=ref, field="spec"))
        return
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    objects.append(ConfigObject(ref=ref, api_version=api_version, spec=spec,
                                labels={str(k): str(v) for k, v in labels.items()},
                                annotations={str(k): str(v) for k, v in annotations.items()},
                                source=file, raw=doc))
