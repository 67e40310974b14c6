"""Chaos with a real Envoy carrying traffic: the control plane killed, paused and flooded.

Envoy keeps its last config while the control plane is away, so no call may
fail; when the control plane comes back, Envoy must receive the same versions
(content hashes) and never an empty or smaller config.  A flood of streams
and NACKs from one client must not delay another Envoy's updates.
"""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from google.rpc import status_pb2

from tests.gateway_env import GatewayEnv, gateway_env
from tests.grpc_calls import say_hello
from tests.harness import ControlPlane, wait_until
from tests.traffic import Traffic
from translators import type_urls as T

pytestmark = pytest.mark.e2e

TYPES = ("CDS", "EDS", "LDS", "RDS")


@pytest.fixture
def env(tmp_path: Path):
    with gateway_env(tmp_path) as e:
        yield e


def synced(cp: ControlPlane) -> dict[str, str] | None:
    """The versions the one connected Envoy ACKed, once every type is ACKed at what was sent."""
    clients = cp.debug("clients")["clients"]
    if len(clients) != 1:
        return None
    types = clients[0]["types"]
    if any(t not in types or not types[t]["sent"] or types[t]["acked"] != types[t]["sent"] for t in TYPES):
        return None
    return {t: types[t]["acked"] for t in TYPES}


def envoy_counts(env: GatewayEnv) -> tuple[int, int]:
    stats = env.envoy.stats("")
    return stats.get("cluster_manager.active_clusters", 0), stats.get("listener_manager.total_listeners_active", 0)


def test_sigkill_and_restart_keeps_traffic_and_restores_the_same_versions(env: GatewayEnv) -> None:
    before = wait_until(lambda: synced(env.control_plane), timeout=10, what="the Envoy in sync")
    counts = envoy_counts(env)
    cp = env.control_plane
    with Traffic(env) as traffic:
        time.sleep(0.5)
        cp.proc.send_signal(signal.SIGKILL)
        cp.proc.wait(timeout=10)
        time.sleep(2.0)  # Envoy runs on its last config, reconnecting with backoff
        restarted = ControlPlane(config_dirs=[env.config_dir], workdir=env.workdir, xds_port=cp.xds_port,
                                 admin_port=cp.admin_port)
        try:
            restarted.wait_ready()
            after = wait_until(lambda: synced(restarted), timeout=20, what="the Envoy to reconnect and ACK")
            time.sleep(0.5)
        finally:
            restarted.stop()
    assert after == before, "a restarted control plane serves the same content versions"
    assert envoy_counts(env) == counts, "never an empty or smaller config"
    assert traffic.failures == [] and traffic.ok > 10, traffic.failures[:3]


def test_sigstop_for_10s_keeps_traffic_then_updates_resume(env: GatewayEnv) -> None:
    wait_until(lambda: synced(env.control_plane), timeout=10, what="the Envoy in sync")
    cp = env.control_plane
    with Traffic(env) as traffic:
        cp.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(10)
        finally:
            cp.proc.send_signal(signal.SIGCONT)
        env.write_routes(greeter_subset="v2")
        wait_until(lambda: say_hello(env.channel)[1] == "b", timeout=10, what="the route change after SIGCONT")
    assert traffic.failures == [] and traffic.ok > 50, traffic.failures[:3]
    assert cp.proc.poll() is None


class Flood:
    """Many ADS streams from one process, each NACKing every response it gets, in a thread of its own."""

    def __init__(self, address: str, *, channels: int = 10, streams_per_channel: int = 10) -> None:
        self.address = address
        self.channels = channels
        self.streams_per_channel = streams_per_channel
        self.nacks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _one(self, channel: grpc.aio.Channel, i: int) -> None:
        meta = struct_pb2.Struct()
        meta.update({"labels": {"istio": "ingressgateway", "flood": str(i)}})
        node = base_pb2.Node(id=f"flood-{i}", metadata=meta)
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        await call.write(discovery_pb2.DiscoveryRequest(node=node, type_url=T.CLUSTER))
        while not self._stop.is_set():
            resp = await asyncio.wait_for(call.read(), 5)
            if resp is grpc.aio.EOF:
                return
            self.nacks += 1
            await call.write(discovery_pb2.DiscoveryRequest(
                type_url=T.CLUSTER, response_nonce=resp.nonce,
                error_detail=status_pb2.Status(code=3, message="flood " + "z" * 100_000)))
            # a fresh request without a nonce gets a fresh response to NACK again
            await call.write(discovery_pb2.DiscoveryRequest(type_url=T.CLUSTER))

    async def _main(self) -> None:
        channels = [grpc.aio.insecure_channel(self.address, options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(self.channels)]
        tasks = [asyncio.create_task(self._one(ch, c * self.streams_per_channel + k))
                 for c, ch in enumerate(channels) for k in range(self.streams_per_channel)]
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for ch in channels:
            await ch.close()

    def __enter__(self) -> "Flood":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def test_stream_and_nack_flood_does_not_delay_another_envoys_updates(env: GatewayEnv) -> None:
    wait_until(lambda: synced(env.control_plane), timeout=10, what="the Envoy in sync")
    with Flood(env.control_plane.xds_address) as flood, Traffic(env) as traffic:
        wait_until(lambda: flood.nacks > 200, timeout=20, what="the flood to get going")
        started = time.monotonic()
        env.write_routes(greeter_subset="v2")
        wait_until(lambda: say_hello(env.channel)[1] == "b", timeout=10, what="the route change during the flood")
        took = time.monotonic() - started
    assert took < 3.0, f"the update took {took:.2f}s during the flood"
    assert traffic.failures == [], traffic.failures[:3]
    assert env.control_plane.proc.poll() is None
    assert os.path.getsize(env.control_plane.log_path) < 5_000_000, "NACK text is bounded in the log"
