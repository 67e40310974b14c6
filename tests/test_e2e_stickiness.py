"""Stickiness end to end: a DestinationRule ``consistentHash.httpCookie`` through a real Envoy.

Three replicas behind one Service.  The first call gets a ``set-cookie`` that Envoy generated (Istio's
behaviour); 50 calls that send it back all reach one replica; calls without it spread across replicas.
Source-IP and header hashing are checked the same way.
"""
from __future__ import annotations

import contextlib
from collections import Counter

import grpc
import pytest

from protos import helloworld_pb2, helloworld_pb2_grpc
from tests.harness import Backends, ControlPlane, Envoy, free_port, wait_until

pytestmark = pytest.mark.e2e

CONFIG = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: {port}, name: grpc, protocol: GRPC}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{{headers: {{x-mode: {{exact: header}}}}}}]
    route: [{{destination: {{host: by-header.default.svc.cluster.local, port: {{number: 50051}}}}}}]
  - match: [{{headers: {{x-mode: {{exact: ip}}}}}}]
    route: [{{destination: {{host: by-ip.default.svc.cluster.local, port: {{number: 50051}}}}}}]
  - route: [{{destination: {{host: by-cookie.default.svc.cluster.local, port: {{number: 50051}}}}}}]
{services}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: by-cookie, namespace: default}}
spec:
  host: by-cookie.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: {{consistentHash: {{httpCookie: {{name: session, path: /, ttl: 3600s}}, ringHash: {{minimumRingSize: 1024}}}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: by-header, namespace: default}}
spec:
  host: by-header.default.svc.cluster.local
  trafficPolicy: {{loadBalancer: {{consistentHash: {{httpHeaderName: x-user, maglev: {{tableSize: 65537}}}}}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: by-ip, namespace: default}}
spec:
  host: by-ip.default.svc.cluster.local
  trafficPolicy: {{loadBalancer: {{consistentHash: {{useSourceIp: true}}}}}}
"""

SERVICE = """---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{endpoints}]"""


#: the gateway's address, set by the fixture (for calls on fresh connections)
ADDRESS: list[str] = []


def call(channel: grpc.Channel, metadata=()) -> tuple[str, dict]:  # noqa: ANN001
    _, c = helloworld_pb2_grpc.GreeterStub(channel).SayHello.with_call(
        helloworld_pb2.HelloRequest(name="sticky"), metadata=tuple(metadata), timeout=3)
    return dict(c.initial_metadata()).get("x-replica", ""), dict(c.initial_metadata())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("sticky")
    with contextlib.ExitStack() as stack:
        replicas = [stack.enter_context(Backends(replica=r, workdir=workdir, route_guide=False)).wait_ready()
                    for r in ("a", "b", "c")]
        endpoints = ", ".join(f"{{address: 127.0.0.1, ports: {{grpc: {r.greeter_port}}}}}" for r in replicas)
        port = free_port()
        config = workdir / "config"
        config.mkdir()
        services = "\n".join(SERVICE.format(name=n, endpoints=endpoints) for n in ("by-cookie", "by-header", "by-ip"))
        (config / "app.yaml").write_text(CONFIG.format(port=port, services=services))
        cp = stack.enter_context(ControlPlane(config_dirs=[config], workdir=workdir)).wait_ready()
        stack.enter_context(Envoy(control_plane=cp, workdir=workdir)).wait_ready()
        channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{port}",
                                                            options=[("grpc.use_local_subchannel_pool", 1)]))
        wait_until(lambda: call(channel)[0] in ("a", "b", "c"), timeout=30, what="routing through Envoy")
        ADDRESS.append(f"127.0.0.1:{port}")
        yield channel


def test_the_first_call_gets_a_cookie_and_calls_with_it_stick(env) -> None:
    _, headers = call(env)
    cookie = headers.get("set-cookie", "")
    assert cookie.startswith("session="), headers
    value = cookie.split(";", 1)[0]
    seen = Counter(call(env, [("cookie", value)])[0] for _ in range(50))
    assert len(seen) == 1, seen


def test_calls_without_the_cookie_spread(env) -> None:
    """Envoy derives a missing cookie from the client's address: new connections (new source ports) get new
    cookies and land on more than one replica."""
    seen: Counter = Counter()
    for _ in range(30):
        with grpc.insecure_channel(ADDRESS[-1], options=[("grpc.use_local_subchannel_pool", 1)]) as fresh:
            seen[call(fresh)[0]] += 1
    assert len(seen) >= 2, seen


def test_header_hashing_sticks_per_user_and_spreads_users(env) -> None:
    per_user = {u: Counter(call(env, [("x-mode", "header"), ("x-user", u)])[0] for _ in range(10))
                for u in (f"user-{i}" for i in range(12))}
    assert all(len(c) == 1 for c in per_user.values()), per_user
    assert len({next(iter(c)) for c in per_user.values()}) >= 2


def test_source_ip_hashing_sticks(env) -> None:
    seen = Counter(call(env, [("x-mode", "ip")])[0] for _ in range(30))
    assert len(seen) == 1, seen
