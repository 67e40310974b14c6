"""Propagation at scale through a real Envoy: N services, then a new service added as a file.

The config is ``bench/config_gen.py``'s: N services, each a ServiceEntry with 10 endpoints, a
DestinationRule with two subsets and a VirtualService, on one Gateway (files of 1,000 services).  Each
update writes a new file with a ServiceEntry (pointing at a real grpcio backend) and a VirtualService for
host ``newK.example.com``; the time is from the atomic rename until a call through Envoy with that
``:authority`` returns OK.  Also: control-plane CPU seconds per update (from /proc), idle CPU per second
with Envoy connected, and RSS.  Run with Envoy on Delta xDS and on SotW.

``source="kubernetes"``: the same objects served by the scripted Kubernetes API server of the tests (real
list and watch JSON over HTTP to ``xds-server serve --kubernetes``, one object per origin in the store), and
each update is the new ServiceEntry and VirtualService pushed as two ``ADDED`` watch events; the time is from
the push.  (The API server runs in this process: its CPU is not the control plane's.)
"""
from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import yaml

from bench.config_gen import gateway, service
from protos import helloworld_pb2, helloworld_pb2_grpc
from tests.harness import Backends, ControlPlane, Envoy, free_port, wait_until

LOG_LEVEL = "warning"

NEW = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: new-{k}, namespace: default}}
spec:
  hosts: [new-{k}.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: new-{k}, namespace: default}}
spec:
  hosts: [new-{k}.example.com]
  gateways: [ingress]
  http: [{{route: [{{destination: {{host: new-{k}}}}}]}}]
"""


def _doc(o, **metadata: str) -> dict:  # noqa: ANN001
    """A config object as the document it was read from (``metadata``: more fields, e.g. resourceVersion)."""
    return {"apiVersion": o.api_version, "kind": o.kind,
            "metadata": {"name": o.name, "namespace": o.namespace, **metadata}, "spec": dict(o.spec)}


def _docs(objects) -> str:  # noqa: ANN001
    return yaml.safe_dump_all([_doc(o) for o in objects], sort_keys=False)


def write_config(directory: Path, n: int, *, gateway_port: int) -> None:
    gw = gateway(gateway_port)
    (directory / "gateway.yaml").write_text(_docs([gw]))
    for start in range(0, n, 1000):
        objs = [o for i in range(start, min(n, start + 1000)) for o in service(i)]
        (directory / f"services-{start // 1000:03d}.yaml").write_text(_docs(objs))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks (100 Hz)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _ok(channel: grpc.Channel) -> bool:
    try:
        helloworld_pb2_grpc.GreeterStub(channel).SayHello(helloworld_pb2.HelloRequest(name="scale"), timeout=1)
        return True
    except grpc.RpcError:
        return False


#: the Istio kinds of the config, by the plural the API serves them under; and what the scripted API server
#: serves for ``source="kubernetes"`` (the core group is always served)
PLURALS = {"Gateway": "gateways", "VirtualService": "virtualservices", "DestinationRule": "destinationrules",
           "ServiceEntry": "serviceentries"}
ISTIO_GROUPS = {"networking.istio.io": [("v1", list(PLURALS.values()))]}


def _api_server(stack: contextlib.ExitStack, workdir: Path, n: int, *, gateway_port: int):  # noqa: ANN202
    """The scripted API server with the config's objects, and a kubeconfig for it."""
    from tests.fake_apiserver import FakeApiServer, Script

    by_plural: dict[str, list[dict]] = {p: [] for p in PLURALS.values()}
    for o in [gateway(gateway_port)] + [o for i in range(n) for o in service(i)]:
        by_plural[PLURALS[o.kind]].append(_doc(o, resourceVersion="1"))
    scripts = {p: Script(lists=[("1", items)]) for p, items in by_plural.items()}
    for core in ("services", "namespaces", "secrets", "configmaps"):
        scripts[core] = Script(lists=[("1", [])])
    api = stack.enter_context(FakeApiServer(groups=ISTIO_GROUPS, scripts=scripts))
    kubeconfig = api.kubeconfig(workdir / "kubeconfig")
    return api, ["--kubernetes", "--kubeconfig", str(kubeconfig), "--lease-namespace", "default"]


