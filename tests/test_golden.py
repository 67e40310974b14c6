"""Golden translation tests: ``tests/golden/NAME.yaml`` -> ``NAME.json``.

The JSON holds the diagnostics and every resource an Envoy node labelled
``istio=ingressgateway`` in namespace ``default`` gets (for ``emissary-*`` cases: an
Envoy bootstrapped with ``--dialect emissary``).  Regenerate only on
purpose, with ``UPDATE_GOLDEN=1 make test`` (or pytest), and review the diff.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from translators.node import NodeInfo
from translators.pipeline import translate
from translators.render import render
from xds_server.sources.documents import parse_text

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))
NODE = NodeInfo.of(labels={"istio": "ingressgateway"})
#: ``emissary-*`` cases render for an Envoy bootstrapped with ``--dialect emissary``
EMISSARY_NODE = NodeInfo.of(labels={"xds-server.io/dialect": "emissary", "xds-server.io/ambassador-id": "default"})


def rendered(name: str) -> dict:
    path = GOLDEN / f"{name}.yaml"
    objects, diags = parse_text(path.read_text(), file=f"tests/golden/{path.name}")
    translation = translate(objects)
    node = EMISSARY_NODE if name.startswith("emissary-") else NODE
    return {"diagnostics": sorted(d.format() for d in diags + translation.diagnostics), **render(translation, node)}


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    got = rendered(name)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=2) + "\n")
    assert path.exists(), f"{path} missing; run with UPDATE_GOLDEN=1 to create it"
    assert got == json.loads(path.read_text())


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 5
