"""Proxyless gRPC end to end: real grpcio and grpc-js xDS clients, a real xDS-enabled grpcio
server, and a real Envoy, all configured by one control plane from the same Istio objects.

Bootstraps come from ``xds-server bootstrap grpc`` / ``bootstrap envoy``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.grpc_calls import say_hello
from tests.harness import ROOT, Backends, ControlPlane, Envoy, _env, free_port, wait_until

pytestmark = pytest.mark.e2e

TARGET = "xds:///greeter.default.svc.cluster.local:50051"

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {v1}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {v2}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: xds-app, namespace: default}}
spec:
  hosts: [xds-app.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {xds_app}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: greeter, namespace: default}}
spec:
  host: greeter
  trafficPolicy:
    loadBalancer: {{consistentHash: {{httpHeaderName: x-user}}}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: {gateway_port}, name: grpc, protocol: GRPC}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: edge, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{{route: [{{destination: {{host: greeter, subset: v2}}}}]}}]
"""

ROUTES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: [greeter]
  http:
  - name: sticky
    match: [{{headers: {{x-user: {{}}}}}}]
    route: [{{destination: {{host: greeter}}}}]
  - name: fault-abort
    match: [{{headers: {{x-fault: {{exact: abort}}}}}}]
    fault: {{abort: {{grpcStatus: UNAVAILABLE, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: greeter, subset: v1}}}}]
  - name: fault-delay
    match: [{{headers: {{x-fault: {{exact: delay}}}}}}]
    fault: {{delay: {{fixedDelay: 200ms, percent: 100}}}}
    route: [{{destination: {{host: greeter, subset: v1}}}}]
  - name: retried
    match: [{{headers: {{x-fail-first: {{}}}}}}]
    retries: {{attempts: 3, retryOn: unavailable}}
    route: [{{destination: {{host: greeter, subset: v1}}}}]
  - name: split
    route:
    - {{destination: {{host: greeter, subset: v1}}, weight: {w1}}}
    - {{destination: {{host: greeter, subset: v2}}, weight: {w2}}}
