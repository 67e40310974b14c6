"""Peers: the scale propagation scenario (``bench/scale.py``) against sovereign, side by side with xds-server.

sovereign (PyPI ``sovereign``, 0.32.x) is a Python control plane that Envoy polls over REST-JSON.  It runs
from its own venv (``bench/.peers-venv``, made by ``make bench-peers``) as its own ``sovereign`` command
(gunicorn + uvicorn workers).  Its config, from the same ``bench/config_gen.py`` services:

* one ``file`` source (``file+orjson://.../instances.json``): one instance per service, translated from the
  ServiceEntry, DestinationRule and VirtualService (host, port, endpoints with labels, subsets, the route);
* python templates (``bench/sovereign_templates/``) for ``clusters``, ``listeners`` and ``routes`` that build
  the same resources as xds-server (3 clusters per service, one gateway listener, one route configuration
  with a virtual host per service).  Clusters are STATIC with their endpoints inline: REST EDS would be one
  HTTP poll per cluster (3,000 at N = 1,000);
* Envoy's bootstrap: CDS and LDS, and RDS in the listener, ``api_type: REST``, ``refresh_delay: 0.1s``.

An update rewrites ``instances.json`` (atomic rename) with one more service, ``new-K``, pointing at a real
grpcio backend; the time is from the rename until a call through Envoy with ``:authority`` ``new-K.example.com``
returns OK, as in scale.py.  sovereign re-reads its sources every ``source_config.refresh_rate`` seconds (an
integer; 1 here, the smallest that is not a busy loop), so that is part of its latency by design.

CPU and memory of sovereign are summed over its process tree (gunicorn master and workers): utime + stime
from /proc, and RSS (and PSS, which does not count pages shared after the fork twice).

``python -m bench.peers [--services 1000] [--updates 20] [--modes delta,sotw] [--sovereign-workers 1]``
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import yaml

from bench import scale
from bench.config_gen import service
from tests.harness import ENVOY_BIN, Backends, Envoy, free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = Path(os.environ.get("PEERS_VENV", ROOT / "bench" / ".peers-venv")).absolute()
TEMPLATES = Path(__file__).resolve().parent / "sovereign_templates"


# -- our generated config, translated into sovereign instances -------------------------------------------------

def _instances(objects) -> list[dict]:  # noqa: ANN001
    """ServiceEntry / DestinationRule / VirtualService objects (config_gen's shapes) -> sovereign instances."""
    by_short: dict[str, dict] = {}
    for o in objects:
        if o.kind == "ServiceEntry":
            spec = o.spec
            host = spec["hosts"][0]
            port = spec["ports"][0]
            eps = [{"address": e["address"], "port": (e.get("ports") or {}).get(port["name"], port["number"]),
                    "labels": dict(e.get("labels") or {})} for e in spec.get("endpoints", [])]
            by_short[host.split(".")[0]] = {"name": o.name, "host": host, "port": port["number"],
                                            "endpoints": eps, "subsets": [], "vhost": None}
    for o in objects:
        if o.kind == "DestinationRule":
            by_short[o.spec["host"].split(".")[0]]["subsets"] = [
                {"name": s["name"], "labels": dict(s["labels"])} for s in o.spec.get("subsets", [])]
    for o in objects:
        if o.kind == "VirtualService":
            http = o.spec["http"][0]
            match = (http.get("match") or [{}])[0].get("uri", {})
            dests = http["route"]
            inst = by_short[dests[0]["destination"]["host"].split(".")[0]]
            inst["vhost"] = {"domain": o.spec["hosts"][0], "prefix": match.get("prefix", "/"),
                             "split": [{"subset": d["destination"].get("subset", ""), "weight": d.get("weight", 100)}
                                       for d in dests]}
    return list(by_short.values())


def _new_objects(k: int, port: int) -> list:
    docs = list(yaml.safe_load_all(scale.NEW.format(k=k, port=port)))

    class _O:  # the few attributes _instances reads
        def __init__(self, d: dict) -> None:
            self.kind, self.name, self.spec = d["kind"], d["metadata"]["name"], d["spec"]
    return [_O(d) for d in docs]


def write_instances(path: Path, instances: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(instances))
    tmp.rename(path)


# -- sovereign and a REST Envoy ---------------------------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    """pid and its descendants (gunicorn master and workers)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            total += scale.cpu_seconds(p)
        except OSError:
            pass
    return total


def tree_memory_mb(pid: int) -> tuple[float, float]:
    rss = pss = 0.0
    for p in _tree(pid):
        try:
            rss += scale.rss_mb(p)
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
        except OSError:
            pass
    return round(rss, 1), round(pss, 1)


class Sovereign:
    def __init__(self, *, workdir: Path, instances_path: Path, gateway_port: int, workers: int,
                 refresh_rate: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "sources": [{"type": "file", "config": {"path": f"file+orjson://{instances_path}"}}],
            "source_config": {"refresh_rate": refresh_rate},
            "matching": {"enabled": False},
            "templates": {"default": [
                {"type": t, "spec": {"protocol": "python", "serialization": "raw", "path": str(TEMPLATES / f"{t}.py")}}
                for t in ("clusters", "listeners", "routes")]},
            "template_context": {"context": {
                "gateway_port": {"protocol": "inline", "serialization": "json", "path": str(gateway_port)}}},
            "logging": {"application_logs": {"enabled": False}, "access_logs": {"enabled": False}},
        }
        self.config_path = workdir / "sovereign.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOVEREIGN_")}
        env.update({"SOVEREIGN_CONFIG": f"file://{self.config_path}", "SOVEREIGN_HOST": "127.0.0.1",
                    "SOVEREIGN_PORT": str(self.port), "SOVEREIGN_WORKERS": str(workers),
                    "SOVEREIGN_WORKER_TIMEOUT": "300", "PYTHONUNBUFFERED": "1"})
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        self.log_path = workdir / "sovereign.log"
        self.proc = subprocess.Popen([str(PEERS_VENV / "bin" / "sovereign")], stdout=self.log_path.open("w"),
                                     stderr=subprocess.STDOUT, env=env, cwd=workdir)

    def version(self) -> str:
        return subprocess.run([str(PEERS_VENV / "bin" / "python"), "-c",
                               "import importlib.metadata as m; print(m.version('sovereign'))"],
                              capture_output=True, text=True, check=True).stdout.strip()

    def wait_ready(self, timeout: float = 300) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sovereign exited: {self.log_path.read_text()[-3000:]}")
            return http_get(f"{self.url}/healthcheck")[0] == 200
        wait_until(ready, timeout=timeout, interval=0.2, what="sovereign /healthcheck")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for p in reversed(_tree(self.proc.pid)):
                    try:
                        os.kill(p, 9)
                    except OSError:
                        pass
                self.proc.wait(timeout=5)

    def __enter__(self) -> "Sovereign":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class RestEnvoy(Envoy):
    """The harness's Envoy (stats, ready, stop) with a REST bootstrap pointing at sovereign."""

    def __init__(self, *, sovereign: Sovereign, workdir: Path) -> None:  # noqa: D107 - no super().__init__
        Envoy._base_id += 1
        self.admin_port = free_port()
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        rest = {"api_type": "REST", "transport_api_version": "V3", "cluster_names": ["sovereign"],
                "refresh_delay": "0.1s", "request_timeout": "30s"}
        bootstrap = {
            "node": {"id": "gateway-1", "cluster": "gateway", "metadata": {"labels": {"istio": "ingressgateway"}}},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": self.admin_port}}},
            "dynamic_resources": {"cds_config": {"resource_api_version": "V3", "api_config_source": rest},
                                  "lds_config": {"resource_api_version": "V3", "api_config_source": rest}},
            "static_resources": {"clusters": [{
                "name": "sovereign", "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "sovereign", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": sovereign.port}}}}]}]}}]},
        }
        self.ads = "rest"
        self.bootstrap_path = workdir / f"envoy-rest-{self.admin_port}.yaml"
        self.bootstrap_path.write_text(yaml.safe_dump(bootstrap))
        self.log_path = workdir / f"envoy-rest-{self.admin_port}.log"
        self.proc = subprocess.Popen(
            [str(ENVOY_BIN), "-c", str(self.bootstrap_path), "--base-id", str(Envoy._base_id), "-l", "info",
             "--concurrency", "1", "--drain-time-s", "1"],
            stdout=self.log_path.open("w"), stderr=subprocess.STDOUT, cwd=workdir)


