"""Emissary's own examples (``tests/corpus/emissary``, see its README): they validate, and nothing is silent.

* Every config file (not the ``*-out.yaml`` expected outputs) validates with no errors, with every
  ambassador_id the file uses being served.
* The deliberately invalid Mappings are errors: the four load balancers of ``08`` that Emissary's
  ``validate_load_balancer`` rejects, and the three of the CRD round-trip fixtures (``21-*``) that it
  rejects for the same reason (no ``policy``, or ``some_policy``): round-trip fixtures test CRD
  conversion, not validity.
* Every Emissary field xds-server does not read gets a warning (or an info saying why it has no
  effect) on that field's path: no field is dropped silently.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from translators.diagnostics import Severity
from translators.emissary import GROUP
from translators.emissary import resources as r
from translators.pipeline import translate
from xds_server.sources.files import load_dirs

CORPUS = Path(__file__).resolve().parent / "corpus" / "emissary"
FILES = sorted(p for p in CORPUS.glob("*.yaml") if not p.name.endswith("-out.yaml"))
assert len(FILES) >= 30, f"Emissary corpus missing under {CORPUS}"

#: (file, Mapping name): invalid by Emissary's own rules, so errors here too
INVALID = {
    ("08-load-balancer-policies.yaml", "example-5"),  # ring_hash with cookie, header and source_ip
    ("08-load-balancer-policies.yaml", "example-6"),  # round_robin with a cookie
    ("08-load-balancer-policies.yaml", "example-7"),  # policy: rr
    ("08-load-balancer-policies.yaml", "example-9"),  # least_request with a cookie
    *((f"21-{v}-mappings-roundtrip.yaml", name) for v in ("v2", "v3alpha1") for name in (
        "filter-oauth2-okta-client-credentialsmapping",  # load_balancer: {}
        "filter-oauth2-okta-mapping",  # load_balancer: {source_ip: false}
        "filter-oauth2-uaa-mapping")),  # policy: some_policy
}
READ = {"Mapping": r.MAPPING_FIELDS, "Host": r.HOST_FIELDS,
        "TLSContext": r.TLS_CONTEXT_FIELDS, "Listener": r.LISTENER_FIELDS}


def _translate(path: Path):
    objects, diags = load_dirs([path])
    ids = {"default"}
    for o in objects:
        v = o.spec.get("ambassador_id") if o.group == GROUP else None
        ids |= {v} if isinstance(v, str) else set(v or ())
    return objects, diags + translate(objects, ambassador_ids=tuple(sorted(ids))).diagnostics


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_emissary_example_validates(path: Path) -> None:
    objects, diags = _translate(path)
    assert any(o.group == GROUP for o in objects), "no Emissary object parsed"
    errors = [d for d in diags if d.severity is Severity.ERROR]
    unexpected = [d.format() for d in errors if d.object_ref is None or (path.name, d.object_ref.name) not in INVALID]
    assert unexpected == []
    expected = {name for f, name in INVALID if f == path.name}
    assert {d.object_ref.name for d in errors} == expected


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_emissary_field_is_dropped_silently(path: Path) -> None:
    objects, diags = _translate(path)
    said = {(d.object_ref, d.field_path.split(".")[1] if d.field_path.startswith("spec.") and "." in d.field_path
             else None) for d in diags if d.object_ref is not None}
    silent = []
    for o in objects:
        if o.group != GROUP or o.kind not in READ or (path.name, o.name) in INVALID:
            continue
        for key in o.spec:
            if key not in READ[o.kind] and (o.ref, key) not in said:
                silent.append(f"{o.ref}: spec.{key}")
    assert silent == []


def test_load_balancer_errors_name_the_field() -> None:
    _, diags = _translate(CORPUS / "08-load-balancer-policies.yaml")
    by_name = {d.object_ref.name: d for d in diags if d.severity is Severity.ERROR}
    assert by_name["example-7"].field_path == "spec.load_balancer.policy"
    assert "rr" in by_name["example-7"].message
    assert by_name["example-6"].field_path == "spec.load_balancer.cookie"


def test_annotation_mappings_are_read() -> None:
    """``getambassador.io/config`` on an Ingress (or Service) holds flat-form Mappings: they are read, in the
    annotated object's namespace."""
    objects, _ = load_dirs([CORPUS / "20-ingress-with-annotation-mapping.yaml"])
    nested = [o for o in objects if o.kind == "Mapping" and o.name == "example-nested"]
    assert nested and nested[0].namespace == "default" and nested[0].spec["prefix"] == "/example-nested/"
    assert "annotation getambassador.io/config" in nested[0].source
