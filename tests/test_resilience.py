"""Nothing a user or a client writes takes the server down.

The server runs in-process (``xds_server.server.serve``) on free ports, with a
config directory the test owns, and a scripted ADS client over real gRPC
(:class:`tests.test_ads_protocol.Stream`).  Each case here was a crash, a
freeze or a stall before; each wait is bounded.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2

from tests.harness import ROOT, free_port
from tests.test_ads_protocol import CLUSTERS, LISTENER, MUST, MUST_NOT, ROUTE_NAME, SUBSCRIPTION, Stream, config, \
    names_of, subscribe_all, write_config
from translators import type_urls as T
from xds_server.ads import Limits, sanitize
from xds_server.server import ServeOptions, serve

#: each of these once crashed the file source (and so ``serve``), ``validate`` and ``render``
CRASHING_FILES = {
    "list-items-not-a-list.yaml": "kind: List\nitems: 5\n",
    "self-alias.yaml": "a: &x [*x]\n",
    "alias-bomb.yaml": "a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                       "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
    "namespace-not-a-string.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: {a: 1}}\n",
    "not-utf8.yaml": "\udcff",
}


def write_raw(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


async def admin(options: ServeOptions, path: str) -> tuple[int, bytes]:
    def get() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{options.admin_address}{path}", timeout=MUST) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
    return await asyncio.wait_for(asyncio.to_thread(get), MUST)


async def diagnostics(options: ServeOptions) -> list[dict]:
    return json.loads((await admin(options, "/debug/diagnostics"))[1])["diagnostics"]


async def eventually(predicate, *, timeout: float = MUST, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def options_for(config_dir: Path, **kw) -> ServeOptions:
    return ServeOptions(config_dirs=[config_dir], xds_address=f"127.0.0.1:{free_port()}",
                        admin_address=f"127.0.0.1:{free_port()}", debounce_quiet=0.02, debounce_max=0.2, **kw)


class Running:
    """``serve()`` on this event loop; fails the test if it exits on its own."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.stop = asyncio.Event()

    async def __aenter__(self) -> "Running":
        self.task = asyncio.create_task(serve(self.options, stop_event=self.stop))
        self.channel = grpc.aio.insecure_channel(self.options.xds_address)
        await asyncio.wait_for(self.channel.channel_ready(), MUST)
        await eventually(self._ready, what="/readyz")
        return self

    async def _ready(self) -> bool:
        self.alive()
        return (await admin(self.options, "/readyz"))[0] == 200

    def alive(self) -> None:
        assert not self.task.done(), f"serve() exited: {self.task.exception() if not self.task.cancelled() else ''}"

    async def __aexit__(self, *exc) -> None:
        await self.channel.close()
        self.alive()
        self.stop.set()
        await asyncio.wait_for(self.task, MUST)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    d.mkdir()
    write_config(d, config())
    return d


# ---------------------------------------------------------------------------------------------- bad files

async def test_files_that_crashed_the_server_are_file_errors_and_the_rest_keeps_serving(config_dir: Path) -> None:
    for name, text in CRASHING_FILES.items():
        write_raw(config_dir / name, text)
    async with Running(options_for(config_dir)) as running:
        s = Stream(running.channel)
        got = await subscribe_all(s)
        assert names_of(got[T.CLUSTER]) == CLUSTERS
        diags = await diagnostics(running.options)
        for name in CRASHING_FILES:
            assert any(d["file"].endswith(name) and d["severity"] == "error" for d in diags), (name, diags)
        # a crashing file written while serving: an error, and the good config keeps serving
        write_raw(config_dir / "late.yaml", CRASHING_FILES["list-items-not-a-list.yaml"])
        await eventually(lambda: _has_error(running.options, "late.yaml"), what="late.yaml reported")
        write_config(config_dir, config(prefix="/still.Updates/"))
        resp = await s.recv()
        assert resp.type_url == T.ROUTE and "/still.Updates/" in str(resp)
        running.alive()
        status, _ = await admin(running.options, "/readyz")
        assert status == 200


async def _has_error(options: ServeOptions, file_suffix: str) -> bool:
    return any(d["file"].endswith(file_suffix) and d["severity"] == "error" for d in await diagnostics(options))


