"""Fan-out: one config change until K ADS clients have received it and ACKed; also control-plane RSS.

Clients run in worker processes (spawned), many asyncio streams per process, each stream on its own
channel (``grpc.use_local_subchannel_pool``) so every client is its own HTTP/2 connection.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

from tests.configs import GATEWAY_AND_SERVICE
from tests.harness import ControlPlane

BASE = GATEWAY_AND_SERVICE

CHANGE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: added}
spec:
  hosts: [added.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.2}]
"""

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"


async def _client(address: str, index: int, ready: asyncio.Queue, go: asyncio.Event, out: list) -> None:
    import grpc
    from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
    from google.protobuf import struct_pb2

    async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        meta = struct_pb2.Struct()
        meta.update({"labels": {"istio": "ingressgateway"}})
        first = discovery_pb2.DiscoveryRequest(type_url=CDS)
        first.node.id = f"bench-{index}"
        first.node.metadata.CopyFrom(meta)
        await call.write(first)
        await call.write(discovery_pb2.DiscoveryRequest(type_url=LDS))
        initial_cds = None
        while True:
            resp = await call.read()
            await call.write(discovery_pb2.DiscoveryRequest(type_url=resp.type_url, version_info=resp.version_info,
                                                            response_nonce=resp.nonce))
            if resp.type_url != CDS:
                continue
            if initial_cds is None:
                initial_cds = resp.version_info
                await ready.put(index)
            elif resp.version_info != initial_cds:
                out.append(time.time())
                break
        await go.wait()
        call.cancel()


def _worker(address: str, first: int, count: int, ready_q, results_q, done_evt) -> None:
    async def main() -> None:
        ready: asyncio.Queue = asyncio.Queue()
        go = asyncio.Event()
        out: list[float] = []
        tasks = [asyncio.create_task(_client(address, first + i, ready, go, out)) for i in range(count)]
        for _ in range(count):
            await asyncio.wait_for(ready.get(), 120)
        ready_q.put(count)
        deadline = time.monotonic() + 120
        while len(out) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        results_q.put(out)
        while not done_evt.is_set():  # stay connected so the parent can measure memory
            await asyncio.sleep(0.05)
        go.set()
        await asyncio.wait(tasks, timeout=10)
    asyncio.run(main())


def measure(k: int, *, processes: int, measure_memory: bool = False) -> dict:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "config"
        config.mkdir()
        (config / "base.yaml").write_text(BASE)
        # the product's defaults: 100 ms quiet period, info logging
        with ControlPlane(config_dirs=[config], workdir=workdir, debounce_quiet=0.1, log_level="info") as cp:
            cp.wait_ready()
            ready_q, results_q, done = ctx.Queue(), ctx.Queue(), ctx.Event()
            per = [k // processes + (1 if i < k % processes else 0) for i in range(processes)]
            workers, first = [], 0
            for n in per:
                w = ctx.Process(target=_worker, args=(cp.xds_address, first, n, ready_q, results_q, done), daemon=True)
                w.start()
                workers.append(w)
                first += n
            connected = sum(ready_q.get(timeout=180) for _ in workers)
            rss_mb = _rss_mb(cp.proc.pid)
            time.sleep(0.5)
            started = time.time()
            tmp_file = config / "added.tmp"
            tmp_file.write_text(CHANGE)
            tmp_file.rename(config / "added.yaml")
            times = [t for _ in workers for t in results_q.get(timeout=180)]
            done.set()
            for w in workers:
                w.join(timeout=30)
                if w.is_alive():
                    w.kill()
    latencies = sorted(t - started for t in times)
    out = {"clients": k, "connected": connected, "acked": len(latencies),
           "p50_s": round(statistics.median(latencies), 3), "p100_s": round(latencies[-1], 3)}
    if measure_memory:
        out["control_plane_rss_mb"] = rss_mb
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def run(*, quick: bool) -> dict:
    out = {"100": measure(100, processes=4)}
    if not quick:
        out["1000"] = measure(1000, processes=8, measure_memory=True)
    return out
