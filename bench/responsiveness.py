"""ADS responsiveness during a full build: how long a newly connecting client waits for its first response.

``xds-server serve`` (the harness's ControlPlane, as ``bench/scale.py`` starts it) on N = 10,000 ``config_gen``
services.  One long-lived SotW ADS client in its own process (``--gateway-client``), subscribed like a gateway
Envoy (CDS and LDS wildcard, ACKing), keeps the gateway node class in the cache, so every build prepares that
class's snapshot.  Then:

* **idle**: a fresh ADS client every ~20 ms for ``--idle-seconds``: its own channel and connection, one
  ``StreamAggregatedResources`` stream, one LDS (or ``--type cds``) wildcard request with a gateway node; the
  time is from opening the channel until the first ``DiscoveryResponse``.  Then the stream and channel close.
* **build**: every object is replaced by the same N services under other names (``svc-N`` .. ``svc-2N-1``):
  nothing of the previous translation can be reused and every old object goes away.  ``--layout single``
  (default): the services are in one file, replaced by one rename (one parse, one translation);
  ``--layout files``: scale.py's files of 1,000 services, all renamed in one burst (the server translates
  several times as the parses finish).  Fresh clients keep coming every ~20 ms from just before the renames
  until the gateway client receives a CDS with the new clusters and none of the old; a client counts as
  "during the build" if it started in that window.

Also: the latency of ``GET /healthz`` on the admin port, polled every ~10 ms from a thread.  The admin server
runs on the same asyncio event loop as the ADS server, so its worst latency is an upper bound on the loop's
worst stall (plus one HTTP round trip); it is not the loop's own measurement.

``python -m bench.responsiveness [--services 10000] [--interval 0.02] [--idle-seconds 10] [--layout single|files]``
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from bench import scale
from bench.config_gen import gateway, service
from translators import type_urls as T
from tests.harness import ControlPlane, http_get

_RAW = {"request_serializer": discovery_pb2.DiscoveryRequest.SerializeToString,
        "response_deserializer": discovery_pb2.DiscoveryResponse.FromString}
_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def _node(node_id: str) -> base_pb2.Node:
    meta = struct_pb2.Struct()
    meta.update({"labels": {"istio": "ingressgateway"}, "NAMESPACE": "default"})
    return base_pb2.Node(id=node_id, metadata=meta)


def _channel(address: str) -> grpc.aio.Channel:
    # its own subchannel pool: a new TCP connection and HTTP/2 handshake per client, like a new Envoy
    return grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                       ("grpc.max_receive_message_length", 1 << 30)])


async def first_response(address: str, k: int, type_url: str, timeout: float = 120.0) -> float:
    """Seconds from opening the channel until the first response on a new ADS stream."""
    t0 = time.perf_counter()
    channel = _channel(address)
    try:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        req = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=[], node=_node(f"probe-{k}"))
        await call.write(req)
        resp = await asyncio.wait_for(call.read(), timeout)
        elapsed = time.perf_counter() - t0
        if resp is grpc.aio.EOF:
            raise RuntimeError(f"probe {k}: stream closed without a response")
        call.cancel()
        return elapsed
    finally:
        await channel.close()


class Gateway:
    """A long-lived SotW ADS client for the gateway class: CDS + LDS wildcard, ACKs every response."""

    def __init__(self, address: str) -> None:
        #: (marker that must be absent, marker that must be present): set before a rebuild
        self.expect: tuple[bytes, bytes, bytes] | None = None
        self.rebuilt = asyncio.Event()
        self.cds_times: list[float] = []
        self.busy_max = 0.0
        self.channel = grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 1 << 30)])
        # raw bytes: the client does not parse 15 MB of clusters
        self.call = self.channel.stream_stream(_METHOD, request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
                                               response_deserializer=lambda b: b)()
        self.versions: dict[str, str] = {}
        self.synced = asyncio.Event()

    async def run(self) -> None:
        await self.call.write(discovery_pb2.DiscoveryRequest(type_url=T.CLUSTER, node=_node("gateway-1")))
        await self.call.write(discovery_pb2.DiscoveryRequest(type_url=T.LISTENER))
        while True:
            raw = await self.call.read()
            if raw is grpc.aio.EOF:
                return
            t0 = time.perf_counter()
            resp = discovery_pb2.DiscoveryResponse()
            resp.ParseFromString(raw)
            self.versions[resp.type_url] = resp.version_info
            if resp.type_url == T.CLUSTER:
                self.cds_times.append(time.perf_counter())
                if self.expect is not None:
                    gone, first, last = self.expect
                    if gone not in raw and first in raw and last in raw:
                        self.rebuilt.set()
            # this client shares the bench's event loop with the probes: its work delays their clocks
            self.busy_max = max(self.busy_max, time.perf_counter() - t0)
            await self.call.write(discovery_pb2.DiscoveryRequest(type_url=resp.type_url, version_info=resp.version_info,
                                                                 response_nonce=resp.nonce))
            if T.CLUSTER in self.versions and T.LISTENER in self.versions:
                self.synced.set()

    async def close(self) -> None:
        self.call.cancel()
        await self.channel.close()


class GatewayProcess:
    """:class:`Gateway` in its own process (``--gateway-client``), so its 15 MB CDS pushes are not received
    on the same event loop and cores' share as the probes; it reports on stdout, with the machine-wide
    monotonic clock (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.synced = asyncio.Event()
        self.rebuilt = asyncio.Event()
        self.cds_times: list[float] = []
        self.busy_max = 0.0

    async def start(self, address: str, n: int) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.responsiveness", "--gateway-client", address, "--services", str(n),
            stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).resolve().parent.parent))
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self.proc.stdout.readline():
            what, _, value = line.decode().strip().partition(" ")
            if what == "synced":
                self.synced.set()
            elif what == "cds":
                self.cds_times.append(float(value))
            elif what == "rebuilt":
                self.rebuilt.set()
            elif what == "busy":
                self.busy_max = max(self.busy_max, float(value))

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self.reader.cancel()


