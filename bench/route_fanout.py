"""Control-plane CPU per route edit with K Delta clients subscribed as a gateway Envoy is: RDS or VHDS.

``xds-server serve`` on bench/config_gen.py's N services; K grpcio Delta ADS streams in spawned worker
processes, each on its own connection, subscribed like Envoy (CDS wildcard, EDS for every cluster, LDS
wildcard, RDS for its route configuration and, when that names ``vhds``, VHDS) and ACKing every response.
Then ``edits`` VirtualService edits, one at a time, each until every client has received it; the
control plane's CPU (utime + stime) over them, per edit.  ``vhds=False`` runs ``serve --no-vhds``.

    .venv/bin/python -m bench.route_fanout --services 10000 --clients 100 [--no-vhds]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import queue as queue_mod
import tempfile
import time
from pathlib import Path

from bench.scale import cpu_seconds, rss_mb, write_config
from tests.harness import ControlPlane, free_port
from translators import type_urls as T

EDIT = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: edit, namespace: default}}
spec:
  hosts: [edit-{k}.example.com]
  gateways: [ingress]
  http: [{{route: [{{destination: {{host: svc-1}}}}]}}]
"""


async def _client(address: str, index: int, counter: dict) -> None:
    import grpc
    from envoy.config.route.v3 import route_pb2
    from envoy.service.discovery.v3 import discovery_pb2
    from google.protobuf import struct_pb2

    async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                           ("grpc.max_receive_message_length", 1 << 30)]) as ch:
        call = ch.stream_stream("/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
                                request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=discovery_pb2.DeltaDiscoveryResponse.FromString)()
        meta = struct_pb2.Struct()
        meta.update({"labels": {"istio": "ingressgateway"}})
        send = call.write
        await send(discovery_pb2.DeltaDiscoveryRequest(node={"id": f"fan-{index}", "metadata": meta}, type_url=T.CLUSTER))
        await send(discovery_pb2.DeltaDiscoveryRequest(type_url=T.LISTENER))
        opened: set[str] = set()
        while True:
            resp = await call.read()
            await send(discovery_pb2.DeltaDiscoveryRequest(type_url=resp.type_url, response_nonce=resp.nonce))
            if resp.type_url == T.CLUSTER and T.ENDPOINT not in opened:
                opened.add(T.ENDPOINT)
                await send(discovery_pb2.DeltaDiscoveryRequest(type_url=T.ENDPOINT, resource_names_subscribe=[
                    r.name for r in resp.resources]))
            if resp.type_url == T.LISTENER and T.ROUTE not in opened:
                opened.add(T.ROUTE)
                port = resp.resources[0].name.rsplit("_", 1)[1]
                await send(discovery_pb2.DeltaDiscoveryRequest(type_url=T.ROUTE, resource_names_subscribe=[f"http.{port}"]))
            if resp.type_url == T.ROUTE and T.VIRTUAL_HOST not in opened:
                rc = route_pb2.RouteConfiguration()
                resp.resources[0].resource.Unpack(rc)
                if rc.HasField("vhds"):
                    opened.add(T.VIRTUAL_HOST)
                    await send(discovery_pb2.DeltaDiscoveryRequest(type_url=T.VIRTUAL_HOST))  # as Envoy opens it
            counter[resp.type_url] = counter.get(resp.type_url, 0) + 1


def _worker(address: str, first: int, count: int, out) -> None:  # noqa: ANN001
    async def main() -> None:
        counters = [dict() for _ in range(count)]
        tasks = [asyncio.create_task(_client(address, first + i, counters[i])) for i in range(count)]
        while True:
            await asyncio.sleep(0.2)
            out.put((first, [dict(c) for c in counters]))
            for t in tasks:
                if t.done() and t.exception():
                    raise t.exception()
    asyncio.run(main())


def run(*, n: int = 10000, clients: int = 100, vhds: bool = True, edits: int = 10, processes: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "config"
        config.mkdir()
        write_config(config, n, gateway_port=free_port())
        with ControlPlane(config_dirs=[config], workdir=workdir, log_level="warning",
                          extra_args=[] if vhds else ["--no-vhds"]) as cp:
            cp.wait_ready(timeout=600)
            ctx = mp.get_context("spawn")
            reports = ctx.Queue()
            per = clients // processes
            procs = [ctx.Process(target=_worker, args=(cp.xds_address, p * per, per, reports), daemon=True)
                     for p in range(processes)]
            for p in procs:
                p.start()
            state: dict[int, list[dict]] = {}
            key = T.VIRTUAL_HOST if vhds else T.ROUTE

            def total(type_url: str) -> int:
                return sum(c.get(type_url, 0) for cs in state.values() for c in cs)

            def drain(until, timeout: float) -> bool:  # noqa: ANN001
                end = time.monotonic() + timeout
                while time.monotonic() < end:
                    try:
                        first, counters = reports.get(timeout=0.5)
                        state[first] = counters
                    except queue_mod.Empty:
                        pass
                    if until():
                        return True
                return False

            try:
                synced = drain(lambda: len(state) == processes and sum(
                    1 for cs in state.values() for c in cs if c.get(key)) == per * processes, timeout=900)
                if not synced:
                    raise TimeoutError("the clients did not all get their routes")
                time.sleep(3)
                drain(lambda: False, timeout=1)
                cpu0, base, started = cpu_seconds(cp.proc.pid), total(key), time.monotonic()
                for k in range(edits):
                    tmp_file = config / "edit.tmp"
                    tmp_file.write_text(EDIT.format(k=k))
                    tmp_file.rename(config / "edit.yaml")
                    if not drain(lambda: total(key) >= base + (k + 1) * per * processes, timeout=120):
                        raise TimeoutError(f"edit {k} did not reach every client")
                elapsed = time.monotonic() - started
                cpu = (cpu_seconds(cp.proc.pid) - cpu0) / edits
                rss = rss_mb(cp.proc.pid)
            finally:
                for p in procs:
                    p.kill()
    return {"services": n, "clients": per * processes, "vhds": vhds, "edits": edits,
            "control_plane_cpu_ms_per_edit": round(cpu * 1000, 1),
            "wall_s_per_edit_until_all_clients": round(elapsed / edits, 3), "control_plane_rss_mb": rss}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--edits", type=int, default=10)
    p.add_argument("--vhds", action=argparse.BooleanOptionalAction, default=True)
    a = p.parse_args()
    print(json.dumps(run(n=a.services, clients=a.clients, vhds=a.vhds, edits=a.edits)))
