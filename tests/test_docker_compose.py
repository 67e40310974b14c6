"""docker-compose.yaml describes the same demo as ``make demo`` (Docker cannot run here, so check consistency)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from demo import run as demo_run

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_services_and_official_envoy_image() -> None:
    services = COMPOSE["services"]
    assert set(services) >= {"xds-server", "envoy", "greeter", "route-guide-a", "route-guide-b", "client"}
    assert services["envoy"]["image"].startswith("envoyproxy/envoy:v1.40")


def test_mounted_paths_exist() -> None:
    for name, svc in COMPOSE["services"].items():
        for volume in svc.get("volumes", []):
            host = volume.split(":")[0]
            assert (ROOT / host).exists(), f"{name}: {host} does not exist"


def test_ports_match_make_demo() -> None:
    s = COMPOSE["services"]
    assert f"--xds-address {demo_run.XDS}" in s["xds-server"]["command"]
    assert f"--admin-address {demo_run.ADMIN}" in s["xds-server"]["command"]
    assert f"--greeter-port {demo_run.GREETER_PORT}" in s["greeter"]["command"]
    for replica, port in demo_run.ROUTE_GUIDE_PORTS.items():
        assert f"--route-guide-port {port} --replica {replica}" in s[replica]["command"]
    assert f"--target {demo_run.GATEWAY}" in s["client"]["command"]
    gateway = yaml.safe_load((ROOT / "examples" / "gateway.yaml").read_text())
    assert gateway["spec"]["servers"][0]["port"]["number"] == int(demo_run.GATEWAY.rsplit(":", 1)[1])


def test_envoy_bootstrap_is_what_the_cli_prints() -> None:
    """deploy/demo/envoy.yaml is exactly `xds-server bootstrap envoy` output for the demo gateway."""
    printed = subprocess.run(
        [sys.executable, "-m", "xds_server", "bootstrap", "envoy", "--node-id", "demo-gateway", "--label",
         "istio=ingressgateway", "--xds-address", demo_run.XDS, "--envoy-admin-address", demo_run.ENVOY_ADMIN],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert printed == (ROOT / "deploy" / "demo" / "envoy.yaml").read_text()


def test_envoy_validates_the_bootstrap() -> None:
    """The real Envoy accepts the bootstrap (``--mode validate``)."""
    envoy = Path(sys.executable).parent / "envoy"
    result = subprocess.run([str(envoy), "--mode", "validate", "-c", str(ROOT / "deploy" / "demo" / "envoy.yaml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
