"""`make demo` end to end: the orchestrator exits 0 after all calls went through Envoy."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_demo_runs_all_rpc_kinds_through_envoy() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "demo.run"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=180)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for line in ("Greeter.SayHello", "GetFeature", "ListFeatures", "RecordRoute", "RouteChat"):
        assert line in out
    assert "route-guide-a" in out and "route-guide-b" in out, out
    assert "all calls went through Envoy" in out
    assert "gateway listening on 0.0.0.0:8080 (0.0.0.0_8080)" in out, out  # read back from Envoy's admin /listeners
