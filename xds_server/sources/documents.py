"""YAML/JSON documents -> :class:`~translators.objects.ConfigObject`.

Multi-document YAML (and JSON, which is YAML) with PyYAML's C loader.
``kind: List`` is unwrapped.  Each problem names the file, the document and
the field.

Nothing in a file may crash or stall the server: YAML aliases are limited the
way Kubernetes' decoder limits them (an alias may not refer to itself, and
aliases may not expand a document far beyond its written size), and any
unexpected exception while reading a file becomes an error on that file
(:class:`LoadError`).
"""
from __future__ import annotations

import re
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


#: an anchor (``&name``) in the text; without one, no alias can resolve and no expansion check is needed
_ANCHOR = re.compile(r"(?:^|[\s,\[{:-])&[^\s,\[\]{}]")
#: expanded nodes allowed per document: the larger of this and ``ALIAS_RATIO`` x the written nodes
ALIAS_MIN_BUDGET = 10_000
ALIAS_RATIO = 10


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(written nodes, nodes after expanding every alias); raises ValueError for a cyclic alias."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    written = 0

    def size(node: yaml.Node) -> int:
        nonlocal written
        key = id(node)
        if key in sizes:
            return sizes[key]  # an alias: counted again in full, but computed once
        if key in visiting:
            raise ValueError("a YAML alias refers to a node that contains it (a recursive document)")
        visiting.add(key)
        written += 1
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        visiting.discard(key)
        sizes[key] = total
        return total

    expanded = size(root)
    return written, expanded


def _load_documents(text: str) -> list[Any]:
    if not _ANCHOR.search(text):
        return list(yaml.load_all(text, Loader=_Loader))
    loader = _Loader(text)
    docs = []
    try:
        while loader.check_node():
            node = loader.get_node()
            written, expanded = _expanded_size(node)
            budget = max(ALIAS_MIN_BUDGET, ALIAS_RATIO * written)
            if expanded > budget:
                raise ValueError(f"YAML aliases expand document {len(docs) + 1} from {written} to {expanded} "
                                 f"nodes (the limit is {budget}); write the values out instead of aliasing them")
            docs.append(loader.construct_document(node))
    finally:
        loader.dispose()
    return docs


def parse_text(text: str, *, file: str) -> tuple[list[ConfigObject], list[Diagnostic]]:
    """Objects and per-document diagnostics.  Raises :class:`LoadError` when the file is not usable YAML."""
    try:
        docs = _load_documents(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise LoadError(_error(file, f"invalid YAML: {where}{problem}")) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise LoadError(_error(file, f"rejected YAML: {exc}")) from None
    objects: list[ConfigObject] = []
    diags: list[Diagnostic] = []
    for index, doc in enumerate(docs):
        try:
            _collect(doc, file=file, where=f"document {index + 1}", objects=objects, diags=diags)
        except RecursionError:
            diags.append(_error(file, f"document {index + 1} is nested too deeply"))
        except Exception as exc:  # noqa: BLE001 - a bad document is an error on the file, never a crash
            diags.append(_error(file, f"document {index + 1} could not be read: {type(exc).__name__}: {exc}"[:300]))
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
    if isinstance(doc, list):  # a YAML list of objects (Emissary's fixtures): as a kind: List
        for i, item in enumerate(doc):
            _collect(item, file=file, where=f"{where} [{i}]", objects=objects, diags=diags)
        return
    if not isinstance(doc, dict):
        diags.append(_error(file, f"{where}: expected a mapping with apiVersion and kind, got {type(doc).__name__}"))
        return
    kind = doc.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)):
        items = doc.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            diags.append(_error(file, f"{where} ({kind}): items must be a list, got {type(items).__name__}",
                                field="items"))
            return
        for i, item in enumerate(items):
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
    if meta is None and api_version.startswith(EMISSARY_GROUP + "/") and isinstance(doc.get("name"), str):
        doc = _crd_form(doc)  # Emissary's flat form: name (and spec fields) at the top level
        meta = doc["metadata"]
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        diags.append(_error(file, f"{where} ({kind}) has no metadata.name", field="metadata.name"))
        return
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str):
        diags.append(_error(file, f"{where} ({kind}): metadata.namespace must be a string, got {namespace!r}"[:300],
                            field="metadata.namespace"))
        return
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
    embedded = annotations.get(EMISSARY_ANNOTATION)
    if isinstance(embedded, str) and group in ("", "networking.k8s.io", "extensions"):
        _annotation_objects(embedded, namespace=str(namespace), file=f"{file} ({ref} annotation {EMISSARY_ANNOTATION})",
                            objects=objects, diags=diags)


#: Emissary's API group, whose objects may be written flat, and the annotation that embeds them in Services
EMISSARY_GROUP = "getambassador.io"
EMISSARY_ANNOTATION = "getambassador.io/config"
#: the top-level keys of Emissary's flat form that are metadata, not spec
_FLAT_METADATA = frozenset({"apiVersion", "kind", "name", "namespace", "metadata_labels", "generation"})


def _crd_form(doc: dict) -> dict:
    """``apiVersion, kind, name, namespace?, metadata_labels?, FIELDS...`` -> the CRD form Emissary's own
    loader normalizes both forms to."""
    meta: dict[str, Any] = {"name": doc["name"]}
    if doc.get("namespace") is not None:
        meta["namespace"] = doc["namespace"]
    if isinstance(doc.get("metadata_labels"), dict):
        meta["labels"] = doc["metadata_labels"]
    return {"apiVersion": doc["apiVersion"], "kind": doc["kind"], "metadata": meta,
            "spec": {k: v for k, v in doc.items() if k not in _FLAT_METADATA}}


def _annotation_objects(text: str, *, namespace: str, file: str, objects: list[ConfigObject],
                        diags: list[Diagnostic]) -> None:
    """Emissary objects embedded in a Service's (or Ingress's) ``getambassador.io/config`` annotation, in
    the annotated object's namespace unless they name their own."""
    try:
        docs = _load_documents(text)
    except (yaml.YAMLError, ValueError, RecursionError, MemoryError) as exc:
        diags.append(_error(file, f"invalid YAML in the annotation: {str(exc)[:200]}"))
        return
    for i, doc in enumerate(docs):
        if isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and \
                doc["apiVersion"].startswith(EMISSARY_GROUP + "/") and "metadata" not in doc:
            doc = dict(doc)
            doc.setdefault("namespace", namespace)
        elif isinstance(doc, dict) and isinstance(doc.get("metadata"), dict) and "namespace" not in doc["metadata"]:
            doc = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
        _collect(doc, file=file, where=f"document {i + 1}", objects=objects, diags=diags)