def run_sovereign(*, n: int, updates: int, workers: int, refresh_rate: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        gateway_port = free_port()
        base = _instances([o for i in range(n) for o in service(i)])
        instances_path = workdir / "instances.json"
        write_instances(instances_path, base)
        with Backends(replica="peers", workdir=workdir, route_guide=False) as backend:
            backend.wait_ready()
            started = time.monotonic()
            with Sovereign(workdir=workdir, instances_path=instances_path, gateway_port=gateway_port,
                           workers=workers, refresh_rate=refresh_rate) as sov:
                version = sov.version()
                sov.wait_ready()
                ready_s = time.monotonic() - started
                with RestEnvoy(sovereign=sov, workdir=workdir) as envoy:
                    envoy.wait_ready(timeout=600)
                    want = 3 * n
                    wait_until(lambda: envoy.stats("cluster_manager.active_clusters").get(
                        "cluster_manager.active_clusters", 0) >= want, timeout=600, interval=0.5,
                        what=f"{want} clusters active in Envoy")
                    envoy_ready_s = time.monotonic() - started
                    time.sleep(2)
                    idle0 = tree_cpu_seconds(sov.proc.pid)
                    time.sleep(5)
                    idle_cpu = (tree_cpu_seconds(sov.proc.pid) - idle0) / 5
                    latencies = []
                    current = list(base)
                    cpu0 = tree_cpu_seconds(sov.proc.pid)
                    t_start = time.perf_counter()
                    for k in range(updates):
                        channel = grpc.insecure_channel(f"127.0.0.1:{gateway_port}",
                                                        options=[("grpc.default_authority", f"new-{k}.example.com")])
                        current = current + _instances(_new_objects(k, backend.greeter_port))
                        tmp_file = instances_path.with_suffix(".tmp")
                        tmp_file.write_text(json.dumps(current))
                        t0 = time.perf_counter()
                        tmp_file.rename(instances_path)
                        deadline = t0 + 60
                        while not scale._ok(channel):
                            if time.perf_counter() > deadline:
                                raise TimeoutError(f"sovereign update {k} did not propagate within 60 s: "
                                                   f"{sov.log_path.read_text()[-2000:]}")
                            time.sleep(0.005)
                        latencies.append(time.perf_counter() - t0)
                        channel.close()
                        time.sleep(0.3)
                    window = time.perf_counter() - t_start
                    cpu_total = tree_cpu_seconds(sov.proc.pid) - cpu0
                    rss, pss = tree_memory_mb(sov.proc.pid)
                    procs = len(_tree(sov.proc.pid))
                    rejected = envoy.stats("update_rejected")
                    polls = envoy.stats("cluster_manager.cds.update_attempt")
    latencies.sort()
    return {"server": f"sovereign {version}", "services": n, "ads": "REST polling 0.1 s", "updates": updates,
            "sovereign_workers": workers, "source_refresh_rate_s": refresh_rate, "processes": procs,
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "control_plane_cpu_s_per_update": round(cpu_total / updates, 3),
            "control_plane_cpu_s_per_s_during_updates": round(cpu_total / window, 3),
            "control_plane_idle_cpu_s_per_s": round(idle_cpu, 4),
            # what the updates cost on top of the polling that goes on anyway (can be ~0 or negative: noise)
            "control_plane_cpu_s_per_update_above_idle": round((cpu_total - idle_cpu * window) / updates, 3),
            "control_plane_rss_mb": rss, "control_plane_pss_mb": pss,
            "control_plane_ready_s": round(ready_s, 1), "envoy_all_clusters_active_s": round(envoy_ready_s, 1),
            "envoy_update_rejected": sum(rejected.values()), "envoy_cds_update_attempts": sum(polls.values())}


def _table(rows: list[dict]) -> str:
    cols = [("server", "server"), ("ads", "xDS"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms"),
            ("control_plane_cpu_s_per_update", "CPU s/update"), ("control_plane_idle_cpu_s_per_s", "idle CPU s/s"),
            ("control_plane_rss_mb", "RSS MB"), ("control_plane_pss_mb", "PSS MB"),
            ("envoy_all_clusters_active_s", "Envoy ready s")]
    out = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(k, "—")) for k, _ in cols) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peers")
    p.add_argument("--services", type=int, default=int(os.environ.get("N", 1000)))
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--modes", default="delta,sotw", help="xds-server ADS modes to run (comma-separated)")
    p.add_argument("--sovereign-workers", type=int, default=1)
    p.add_argument("--sovereign-refresh-rate", type=int, default=1, help="sovereign source refresh, seconds")
    args = p.parse_args(argv)
    if not (PEERS_VENV / "bin" / "sovereign").exists():
        print(f"no sovereign in {PEERS_VENV}: run `make bench-peers`", file=sys.stderr)
        return 2
    rows = []
    for ads in [m for m in args.modes.split(",") if m]:
        print(f"xds-server, {args.services} services, {ads} ...", file=sys.stderr, flush=True)
        r = scale.run_one(n=args.services, ads=ads, updates=args.updates)
        r["server"] = "xds-server"
        rows.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    print(f"sovereign, {args.services} services ...", file=sys.stderr, flush=True)
    rows.append(run_sovereign(n=args.services, updates=args.updates, workers=args.sovereign_workers,
                              refresh_rate=args.sovereign_refresh_rate))
    from bench.__main__ import machine
    print(json.dumps({"machine": machine(), "peers": rows}, indent=2))
    print(_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
