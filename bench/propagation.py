"""Route propagation: a new VirtualService route written to a file, until a gRPC call through a real
Envoy gets OK instead of UNIMPLEMENTED.  Sequential, one route at a time, default debounce (100 ms)."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import grpc

from protos import helloworld_pb2
from tests.harness import Backends, ControlPlane, Envoy, free_port, wait_until

BASE = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: {port}, name: grpc, protocol: GRPC}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter}}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {backend}}}}}]
"""

ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: probe-{n}}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{{uri: {{exact: /probe{n}.Svc/Call}}}}]
    rewrite: {{uri: /helloworld.Greeter/SayHello}}
    route: [{{destination: {{host: greeter}}}}]
"""


def _call(channel: grpc.Channel, n: int) -> grpc.StatusCode:
    method = channel.unary_unary(f"/probe{n}.Svc/Call", request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        method(helloworld_pb2.HelloRequest(name="probe").SerializeToString(), timeout=2)
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()


def run(*, routes: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "config"
        config.mkdir()
        gateway_port = free_port()
        with Backends(replica="probe", workdir=workdir, route_guide=False) as backend:
            backend.wait_ready()
            (config / "base.yaml").write_text(BASE.format(port=gateway_port, backend=backend.greeter_port))
            with ControlPlane(config_dirs=[config], workdir=workdir, debounce_quiet=0.1, log_level="info") as cp:
                cp.wait_ready()
                with Envoy(control_plane=cp, workdir=workdir) as envoy:
                    envoy.wait_ready()
                    channel = grpc.insecure_channel(f"127.0.0.1:{gateway_port}")
                    wait_until(lambda: _call(channel, 0) == grpc.StatusCode.UNIMPLEMENTED, timeout=20,
                               what="the gateway")
                    latencies = []
                    for n in range(1, routes + 1):
                        assert _call(channel, n) == grpc.StatusCode.UNIMPLEMENTED
                        tmp_file = config / f"probe-{n}.tmp"
                        tmp_file.write_text(ROUTE.format(n=n))
                        started = time.perf_counter()
                        tmp_file.rename(config / f"probe-{n}.yaml")
                        deadline = started + 10
                        while _call(channel, n) != grpc.StatusCode.OK:
                            if time.perf_counter() > deadline:
                                raise TimeoutError(f"route {n} did not propagate within 10 s")
                            time.sleep(0.005)
                        latencies.append(time.perf_counter() - started)
                    channel.close()
    latencies.sort()
    return {"routes": routes, "debounce_quiet_ms": 100,
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1)}
