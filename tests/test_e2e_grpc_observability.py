"""gRPC metrics and access logs in Envoy: the grpc_stats filter on every gateway, and an Istio Telemetry
``accessLogging`` that becomes a stdout access log carrying the gRPC status.

Calls that succeed and calls that fail with NOT_FOUND show up in Envoy's ``/stats`` by status (always)
and by method (the Gateway's ``xds-server.io/grpc-stats-all-methods``), and in the access log with their
gRPC status.
"""
from __future__ import annotations

import contextlib
import time
from concurrent import futures

import grpc
import pytest

from protos import helloworld_pb2, helloworld_pb2_grpc
from tests.harness import ControlPlane, Envoy, free_port, wait_until

pytestmark = pytest.mark.e2e

CLUSTER = "outbound|50051||greeter.default.svc.cluster.local"

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {backend}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
  annotations: {{xds-server.io/grpc-stats-all-methods: "true"}}
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
  - match: [{{uri: {{exact: /helloworld.Greeter/SayHello}}}}]
    route: [{{destination: {{host: greeter.default.svc.cluster.local}}}}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: mesh-default, namespace: istio-system}}
spec:
  accessLogging: [{{providers: [{{name: envoy}}]}}]
"""


class _Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):  # noqa: N802, ANN001, ANN201
        if request.name == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such greeting")
        return helloworld_pb2.HelloReply(message=f"hello {request.name}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("grpc-obs")
    with contextlib.ExitStack() as stack:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        helloworld_pb2_grpc.add_GreeterServicer_to_server(_Greeter(), server)
        backend = free_port()
        server.add_insecure_port(f"127.0.0.1:{backend}")
        server.start()
        stack.callback(server.stop, None)
        port = free_port()
        config = workdir / "config"
        config.mkdir()
        (config / "app.yaml").write_text(CONFIG.format(backend=backend, port=port))
        cp = stack.enter_context(ControlPlane(config_dirs=[config], workdir=workdir)).wait_ready()
        envoy = stack.enter_context(Envoy(control_plane=cp, workdir=workdir))
        envoy.wait_ready()
        channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{port}"))
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        wait_until(lambda: stub.SayHello(helloworld_pb2.HelloRequest(name="warm"), timeout=2), timeout=30,
                   what="routing through Envoy")
        yield {"envoy": envoy, "stub": stub}


def test_success_and_not_found_show_in_stats_by_method_and_status(env) -> None:
    stub, envoy = env["stub"], env["envoy"]
    prefix = f"cluster.{CLUSTER}.grpc.helloworld.Greeter.SayHello"
    before = envoy.stats(prefix)
    for _ in range(5):
        stub.SayHello(helloworld_pb2.HelloRequest(name="ok"), timeout=2)
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as exc:
            stub.SayHello(helloworld_pb2.HelloRequest(name="missing"), timeout=2)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND

    def moved() -> bool:
        now = envoy.stats(prefix)
        return now.get(f"{prefix}.success", 0) - before.get(f"{prefix}.success", 0) >= 5 and \
            now.get(f"{prefix}.failure", 0) - before.get(f"{prefix}.failure", 0) >= 3
    wait_until(moved, timeout=10, what=f"{prefix}.success/failure")
    now = envoy.stats(prefix)
    assert now[f"{prefix}.total"] - before.get(f"{prefix}.total", 0) >= 8
    assert now.get(f"{prefix}.0", 0) >= 5 and now.get(f"{prefix}.5", 0) >= 3, now  # by status: OK, NOT_FOUND


def test_access_log_carries_the_grpc_status(env) -> None:
    stub, envoy = env["stub"], env["envoy"]
    stub.SayHello(helloworld_pb2.HelloRequest(name="logged"), timeout=2)
    with pytest.raises(grpc.RpcError):
        stub.SayHello(helloworld_pb2.HelloRequest(name="missing"), timeout=2)

    def lines() -> list[str]:
        return [l for l in envoy.log().splitlines() if "/helloworld.Greeter/SayHello" in l and '"POST ' in l]
    # (not " 5 ": that also matches an OK line whose duration is 5 ms)
    wait_until(lambda: any("NotFound" in l for l in lines()), timeout=10, what="the NOT_FOUND call's access log line")
    logged = lines()
    ok = [l for l in logged if " 200 OK " in l or " 200 0 " in l]
    not_found = [l for l in logged if "NotFound" in l]
    assert ok and not_found, logged[-5:]
    assert CLUSTER in not_found[-1] and "127.0.0.1:" in not_found[-1]