@pytest.mark.parametrize("command", ["validate", "render"])
def test_validate_and_render_report_crashing_files_without_a_traceback(tmp_path: Path, command: str) -> None:
    write_config(tmp_path, config())
    for name, text in CRASHING_FILES.items():
        write_raw(tmp_path / name, text)
    args = [sys.executable, "-m", "xds_server", command, str(tmp_path)]
    if command == "render":
        args += ["--node-id", "n", "--label", "istio=ingressgateway"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    for name in CRASHING_FILES:
        assert name in done.stdout + done.stderr
    if command == "validate":
        assert done.returncode == 1
    else:
        assert done.returncode == 0 and LISTENER in done.stdout


async def test_a_file_over_the_size_limit_is_an_error_not_a_stall(config_dir: Path) -> None:
    big = config_dir / "big.yaml"
    with big.open("wb") as f:
        f.truncate(2 * 1024 * 1024)  # sparse; the limit below is 1 MiB
    async with Running(options_for(config_dir, max_file_bytes=1024 * 1024)) as running:
        diags = await diagnostics(running.options)
        assert any(d["file"].endswith("big.yaml") and "the limit is 1048576" in d["message"] for d in diags), diags
        s = Stream(running.channel)
        assert names_of((await subscribe_all(s))[T.LISTENER]) == [LISTENER]


async def test_a_file_replaced_by_a_directory_loses_its_objects(config_dir: Path) -> None:
    extra = config_dir / "extra.yaml"
    extra.write_text(config(extra_port=True).replace("name: gw,", "name: gw2,").split("---")[0])
    async with Running(options_for(config_dir)) as running:
        s = Stream(running.channel)
        got = await subscribe_all(s)
        assert names_of(got[T.LISTENER]) == sorted([LISTENER, "0.0.0.0_9090"])
        extra.unlink()
        extra.mkdir()
        resp = await s.recv()
        assert resp.type_url == T.LISTENER and names_of(resp) == [LISTENER]


# ---------------------------------------------------------------------------------------------- directories

async def test_deleted_and_recreated_config_directory_keeps_serving_then_reloads(config_dir: Path) -> None:
    async with Running(options_for(config_dir)) as running:
        s = Stream(running.channel)
        got = await subscribe_all(s)
        shutil.rmtree(config_dir)
        await eventually(lambda: _has_error(running.options, "config"), what="the missing directory reported")
        await s.nothing(1.0)  # no empty or smaller config is pushed
        config_dir.mkdir()
        write_config(config_dir, config(prefix="/back.Again/"))
        resp = await s.recv(timeout=MUST)
        assert resp.type_url == T.ROUTE and "/back.Again/" in str(resp)
        assert resp.version_info != got[T.ROUTE].version_info
        await eventually(lambda: _no_dir_error(running.options), what="the directory error cleared")


async def _no_dir_error(options: ServeOptions) -> bool:
    return not any("config directory does not exist" in d["message"] for d in await diagnostics(options))


def _configmap_generation(mount: Path, name: str, text: str) -> None:
    """What the kubelet does on a ConfigMap update: a new hidden directory, then an atomic ..data swap."""
    gen = mount / name
    gen.mkdir()
    (gen / "config.yaml").write_text(text)
    tmp = mount / "..data_tmp"
    tmp.symlink_to(name)
    os.replace(tmp, mount / "..data")
    visible = mount / "config.yaml"
    if not visible.is_symlink():
        visible.symlink_to("..data/config.yaml")


async def test_configmap_data_symlink_swap_is_reloaded_through_the_visible_name(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    mount.mkdir()
    _configmap_generation(mount, "..2026_12_01_00_00_00.1", config())
    async with Running(options_for(mount)) as running:
        s = Stream(running.channel)
        await subscribe_all(s)
        diags = await diagnostics(running.options)
        assert not any(d["code"] == "duplicate" for d in diags), diags  # the hidden copy is never loaded
        _configmap_generation(mount, "..2026_12_01_00_00_01.2", config(prefix="/swapped.Map/"))
        shutil.rmtree(mount / "..2026_12_01_00_00_00.1")
        resp = await s.recv()
        assert resp.type_url == T.ROUTE and "/swapped.Map/" in str(resp)
        diags = await diagnostics(running.options)
        assert not any(d["code"] == "duplicate" or "..data" in d["file"] for d in diags), diags


# ---------------------------------------------------------------------------------------------- floods

def _node(*, metadata_bytes: int = 0, labels: dict[str, str] | None = None,
          generator: str = "") -> base_pb2.Node:
    meta = struct_pb2.Struct()
    meta.update({"labels": labels or {"istio": "ingressgateway"}})
    if generator:
        meta.update({"GENERATOR": generator})
    if metadata_bytes:
        meta.update({"padding": "x" * metadata_bytes})
    return base_pb2.Node(id="flood", metadata=meta)


async def _healthz_ms(options: ServeOptions) -> float:
    started = time.monotonic()
    status, _ = await admin(options, "/healthz")
    assert status == 200
    return (time.monotonic() - started) * 1000


async def _refused(channel: grpc.aio.Channel, node: base_pb2.Node, type_url: str, names) -> grpc.aio.AioRpcError:
    s = Stream(channel)
    s.sent_node = True
    from envoy.service.discovery.v3 import discovery_pb2
    await asyncio.wait_for(s.call.write(discovery_pb2.DiscoveryRequest(node=node, type_url=type_url,
                                                                       resource_names=names)), MUST)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await asyncio.wait_for(s.call.read(), MUST)
    return exc.value


async def test_floods_are_refused_with_resource_exhausted_and_nothing_stalls(config_dir: Path) -> None:
    async with Running(options_for(config_dir)) as running:
        healthy = Stream(running.channel)
        await subscribe_all(healthy)
        # 300,000 proxyless listener names in one request
        err = await _refused(running.channel, _node(generator="grpc"), T.LISTENER,
                             [f"h{i}.example.com:{i % 65535 + 1}" for i in range(300_000)])
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # an EDS request with a million names (over the 4 MB message limit before it is even parsed)
        err = await _refused(running.channel, _node(), T.ENDPOINT, [f"outbound|1||s{i}" for i in range(1_000_000)])
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # listener names just over the per-request limit, in a small message
        err = await _refused(running.channel, _node(generator="grpc"), T.LISTENER, [f"c{i}:1" for i in range(10_001)])
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "10000 per request" in err.details()
        # endpoint names: a gateway at 10,000 services asks for 30,000; the limit is 100,000
        err = await _refused(running.channel, _node(), T.ENDPOINT, [f"c{i}" for i in range(100_001)])
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "100000 per request" in err.details()
        # huge node metadata
        err = await _refused(running.channel, _node(metadata_bytes=200_000), T.CLUSTER, [])
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "node" in err.details()
        assert await _healthz_ms(running.options) < 1000
        # the well-behaved stream still gets updates
        write_config(config_dir, config(prefix="/after.Flood/"))
        resp = await healthy.recv()
        assert resp.type_url == T.ROUTE and "/after.Flood/" in str(resp)


async def test_many_proxyless_names_resolve_off_the_event_loop(config_dir: Path) -> None:
    async with Running(options_for(config_dir)) as running:
        s = Stream(running.channel)
        s.sent_node = True
        from envoy.service.discovery.v3 import discovery_pb2
        names = [f"nope{i}.example.com:{i % 60000 + 1}" for i in range(9_000)] + [f"{'greeter'}:50051"]
        await asyncio.wait_for(s.call.write(discovery_pb2.DiscoveryRequest(
            node=_node(generator="grpc"), type_url=T.LISTENER, resource_names=names)), MUST)
        probe = asyncio.ensure_future(_healthz_ms(running.options))
        resp = await s.recv(timeout=30)
        assert names_of(resp) == ["greeter:50051"]
        assert await probe < 2000


async def test_fake_label_sets_share_one_node_class(config_dir: Path) -> None:
    """Self-asserted labels that select the same gateways are one class: one snapshot, built once."""
    from envoy.service.discovery.v3 import discovery_pb2
    async with Running(options_for(config_dir)) as running:
        channels = [grpc.aio.insecure_channel(running.options.xds_address, options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(40)]
        try:
            for i, channel in enumerate(channels):
                s = Stream(channel)
                s.sent_node = True
                await asyncio.wait_for(s.call.write(discovery_pb2.DiscoveryRequest(
                    node=_node(labels={"istio": "ingressgateway", "fake": str(i)}), type_url=T.CLUSTER)), MUST)
                assert names_of(await s.recv()) == CLUSTERS
            snapshots = json.loads((await admin(running.options, "/debug/snapshots"))[1])["snapshots"]
            assert len(snapshots) == 1, [x["labels"] for x in snapshots]
        finally:
            for channel in channels:
                await channel.close()


async def test_node_classes_are_capped(config_dir: Path) -> None:
    async with Running(options_for(config_dir, max_node_classes=3)) as running:
        from envoy.service.discovery.v3 import discovery_pb2
        kept = []
        for ns in ("a", "b", "c"):
            s = Stream(running.channel)
            s.sent_node = True
            node = _node()
            node.metadata.update({"NAMESPACE": ns})
            await asyncio.wait_for(s.call.write(discovery_pb2.DiscoveryRequest(node=node, type_url=T.CLUSTER)), MUST)
            await s.recv()
            kept.append(s)
        node = _node()
        node.metadata.update({"NAMESPACE": "d"})
        err = await _refused(running.channel, node, T.CLUSTER, [])
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "node classes" in err.details()


# ---------------------------------------------------------------------------------------------- NACK text

def test_nack_text_is_bounded_redacted_and_escaped() -> None:
    huge = "x" * (8 * 1024 * 1024)
    assert len(sanitize(huge, limit=4096)) < 4200
    forged = "bad route\n2026-12-01 00:00:00 INFO xds_server: all good\r\x1b[2J"
    clean = sanitize(forged, limit=4096)
    assert "\n" not in clean and "\r" not in clean and "\x1b" not in clean and "\\n2026" in clean
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    assert "MIIEvQ" not in sanitize(f"cannot load {key}", limit=4096)


async def test_nack_flood_is_stored_bounded_and_logged_once(config_dir: Path, caplog) -> None:
    async with Running(options_for(config_dir)) as running:
        s = Stream(running.channel)
        await s.send(T.CLUSTER)
        resp = await s.recv()
        for _ in range(5):
            await s.nack(resp, "y" * (2 * 1024 * 1024) + "\nforged line")
            await s.nothing(0.1)
            await s.send(T.CLUSTER)  # a fresh request gets a fresh response to NACK again
            resp = await s.recv()
        nacks = json.loads((await admin(running.options, "/debug/nacks"))[1])["nacks"]
        assert len(nacks) == 5 and all(len(n["message"]) < 4200 and "\n" not in n["message"] for n in nacks)
        logged = [r for r in caplog.records if r.getMessage().startswith("NACK from")]
        assert len(logged) == 1, len(logged)


# ---------------------------------------------------------------------------------------------- protocol state

async def test_unknown_type_urls_keep_no_state(config_dir: Path) -> None:
    async with Running(options_for(config_dir)) as running:
        s = Stream(running.channel)
        for i in range(50):
            await s.send(f"type.googleapis.com/made.up.Type{i}", names=["x"])
        await s.send(T.CLUSTER)
        assert (await s.recv()).type_url == T.CLUSTER
        clients = json.loads((await admin(running.options, "/debug/clients"))[1])["clients"]
        assert list(clients[0]["types"]) == ["CDS"]


async def test_connections_that_never_speak_http2_are_closed(config_dir: Path) -> None:
    async with Running(options_for(config_dir, handshake_timeout_s=1.0)) as running:
        host, port = running.options.xds_address.split(":")
        socks = [socket.create_connection((host, int(port)), timeout=MUST) for _ in range(50)]
        try:
            await asyncio.sleep(2.5)
            closed = 0
            for sock in socks:
                sock.settimeout(2)
                try:
                    closed += sock.recv(65536) == b"" or _drained(sock)
                except (ConnectionResetError, socket.timeout):
                    closed += 0
            assert closed == len(socks), f"{closed}/{len(socks)} silent connections were closed"
        finally:
            for sock in socks:
                sock.close()
        s = Stream(running.channel)
        assert names_of((await subscribe_all(s))[T.LISTENER]) == [LISTENER]


def _drained(sock: socket.socket) -> bool:
    """The server may send SETTINGS/GOAWAY before closing: read until EOF (bounded)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if sock.recv(65536) == b"":
            return True
    return False
