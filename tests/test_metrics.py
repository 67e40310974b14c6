"""Metrics, /debug/syncz and /debug/config_dump with a scripted grpcio ADS client (SotW and Delta)."""
from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from tests.harness import free_port
from tests.test_ads_protocol import MUST, ROUTE_NAME, SUBSCRIPTION, Stream, config, node, subscribe_all, write_config
from translators import type_urls as T
from xds_server.admin import _redacted, resource_json
from xds_server.metrics import XdsMetrics
from xds_server.server import ServeOptions, serve
from xds_server.snapshot import Resource


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=MUST) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def get(url: str) -> tuple[int, str]:
    return await asyncio.wait_for(asyncio.to_thread(_get, url), MUST)


def value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total


@pytest.fixture
async def server(tmp_path: Path):
    write_config(tmp_path, config())
    options = ServeOptions(config_dirs=[tmp_path], xds_address=f"127.0.0.1:{free_port()}",
                           admin_address=f"127.0.0.1:{free_port()}", probe_address=f"127.0.0.1:{free_port()}",
                           debounce_quiet=0.02, debounce_max=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(options, stop_event=stop))
    channel = grpc.aio.insecure_channel(options.xds_address)
    try:
        await asyncio.wait_for(channel.channel_ready(), MUST)
        yield channel, tmp_path, options
    finally:
        await channel.close()
        stop.set()
        await asyncio.wait_for(task, MUST)


async def metrics(options: ServeOptions, *, probe: bool = False) -> str:
    status, body = await get(f"http://{options.probe_address if probe else options.admin_address}/metrics")
    assert status == 200
    return body


async def test_push_and_nack_move_the_counters_sotw(server) -> None:
    channel, directory, options = server
    s = Stream(channel)
    got = await subscribe_all(s)
    text = await metrics(options)
    for t in ("CDS", "EDS", "LDS", "RDS"):
        assert value(text, "xds_server_pushes_total", type=t) == 1, t
        assert value(text, "xds_server_response_bytes_count", type=t) == 1
        assert value(text, "xds_server_nacks_total", type=t) == 0
    assert value(text, "xds_server_connected_clients", flavour="envoy") == 1
    assert value(text, "xds_server_config_objects", kind="VirtualService") == 1
    assert value(text, "xds_server_translation_seconds_count") >= 1
    # a first sync is convergence only when the client connected before that config's snapshot existed
    converged_before = value(text, "xds_server_convergence_seconds_count")
    assert value(await metrics(options, probe=True), "xds_server_pushes_total", type="CDS") == 1

    # a config change: CDS pushed, ACKed -> one more push and a convergence sample
    write_config(directory, config(lb="LEAST_REQUEST"))
    resp = await s.recv()
    assert resp.type_url == T.CLUSTER
    await s.ack(resp)
    eds = await s.recv()  # EDS follows a CDS change (cluster warming)
    await s.ack(eds, names=SUBSCRIPTION[T.ENDPOINT])
    await asyncio.sleep(0.2)
    text = await metrics(options)
    assert value(text, "xds_server_pushes_total", type="CDS") == 2
    assert value(text, "xds_server_convergence_seconds_count") >= converged_before + 1

    # a route change NACKed: counted, shown in syncz as NACKED with the message and its sources
    write_config(directory, config(lb="LEAST_REQUEST", prefix="/other/"))
    rds = await s.recv()
    assert rds.type_url == T.ROUTE
    await s.nack(rds, f"rejected route {ROUTE_NAME}: bad value", names=SUBSCRIPTION[T.ROUTE])
    await asyncio.sleep(0.2)
    text = await metrics(options)
    assert value(text, "xds_server_nacks_total", type="RDS") == 1
    status, body = await get(f"http://{options.admin_address}/debug/syncz")
    [client] = json.loads(body)["clients"]
    assert client["mode"] == "sotw" and client["node"] == "test-node" and client["flavour"] == "envoy"
    rds_state = client["types"]["RDS"]
    assert rds_state["status"] == "NACKED" and "bad value" in rds_state["message"]
    assert rds_state["resources"] == [ROUTE_NAME]
    refs = {(x["kind"], x["namespace"], x["name"]) for x in rds_state["sources"]}
    assert ("VirtualService", "default", "greeter") in refs and ("Gateway", "default", "gw") in refs
    assert all(x["file"].endswith("config.yaml") for x in rds_state["sources"])
    assert client["types"]["CDS"]["status"] == "SYNCED"
    status, body = await get(f"http://{options.admin_address}/debug/diagnostics")
    nack_diags = [d for d in json.loads(body)["diagnostics"] if d["code"] == "nack"]
    assert any(d["object"] == "VirtualService/default/greeter" and "bad value" in d["message"] for d in nack_diags)
    status, body = await get(f"http://{options.admin_address}/debug/nacks")
    assert json.loads(body)["nacks"][-1]["sources"]

    # config_dump: what the client was last sent (the NACKed route included), unknown node 404
    status, body = await get(f"http://{options.admin_address}/debug/config_dump?node=test-node")
    assert status == 200
    dump = json.loads(body)
    [route] = dump["types"]["RDS"]["resources"]
    assert route["name"] == ROUTE_NAME and "/other/" in json.dumps(route["resource"])
    assert len(dump["types"]["CDS"]["resources"]) == 3
    assert (await get(f"http://{options.admin_address}/debug/config_dump?node=nobody"))[0] == 404
    assert set(got) == set(SUBSCRIPTION)


