"""End to end with a real Envoy: metrics move on a push, and a NACK is traced to its source.

The NACK: this Envoy's operator lowered the runtime limit ``re2.max_program_size.error_level`` to 8,
which the control plane cannot know (it checks Envoy's default, 100); a VirtualService with a regex
route of a larger program is valid config, and that Envoy rejects the RouteConfiguration.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests import e2e_config
from tests.harness import PYTHON, ROOT, ControlPlane, Envoy, _env, free_port, http_get, wait_until

pytestmark = pytest.mark.e2e

DUP = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: dup-lower, namespace: default}
spec:
  hosts: [regex.example.com]
  gateways: [grpc-gateway]
  http:
  - match: [{uri: {regex: "/helloworld[.]Greeter/(SayHello|SayHelloAgain|SayGoodbye)"}}]
    route: [{destination: {host: greeter, subset: v2}}]
"""
#: the operator's tuning the control plane does not see
RUNTIME = {"re2.max_program_size.error_level": 8}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.rename(path)
    return path


def services(lb: str = "ROUND_ROBIN") -> str:
    text = e2e_config.render(e2e_config.SERVICES, a_greeter=free_port(), b_greeter=free_port(),
                             a_route_guide=free_port(), b_route_guide=free_port())
    return text.replace("simple: ROUND_ROBIN", f"simple: {lb}")


def metric(cp: ControlPlane, name: str, **labels: str) -> float:
    status, body = http_get(f"{cp.admin_url}/metrics")
    assert status == 200, body
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in body.splitlines():
        m = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    assert want is not None
    return total


def status(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "xds_server", "status", "--admin-address", f"127.0.0.1:{cp.admin_port}",
                           *args], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=30)


@pytest.fixture(scope="module", params=["delta", "sotw"])
def env(request, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp(f"observability-{request.param}")
    config = work / "config"
    config.mkdir()
    write(config, "gateway.yaml", e2e_config.render(e2e_config.GATEWAY, gateway_port=free_port()))
    write(config, "services.yaml", services())
    write(config, "routes.yaml", e2e_config.render(e2e_config.ROUTES, greeter_prefix="/helloworld.Greeter/",
                                                   greeter_subset="v1"))
    with ControlPlane(config_dirs=[config], workdir=work) as cp:
        cp.wait_ready()
        with Envoy(control_plane=cp, workdir=work, ads=request.param, runtime=RUNTIME) as envoy:
            envoy.wait_ready()
            yield cp, envoy, config, request.param


def test_all_synced_then_a_push_moves_the_counters(env) -> None:
    cp, envoy, config, mode = env
    done = wait_until(lambda: (r := status(cp)).returncode == 0 and "SYNCED" in r.stdout and r,
                      timeout=15, what="status exit 0")
    assert "gateway-1" in done.stdout and "NODE" in done.stdout, done.stdout
    syncz = cp.debug("syncz")
    [client] = syncz["clients"]
    assert client["mode"] == mode and client["flavour"] == "envoy" and client["namespace"] == "default"
    assert {client["types"][t]["status"] for t in ("CDS", "LDS", "EDS", "RDS")} == {"SYNCED"}
    assert metric(cp, "xds_server_connected_clients", flavour="envoy") == 1
    assert metric(cp, "xds_server_config_objects", kind="VirtualService") == 2
    before = metric(cp, "xds_server_pushes_total", type="CDS")
    converged = metric(cp, "xds_server_convergence_seconds_count")
    assert before >= 1
    write(config, "services.yaml", services("LEAST_REQUEST"))
    wait_until(lambda: metric(cp, "xds_server_pushes_total", type="CDS") > before, timeout=10, what="a CDS push")
    wait_until(lambda: metric(cp, "xds_server_convergence_seconds_count") > converged, timeout=10,
               what="a convergence sample after Envoy ACKed the new CDS")
    assert metric(cp, "xds_server_response_bytes_count", type="CDS") >= 2
    assert metric(cp, "xds_server_translation_seconds_count") >= 2
    # the probe listener is not running here; the metrics are on the admin app
    dump = json.loads(http_get(f"{cp.admin_url}/debug/config_dump?node=gateway-1")[1])
    clusters = {r["name"]: r["resource"] for r in dump["types"]["CDS"]["resources"]}
    assert any(c.get("lb_policy") == "LEAST_REQUEST" for c in clusters.values()), clusters
    assert {"CDS", "EDS", "LDS", "RDS"} <= set(dump["types"])
    assert http_get(f"{cp.admin_url}/debug/config_dump?node=nobody")[0] == 404


def test_nack_is_traced_to_the_virtual_service_that_caused_it(env) -> None:
    cp, envoy, config, mode = env
    # a Delta Envoy gets its virtual hosts over VHDS (and rejects the bad one there); SotW, in RDS
    t = "VHDS" if mode == "delta" else "RDS"
    nacks_before = metric(cp, "xds_server_nacks_total", type=t)
    path = write(config, "dup.yaml", DUP)
    try:
        result = wait_until(lambda: (r := status(cp)).returncode == 1 and "NACKED" in r.stdout and r,
                            timeout=15, what="status exit 1 with NACKED")
        out = result.stdout
        assert "RE2 program size" in out, out
        assert "VirtualService/default/dup-" in out and str(path) in out, out
        row = next(line for line in out.splitlines() if line.startswith("gateway-1"))
        assert row.split()[3:8] == (["SYNCED"] * 4 + ["NACKED"] if t == "VHDS" else  # CDS LDS EDS RDS VHDS
                                    ["SYNCED"] * 3 + ["NACKED", "-"]), row
        assert metric(cp, "xds_server_nacks_total", type=t) > nacks_before
        [client] = cp.debug("syncz")["clients"]
        rds = client["types"][t]
        assert rds["status"] == "NACKED" and rds["resources"] and rds["resources"][0].startswith("http.")
        assert {"file": str(path), "kind": "VirtualService", "namespace": "default", "name": "dup-lower"}.items() \
            <= {k: v for s in rds["sources"] if s["name"] == "dup-lower" for k, v in s.items()}.items()
        [nack] = [n for n in cp.debug("nacks")["nacks"] if n["type"] == t][-1:]
        assert any(s["name"] == "dup-lower" for s in nack["sources"])
        diags = [d for d in cp.debug("diagnostics")["diagnostics"] if d["code"] == "nack"]
        assert any(d["object"] == "VirtualService/default/dup-lower" and d["file"] == str(path)
                   and "RE2 program size" in d["message"] and d["severity"] == "warning" for d in diags), diags
        assert metric(cp, "xds_server_config_diagnostics", severity="warning") >= 1
    finally:
        path.unlink()
    wait_until(lambda: status(cp).returncode == 0, timeout=15, what="status exit 0 once the duplicate is gone")