async def gateway_client(address: str, n: int) -> None:
    gw = Gateway(address)
    gw.expect = (b"|svc-0.default.svc", f"|svc-{n}.default.svc".encode(), f"|svc-{2 * n - 1}.default.svc".encode())
    task = asyncio.create_task(gw.run())
    seen, said, busy = 0, set(), -1.0
    while not task.done():
        await asyncio.sleep(0.01)
        for t in gw.cds_times[seen:]:
            print(f"cds {t}", flush=True)
        seen = len(gw.cds_times)
        for flag in ("synced", "rebuilt"):
            if flag not in said and getattr(gw, flag).is_set():
                said.add(flag)
                print(f"{flag} {time.perf_counter()}", flush=True)
        if gw.busy_max != busy:
            busy = gw.busy_max
            print(f"busy {busy}", flush=True)
    await task


class HealthProbe(threading.Thread):
    """``GET /healthz`` every ``interval`` seconds; records (start time, latency)."""

    def __init__(self, url: str, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                http_get(self.url, timeout=60)
            except Exception:  # noqa: BLE001
                pass
            self.samples.append((t0, time.perf_counter() - t0))
            time.sleep(self.interval)


def _stats(xs: list[float]) -> dict:
    if not xs:
        return {"count": 0}
    xs = sorted(xs)
    return {"count": len(xs), "p50_ms": round(statistics.median(xs) * 1000, 1),
            "p99_ms": round(xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000, 1),
            "max_ms": round(xs[-1] * 1000, 1)}


def _timeline(probes: list[tuple[float, float]], health: list[tuple[float, float]], t0: float, t1: float,
              step: float = 0.5) -> list[dict]:
    out = []
    b = t0
    while b < t1:
        ps = [lat for s, lat in probes if b <= s < b + step]
        hs = [lat for s, lat in health if b <= s < b + step]
        out.append({"at_s": round(b - t0, 1), "clients": len(ps),
                    "worst_first_response_ms": round(max(ps) * 1000) if ps else None,
                    "worst_healthz_ms": round(max(hs) * 1000) if hs else None})
        b += step
    return out


def _worst_at(samples: list[tuple[float, float]], t0: float, t1: float) -> float | None:
    inside = [(lat, s) for s, lat in samples if t0 <= s <= t1]
    return round(max(inside)[1] - t0, 2) if inside else None


async def _probe_for(address: str, type_url: str, interval: float, stop: asyncio.Event, counter: list[int],
                     out: list[tuple[float, float]], errors: list[str]) -> None:
    tasks = []

    async def one(k: int, started: float) -> None:
        try:
            out.append((started, await first_response(address, k, type_url)))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}"[:200])

    nxt = time.perf_counter()
    while not stop.is_set():
        counter[0] += 1
        tasks.append(asyncio.create_task(one(counter[0], time.perf_counter())))
        nxt += interval
        await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
    await asyncio.gather(*tasks)


