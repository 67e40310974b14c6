"""Control-plane memory with N services and K connected Delta clients, each subscribed like a gateway Envoy.

``xds-server serve`` in a subprocess on bench/config_gen.py's N services; K grpcio Delta ADS clients in
spawned worker processes, each on its own connection: CDS wildcard and EDS for every cluster (3 per
service), ACKing each response.  Measured once every client has its EDS: the server's RSS.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue as queue_module
import tempfile
import time
from pathlib import Path

from bench.scale import rss_mb, write_config
from tests.harness import ControlPlane, free_port

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def _eds_names(n: int) -> list[str]:
    return [f"outbound|50051|{s}|svc-{i}.default.svc.cluster.local" for i in range(n) for s in ("", "v1", "v2")]


async def _client(address: str, index: int, names: list[str], done: list) -> None:
    import grpc
    from envoy.service.discovery.v3 import discovery_pb2
    from google.protobuf import struct_pb2

    # no BDP pings: the server allows a ping only every 5 s on a connection it sends nothing on
    async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                           ("grpc.http2.bdp_probe", 0),
                                                           ("grpc.max_receive_message_length", 1 << 30)]) as channel:
        call = channel.stream_stream("/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
                                     request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=discovery_pb2.DeltaDiscoveryResponse.FromString)()
        meta = struct_pb2.Struct()
        meta.update({"labels": {"istio": "ingressgateway"}})
        await call.write(discovery_pb2.DeltaDiscoveryRequest(
            node={"id": f"mem-{index}", "metadata": meta}, type_url=CDS))
        got = set()
        while got != {CDS, EDS}:
            resp = await asyncio.wait_for(call.read(), 600)
            await call.write(discovery_pb2.DeltaDiscoveryRequest(type_url=resp.type_url, response_nonce=resp.nonce))
            if resp.type_url == CDS and CDS not in got:
                await call.write(discovery_pb2.DeltaDiscoveryRequest(type_url=EDS, resource_names_subscribe=names))
            got.add(resp.type_url)
        done.append(index)
        await asyncio.sleep(3600)  # stay connected until the parent kills the worker


def _worker(address: str, first: int, count: int, n: int, queue, batch: int = 10) -> None:  # noqa: ANN001
    names = _eds_names(n)

    async def main() -> None:
        done: list[int] = []
        tasks: list[asyncio.Task] = []
        # in batches, each synced before the next: the steady state of K gateways, not a connection storm
        # (8 client processes and the server on 2 cores: a storm starves keepalive pings and drops streams)
        for start in range(0, count, batch):
            tasks += [asyncio.create_task(_client(address, first + i, names, done))
                      for i in range(start, min(count, start + batch))]
            while len(done) < min(count, start + batch):
                await asyncio.sleep(0.2)
                if any(t.done() and t.exception() for t in tasks):
                    raise next(t.exception() for t in tasks if t.done() and t.exception())
        queue.put(count)
        await asyncio.gather(*tasks)
    asyncio.run(main())


def run(*, n: int = 10000, clients: int = 1000, processes: int = 8, log_level: str = "warning") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "config"
        config.mkdir()
        write_config(config, n, gateway_port=free_port())
        with ControlPlane(config_dirs=[config], workdir=workdir, log_level=log_level) as cp:
            cp.wait_ready(timeout=600)
            idle_rss = rss_mb(cp.proc.pid)
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            per = clients // processes
            procs = [ctx.Process(target=_worker, args=(cp.xds_address, p * per, per, n, queue), daemon=True)
                     for p in range(processes)]
            started = time.monotonic()
            for p in procs:
                p.start()
            ready = 0
            try:
                deadline = time.monotonic() + 1800
                while ready < per * processes:
                    try:
                        ready += queue.get(timeout=5)
                    except queue_module.Empty:
                        dead = [p.exitcode for p in procs if p.exitcode is not None]
                        if dead or time.monotonic() > deadline:
                            text = cp.log_path.read_text(errors="replace")
                            kept = Path(tempfile.gettempdir()) / "xds-bench-memory-server.log"
                            kept.write_text(text)  # the whole log, for the first failure
                            tail = [f"(whole log: {kept})", *text.splitlines()[-40:]]
                            raise RuntimeError(f"clients failed ({ready} synced; worker exit codes {dead}); the "
                                               "server's log ends:\n" + "\n".join(tail)) from None
                synced_s = time.monotonic() - started
                time.sleep(2)
                rss = rss_mb(cp.proc.pid)
            finally:
                for p in procs:
                    p.kill()
    return {"services": n, "clients": per * processes, "rss_mb_before_clients": idle_rss,
            "rss_mb_with_clients": rss, "all_clients_synced_s": round(synced_s, 1)}