def run_one(*, n: int, ads: str, updates: int, serve_args: tuple[str, ...] = (), source: str = "files") -> dict:
    """One size and ADS mode; ``serve_args``: extra ``xds-server serve`` flags (e.g. ``("--no-vhds",)``);
    ``source``: ``files`` or ``kubernetes`` (see the module's docstring)."""
    assert source in ("files", "kubernetes"), source
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        config = workdir / "config"
        config.mkdir()
        gateway_port = free_port()
        api = None
        if source == "files":
            write_config(config, n, gateway_port=gateway_port)
            config_dirs, source_args = [config], []
        else:
            api, source_args = _api_server(stack, workdir, n, gateway_port=gateway_port)
            config_dirs = []
        with Backends(replica="scale", workdir=workdir, route_guide=False) as backend:
            backend.wait_ready()
            started = time.monotonic()
            with ControlPlane(config_dirs=config_dirs, workdir=workdir, debounce_quiet=0.1, log_level=LOG_LEVEL,
                              extra_args=[*source_args, *serve_args]) as cp:
                cp.wait_ready(timeout=600)
                ready_s = time.monotonic() - started
                with Envoy(control_plane=cp, workdir=workdir, ads=ads) as envoy:
                    envoy.wait_ready(timeout=600)
                    want = 3 * n
                    wait_until(lambda: envoy.stats("cluster_manager.active_clusters").get(
                        "cluster_manager.active_clusters", 0) >= want, timeout=600, interval=0.5,
                        what=f"{want} clusters active in Envoy")
                    envoy_ready_s = time.monotonic() - started
                    time.sleep(2)
                    idle0 = cpu_seconds(cp.proc.pid)
                    time.sleep(5)
                    idle_cpu = (cpu_seconds(cp.proc.pid) - idle0) / 5
                    latencies = []
                    cpu0, envoy_cpu0 = cpu_seconds(cp.proc.pid), cpu_seconds(envoy.proc.pid)
                    for k in range(updates):
                        channel = grpc.insecure_channel(f"127.0.0.1:{gateway_port}",
                                                        options=[("grpc.default_authority", f"new-{k}.example.com")])
                        text = NEW.format(k=k, port=backend.greeter_port)
                        if api is None:
                            tmp_file = config / f"new-{k}.tmp"
                            tmp_file.write_text(text)
                            t0 = time.perf_counter()
                            tmp_file.rename(config / f"new-{k}.yaml")
                        else:
                            docs = [dict(d, metadata=dict(d["metadata"], resourceVersion=str(10 + k)))
                                    for d in yaml.safe_load_all(text) if d]
                            t0 = time.perf_counter()
                            for d in docs:
                                api.push(PLURALS[d["kind"]], {"type": "ADDED", "object": d})
                        deadline = t0 + 60
                        while not _ok(channel):
                            if time.perf_counter() > deadline:
                                raise TimeoutError(f"update {k} did not propagate within 60 s")
                            time.sleep(0.005)
                        latencies.append(time.perf_counter() - t0)
                        channel.close()
                        time.sleep(0.3)  # let the control plane settle (ACKs) before the next one
                    cpu_per_update = (cpu_seconds(cp.proc.pid) - cpu0) / updates
                    envoy_cpu_per_update = (cpu_seconds(envoy.proc.pid) - envoy_cpu0) / updates
                    rss = rss_mb(cp.proc.pid)
                    nacks = cp.debug("nacks")["nacks"]
                    envoy_rejected = envoy.stats("update_rejected")
    latencies.sort()
    return {"services": n, "ads": ads, "source": source, "updates": updates,
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "control_plane_cpu_s_per_update": round(cpu_per_update, 3),
            "envoy_cpu_s_per_update": round(envoy_cpu_per_update, 3), "serve_args": list(serve_args),
            "control_plane_idle_cpu_s_per_s": round(idle_cpu, 4),
            "control_plane_rss_mb": rss, "control_plane_ready_s": round(ready_s, 1),
            "envoy_all_clusters_active_s": round(envoy_ready_s, 1), "nacks": len(nacks),
            "envoy_update_rejected": sum(envoy_rejected.values())}


def run(*, sizes: tuple[int, ...] = (100, 1000, 10000), modes: tuple[str, ...] = ("delta", "sotw"),
        updates: int = 20) -> list[dict]:
    out = []
    for n in sizes:
        for ads in modes:
            out.append(run_one(n=n, ads=ads, updates=updates))
    return out