async def _run(cp: ControlPlane, config: Path, n: int, *, interval: float, idle_seconds: float,
               type_url: str, layout: str) -> dict:
    address = cp.xds_address
    gw = GatewayProcess()
    await gw.start(address, n)
    await asyncio.wait_for(gw.synced.wait(), 600)
    await asyncio.sleep(2)
    counter = [0]
    health = HealthProbe(f"{cp.admin_url}/healthz")
    health.start()

    # idle
    idle: list[tuple[float, float]] = []
    errors: list[str] = []
    stop = asyncio.Event()
    t_idle = time.perf_counter()
    prober = asyncio.create_task(_probe_for(address, type_url, interval, stop, counter, idle, errors))
    await asyncio.sleep(idle_seconds)
    stop.set()
    await prober
    t_idle_end = time.perf_counter()
    await asyncio.sleep(1)

    # the full build: the same N services under other names, every object new, every old one gone
    translations0 = await asyncio.to_thread(cp.translations)
    cds0 = len(gw.cds_times)
    renames = []
    if layout == "single":
        tmp = config / "services.tmp"
        tmp.write_text(scale._docs([o for i in range(n) for o in service(n + i)]))
        renames.append((tmp, config / "services.yaml"))
    else:
        for start in range(0, n, 1000):
            objs = [o for i in range(start, min(n, start + 1000)) for o in service(n + i)]
            tmp = config / f"services-{start // 1000:03d}.tmp"
            tmp.write_text(scale._docs(objs))
            renames.append((tmp, tmp.with_suffix(".yaml")))
    during: list[tuple[float, float]] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(_probe_for(address, type_url, interval, stop, counter, during, errors))
    await asyncio.sleep(0.5)
    t_build = time.perf_counter()
    for tmp, final in renames:
        tmp.rename(final)
    await asyncio.wait_for(gw.rebuilt.wait(), 600)
    t_built = time.perf_counter()
    await asyncio.sleep(1.0)
    translations_seen = await asyncio.to_thread(cp.translations)
    stop.set()
    await prober
    health.stop.set()
    health.join(timeout=60)
    await gw.close()

    in_build = [lat for s, lat in during if t_build <= s <= t_built]
    health_idle = [lat for s, lat in health.samples if t_idle <= s <= t_idle_end]
    health_build = [lat for s, lat in health.samples if t_build <= s <= t_built]
    return {"services": n, "probe_type": T.short(type_url) if hasattr(T, "short") else type_url,
            "interval_ms": round(interval * 1000), "build_window_s": round(t_built - t_build, 2),
            "layout": layout, "translations_during_build": translations_seen - translations0,
            "gateway_cds_pushes_during_build": len(gw.cds_times) - cds0,
            "gateway_client_busy_max_ms": round(gw.busy_max * 1000, 1),
            "idle": _stats([lat for _, lat in idle]),
            "during_build": _stats(in_build),
            "healthz_idle": _stats(health_idle), "healthz_during_build": _stats(health_build),
            # when, from the renames, the slowest new client started and the slowest /healthz was sent
            "during_build_worst_started_at_s": _worst_at(during, t_build, t_built),
            "healthz_worst_started_at_s": _worst_at(health.samples, t_build, t_built),
            "probe_errors": len(errors), "first_errors": errors[:3],
            # per 0.5 s of the build (from the renames): new clients started, their worst wait, worst /healthz;
            # and when the gateway client got each CDS push
            "timeline": _timeline(during, health.samples, t_build, t_built),
            "gateway_cds_push_at_s": [round(t - t_build, 2) for t in gw.cds_times[cds0:]]}


def run(*, n: int = 10000, interval: float = 0.02, idle_seconds: float = 10.0, type_url: str = T.LISTENER,
        layout: str = "single") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "config"
        config.mkdir()
        gateway_port = scale.free_port()
        if layout == "single":  # one file: the rebuild is one rename, one parse, one translation
            (config / "gateway.yaml").write_text(scale._docs([gateway(gateway_port)]))
            (config / "services.yaml").write_text(scale._docs([o for i in range(n) for o in service(i)]))
        else:  # scale.py's layout: files of 1,000 services, replaced one by one in a burst
            scale.write_config(config, n, gateway_port=gateway_port)
        started = time.monotonic()
        with ControlPlane(config_dirs=[config], workdir=workdir, debounce_quiet=0.1, log_level="info",
                          extra_args=["--max-file-bytes", str(256 << 20)]) as cp:
            cp.wait_ready(timeout=600)
            ready_s = time.monotonic() - started
            out = asyncio.run(_run(cp, config, n, interval=interval, idle_seconds=idle_seconds, type_url=type_url,
                                 layout=layout))
            out["control_plane_ready_s"] = round(ready_s, 1)
            out["control_plane_rss_mb"] = scale.rss_mb(cp.proc.pid)
            out["translation_log"] = [line.split("] ", 1)[-1][:160] for line in cp.log().splitlines()
                                      if "translation " in line and " took " in line][-3:]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.responsiveness")
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--interval", type=float, default=0.02, help="seconds between new clients")
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p.add_argument("--type", choices=["lds", "cds"], default="lds",
                   help="what the new client asks for first (wildcard; cds: a 30,000-cluster response at 10,000)")
    p.add_argument("--layout", choices=["single", "files"], default="single",
                   help="single: all services in one file, replaced by one rename (one full translation); "
                        "files: scale.py's files of 1,000 services, all replaced in one burst")
    p.add_argument("--gateway-client", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.gateway_client:
        asyncio.run(gateway_client(args.gateway_client, args.services))
        return 0
    type_url = {"lds": T.LISTENER, "cds": T.CLUSTER}[args.type]
    from bench.__main__ import machine
    out = run(n=args.services, interval=args.interval, idle_seconds=args.idle_seconds, type_url=type_url,
              layout=args.layout)
    print(json.dumps({"machine": machine(), "responsiveness": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
