"""The layout the design asks for, checked on the source: dialects are peers, and data flows one way."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIALECTS = ("istio", "gateway_api", "emissary", "envoy_gateway", "kubernetes")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_dialect_imports_no_other_dialect(dialect):
    package = ROOT / "translators" / dialect
    assert package.is_dir(), f"translators/{dialect}/ is missing"
    for path in sorted(package.glob("*.py")):
        for name in _imports(path):
            for other in DIALECTS:
                if other != dialect and (name == f"translators.{other}" or name.startswith(f"translators.{other}.")):
                    pytest.fail(f"{path.relative_to(ROOT)} imports {name}: dialects are peers")


def test_only_the_compile_step_knows_every_dialect():
    """Outside the dialects themselves, only the engine (and the table) import dialect packages; the
    pipeline, builders and views read the IR."""
    allowed = {"translators/engine.py"}
    for path in sorted((ROOT / "translators").glob("*.py")):
        rel = str(path.relative_to(ROOT))
        names = {n for n in _imports(path) if any(n.startswith(f"translators.{d}") for d in DIALECTS)}
        names -= {"translators.gateway_api", "translators.gateway_api.DEFAULT_GATEWAY_CLASS"}  # a constant
        if rel not in allowed:
            assert not names, f"{rel} imports {sorted(names)}"


#: the composition root: the wiring that starts sources, the controller and the servers
ROOT_MODULES = {"xds_server/server.py", "xds_server/cli.py"}


@pytest.mark.parametrize("layer, below", [
    ("translators", ()),
    ("xds_server", ("translators",)),
    ("k8s_watch", ("translators", "xds_server.sources", "xds_server.store")),
])
def test_each_layer_imports_only_layers_below(layer, below):
    """translators is pure; xds_server builds on it; the Kubernetes source feeds the store.  Only the
    composition root (serve's wiring) imports the Kubernetes source."""
    for path in sorted((ROOT / layer).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for name in _imports(path):
            top = name.split(".")[0]
            if top not in ("translators", "xds_server", "k8s_watch") or top == layer:
                continue
            if rel in ROOT_MODULES and top == "k8s_watch":
                continue
            assert any(name == b or name.startswith(b + ".") for b in below), f"{rel} imports {name}"