"""


class ProxylessEnv:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "config"
        self.config.mkdir()
        self.stack = contextlib.ExitStack()

    def start(self) -> "ProxylessEnv":
        self.v1 = self.stack.enter_context(Backends(replica="v1", workdir=self.workdir, route_guide=False)).wait_ready()
        self.v2 = self.stack.enter_context(Backends(replica="v2", workdir=self.workdir, route_guide=False)).wait_ready()
        self.xds_app_port = free_port()
        self.gateway_port = free_port()
        (self.config / "base.yaml").write_text(CONFIG.format(v1=self.v1.greeter_port, v2=self.v2.greeter_port,
                                                             xds_app=self.xds_app_port, gateway_port=self.gateway_port))
        self.set_split(50, 50)
        self.cp = self.stack.enter_context(ControlPlane(config_dirs=[self.config], workdir=self.workdir)).wait_ready()
        self.bootstrap = self.workdir / "grpc-bootstrap.json"
        subprocess.run([sys.executable, "-m", "xds_server", "bootstrap", "grpc", "--node-id", "proxyless-1",
                        "--namespace", "default", "--xds-address", self.cp.xds_address, "-o", str(self.bootstrap)],
                       check=True, cwd=ROOT, env=_env())
        return self

    def set_split(self, w1: int, w2: int) -> None:
        tmp = self.config / "routes.tmp"
        tmp.write_text(ROUTES.format(w1=w1, w2=w2))
        tmp.rename(self.config / "routes.yaml")

    def env(self) -> dict[str, str]:
        return dict(_env(), GRPC_XDS_BOOTSTRAP=str(self.bootstrap))

    def client(self, *args: str, timeout: float = 120) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "tests.proxyless_apps", "client", *args], cwd=ROOT,
                             env=self.env(), capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, out.stderr[-3000:]
        return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def px(tmp_path_factory: pytest.TempPathFactory):
    env = ProxylessEnv(tmp_path_factory.mktemp("proxyless"))
    try:
        yield env.start()
    finally:
        env.stack.close()


def test_grpcio_client_50_50_split_over_400_calls(px: ProxylessEnv) -> None:
    results = px.client("--target", TARGET, "--calls", "400")
    counts = Counter(r.get("replica") or r.get("error") for r in results)
    assert counts["v1"] + counts["v2"] == 400, counts
    assert 160 <= counts["v1"] <= 240, counts  # 50% +- 10%


def test_short_and_namespaced_names_resolve(px: ProxylessEnv) -> None:
    for target in ("xds:///greeter:50051", "xds:///greeter.default:50051", "xds:///greeter.default.svc:50051"):
        results = px.client("--target", target, "--calls", "20")
        assert all(r.get("replica") in ("v1", "v2") for r in results), (target, results[:3])


def test_header_ring_hash_is_sticky(px: ProxylessEnv) -> None:
    seen = {}
    for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
        results = px.client("--target", TARGET, "--calls", "15", "--metadata", f"x-user={user}")
        replicas = {r.get("replica") or r.get("error") for r in results}
        assert len(replicas) == 1 and replicas <= {"v1", "v2"}, (user, replicas)
        seen[user] = replicas.pop()
    assert len(results) == 15


def test_retry_on_unavailable_gives_ok(px: ProxylessEnv) -> None:
    results = px.client("--target", TARGET, "--calls", "10", "--fail-first", f"k{time.time_ns()}")
    assert [r.get("replica") for r in results] == ["v1"] * 10, results


def test_fault_abort_and_delay(px: ProxylessEnv) -> None:
    """gRFC A33: VirtualService fault abort (grpcStatus) and delay, applied by the gRPC client itself."""
    aborted = px.client("--target", TARGET, "--calls", "5", "--metadata", "x-fault=abort")
    assert [r.get("error") for r in aborted] == ["UNAVAILABLE"] * 5, aborted
    delayed = px.client("--target", TARGET, "--calls", "5", "--metadata", "x-fault=delay")
    assert [r.get("replica") for r in delayed] == ["v1"] * 5
    gaps = [b["t"] - a["t"] for a, b in zip(delayed, delayed[1:])]
    assert min(gaps) >= 0.19, gaps


def test_grpc_js_client_gets_the_same_split(px: ProxylessEnv) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; .ci/run installs it so CI never skips this")
    node_dir = ROOT / "tests" / "node"
    if not (node_dir / "node_modules" / "@grpc" / "grpc-js-xds").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=node_dir, check=True, timeout=300,
                       capture_output=True)
    out = subprocess.run([node, str(node_dir / "xds_client.js"), TARGET, "400"], env=px.env(), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}, result
    assert 160 <= result["counts"].get("v1", 0) <= 240 and sum(result["counts"].values()) == 400, result


def test_xds_enabled_grpcio_server_is_reached(px: ProxylessEnv) -> None:
    server = subprocess.Popen([sys.executable, "-m", "tests.proxyless_apps", "server", "--port", str(px.xds_app_port),
                               "--replica", "xds-app"], cwd=ROOT, env=px.env(), stdout=subprocess.PIPE,
                              stderr=(px.workdir / "xds-app.log").open("w"), text=True)
    try:
        def reached() -> bool:
            results = px.client("--target", "xds:///xds-app.default.svc.cluster.local:50051", "--calls", "3",
                                "--timeout", "3")
            return all(r.get("replica") == "xds-app" for r in results)
        wait_until(reached, timeout=30, interval=0.5, what="the xDS-enabled server to serve")
        clients = px.cp.debug("clients")["clients"]
        inbound = [c for c in clients if any("xds.istio.io/grpc/lds/inbound/" in n
                                             for n in c["types"].get("LDS", {}).get("subscribed", []))]
        assert inbound, clients
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_envoy_and_proxyless_clients_share_the_control_plane(px: ProxylessEnv) -> None:
    with Envoy(control_plane=px.cp, workdir=px.workdir) as envoy:
        envoy.wait_ready()
        import grpc
        with grpc.insecure_channel(f"127.0.0.1:{px.gateway_port}") as channel:
            wait_until(lambda: say_hello(channel, timeout=2)[1] == "v2", timeout=20, what="Envoy routing")
        results = px.client("--target", TARGET, "--calls", "40")
        assert {r.get("replica") for r in results} == {"v1", "v2"}
        clients = px.cp.debug("clients")["clients"]
        envoy_state = next(c for c in clients if c["flavour"] == "envoy")
        assert envoy_state["types"]["LDS"]["subscribed"] == "*"
        assert px.cp.debug("nacks")["nacks"] == []
        dump = envoy.config_dump()
        listeners = json.dumps(dump)
        assert f"0.0.0.0_{px.gateway_port}" in listeners and "api_listener" not in listeners


def test_virtual_service_change_moves_a_running_client_within_5s(px: ProxylessEnv) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.proxyless_apps", "client", "--target", TARGET,
                             "--seconds", "15", "--interval", "0.02"], cwd=ROOT, env=px.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        while len(lines) < 20:  # the client is up and splitting
            lines.append(json.loads(proc.stdout.readline()))
        changed_at = lines[-1]["t"]
        px.set_split(0, 100)
        while True:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))
            tail = [l.get("replica") for l in lines[-30:]]
            if len(lines) > 50 and tail == ["v2"] * 30:
                break
        after = [l for l in lines if l["t"] > changed_at]
        first_all_v2 = next(i for i in range(len(after)) if all(l.get("replica") == "v2" for l in after[i:]))
        moved_after = after[first_all_v2]["t"] - changed_at
        assert moved_after < 5.0, moved_after
    finally:
        proc.kill()
        proc.wait(timeout=10)
        px.set_split(50, 50)


MULTI_PORT = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: multi, namespace: default}
spec:
  hosts: [multi.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc, protocol: GRPC}, {number: 50052, name: grpc2, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
"""


def test_a_target_without_a_port_uses_the_only_port_or_fails_fast(px: ProxylessEnv) -> None:
    """``xds:///greeter`` (one port) is served on that port; ``xds:///multi`` (two ports) fails at once with
    UNAVAILABLE instead of hanging until the deadline, and a diagnostic names the ports that exist."""
    before = px.cp.translations()
    (px.config / "multi.yaml").write_text(MULTI_PORT)
    wait_until(lambda: px.cp.translations() > before, timeout=10, what="the multi-port service translated")
    [ok] = px.client("--target", "xds:///greeter", "--calls", "1", "--timeout", "5")
    assert ok.get("replica") in {"v1", "v2"}, ok
    started = time.monotonic()
    [failed] = px.client("--target", "xds:///multi", "--calls", "1", "--timeout", "10")
    assert failed.get("error") == "UNAVAILABLE" and failed["t"] < 2.0, failed
    assert time.monotonic() - started < 8
    messages = [d["message"] for d in px.cp.debug("diagnostics")["diagnostics"] if d["code"] == "requested-name"]
    assert any("'multi'" in m and "50051, 50052" in m for m in messages), messages