async def test_delta_push_and_nack_are_counted(server) -> None:
    channel, directory, options = server
    call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).DeltaAggregatedResources()
    await call.write(discovery_pb2.DeltaDiscoveryRequest(type_url=T.CLUSTER, node=node()))
    resp = await asyncio.wait_for(call.read(), MUST)
    assert resp.type_url == T.CLUSTER and resp.resources
    await call.write(discovery_pb2.DeltaDiscoveryRequest(type_url=T.CLUSTER, response_nonce=resp.nonce))
    await asyncio.sleep(0.2)
    status, body = await get(f"http://{options.admin_address}/debug/syncz")
    [client] = json.loads(body)["clients"]
    assert client["mode"] == "delta" and client["types"]["CDS"]["status"] == "SYNCED"
    write_config(directory, config(lb="LEAST_REQUEST"))
    resp = await asyncio.wait_for(call.read(), MUST)
    name = resp.resources[0].name
    await call.write(discovery_pb2.DeltaDiscoveryRequest(
        type_url=T.CLUSTER, response_nonce=resp.nonce,
        error_detail=status_pb2.Status(code=3, message=f"cluster {name}: bad lb")))
    await asyncio.sleep(0.2)
    text = await metrics(options)
    assert value(text, "xds_server_pushes_total", type="CDS") == 2
    assert value(text, "xds_server_nacks_total", type="CDS") == 1
    status, body = await get(f"http://{options.admin_address}/debug/syncz")
    [client] = json.loads(body)["clients"]
    cds = client["types"]["CDS"]
    assert cds["status"] == "NACKED" and cds["resources"] == [name]
    assert {(x["kind"], x["name"]) for x in cds["sources"]} >= {("ServiceEntry", "greeter"),
                                                                ("DestinationRule", "greeter")}
    status, body = await get(f"http://{options.admin_address}/debug/config_dump?node=test-node")
    assert len(json.loads(body)["types"]["CDS"]["resources"]) == 3
    call.cancel()


def test_each_server_has_its_own_registry() -> None:
    a, b = XdsMetrics(), XdsMetrics()
    a.pushed(T.CLUSTER, 100)
    a.nacked(T.SECRET)
    assert value(a.render().decode(), "xds_server_pushes_total", type="CDS") == 1
    assert value(a.render().decode(), "xds_server_nacks_total", type="SDS") == 1
    assert value(b.render().decode(), "xds_server_pushes_total", type="CDS") == 0


def test_config_dump_redacts_private_keys() -> None:
    from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

    secret = secret_pb2.Secret(name="kubernetes://gw-cert")
    secret.tls_certificate.certificate_chain.inline_bytes = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    secret.tls_certificate.private_key.inline_bytes = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
    out = resource_json(Resource.of(name=secret.name, type_url=T.SECRET, message=secret))
    assert out["tls_certificate"]["private_key"] == "[redacted]"
    assert "certificate_chain" in out["tls_certificate"]
    assert "MIIEvQ" not in json.dumps(out)
    assert _redacted({"a": [{"password": "x"}]}) == {"a": [{"password": "[redacted]"}]}
