"""Active gRPC health checks end to end: two replicas behind a real Envoy, each serving ``grpc.health.v1``.

The same checks written three ways: an Emissary Mapping with ``health_checks`` (``grpc.upstream_name``),
an Istio DestinationRule with the ``xds-server.io/health-check`` annotation, and Envoy Gateway's
BackendTrafficPolicy on a GRPCRoute (the same healthCheck form); interval 1 s, unhealthy threshold 2.  One replica switches to NOT_SERVING: within interval x
threshold + 2 s every call goes to the other; back to SERVING, traffic returns to it.  Then a replica is
killed outright.
"""
from __future__ import annotations

import contextlib
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protos import helloworld_pb2, helloworld_pb2_grpc
from tests.grpc_calls import say_hello
from tests.harness import ControlPlane, Envoy, free_port, wait_until

pytestmark = pytest.mark.e2e

INTERVAL_S = 1
UNHEALTHY = 2
#: the issue's bound: interval x unhealthy threshold, plus 2 s
BOUND_S = INTERVAL_S * UNHEALTHY + 2
LABELS = {"xds-server.io/dialect": "emissary", "xds-server.io/ambassador-id": "default"}

#: the Service with one EndpointSlice per replica, shared by the three ways of writing the checks
REPLICAS = """---
apiVersion: v1
kind: Service
metadata: {{name: greeter}}
spec: {{ports: [{{name: grpc, port: 50051}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: greeter-r1, labels: {{kubernetes.io/service-name: greeter}}}}
addressType: IPv4
ports: [{{name: grpc, port: {p1}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: greeter-r2, labels: {{kubernetes.io/service-name: greeter}}}}
addressType: IPv4
ports: [{{name: grpc, port: {p2}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
"""


CONFIG = """
apiVersion: getambassador.io/v3alpha1
kind: Listener
metadata: {{name: cleartext}}
spec: {{port: {listener}, protocol: HTTP, securityModel: XFP, hostBinding: {{namespace: {{from: ALL}}}}}}
---
apiVersion: getambassador.io/v3alpha1
kind: Host
metadata: {{name: any}}
spec: {{hostname: "*", requestPolicy: {{insecure: {{action: Route}}}}}}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: greeter}}
spec:
  hostname: "*"
  grpc: true
  prefix: /helloworld.Greeter/
  rewrite: ""
  service: greeter:50051
  load_balancer: {{policy: round_robin}}
  health_checks:
  - health_check: {{grpc: {{upstream_name: helloworld.Greeter}}}}
    interval: {interval}s
    timeout: 1s
    unhealthy_threshold: {unhealthy}
    healthy_threshold: 1
""" + REPLICAS


ISTIO = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: {listener}, name: grpc, protocol: GRPC}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{{route: [{{destination: {{host: greeter.default.svc.cluster.local, port: {{number: 50051}}}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: greeter
  namespace: default
  annotations:
    xds-server.io/health-check: |
      active:
        type: GRPC
        grpc: {{service: helloworld.Greeter}}
        interval: {interval}s
        timeout: 1s
        unhealthyThreshold: {unhealthy}
        healthyThreshold: 1
spec:
  host: greeter.default.svc.cluster.local
  trafficPolicy: {{loadBalancer: {{simple: ROUND_ROBIN}}}}
""" + REPLICAS


GATEWAY_API = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: xds-server
  listeners: [{{name: grpc, port: {listener}, protocol: HTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: greeter, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{name: greeter, port: 50051}}]}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {{name: greeter-health, namespace: default}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: GRPCRoute, name: greeter}}]
  healthCheck:
    active:
      type: GRPC
      grpc: {{service: helloworld.Greeter}}
      interval: {interval}s
      timeout: 1s
      unhealthyThreshold: {unhealthy}
      healthyThreshold: 1
""" + REPLICAS.replace("port: 50051}}", "port: 50051, appProtocol: grpc}}")


class _Greeter(helloworld_pb2_grpc.GreeterServicer):
    def __init__(self, replica: str) -> None:
        self.replica = replica

    def SayHello(self, request, context):  # noqa: N802, ANN001, ANN201
        context.send_initial_metadata((("x-replica", self.replica),))
        return helloworld_pb2.HelloReply(message=f"hello {request.name}")


class Replica:
    """A Greeter with ``grpc.health.v1.Health`` on 127.0.0.1, in this process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.health = health.HealthServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        helloworld_pb2_grpc.add_GreeterServicer_to_server(_Greeter(name), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.serving(True)

    def serving(self, ok: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        self.health.set("helloworld.Greeter", status)

    def __enter__(self) -> "Replica":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop(grace=None)


def _answers(channel: grpc.Channel, n: int) -> list[str]:
    out = []
    for _ in range(n):
        try:
            out.append(say_hello(channel, timeout=2)[1])
        except grpc.RpcError as exc:
            out.append(exc.code().name)
    return out


def _all_go_to(channel: grpc.Channel, replica: str, *, within: float) -> float:
    """Seconds until 20 calls in a row are answered by ``replica``; fails after ``within``."""
    start = time.monotonic()
    wait_until(lambda: set(_answers(channel, 20)) == {replica}, timeout=within, interval=0.1,
               what=f"every call answered by {replica}")
    return time.monotonic() - start


@pytest.fixture(params=["emissary", "istio", "envoy-gateway"])
def env(tmp_path, request):
    with contextlib.ExitStack() as stack:
        r1 = stack.enter_context(Replica("r1"))
        r2 = stack.enter_context(Replica("r2"))
        listener = free_port()
        config = tmp_path / "config"
        config.mkdir()
        text = {"emissary": CONFIG, "istio": ISTIO, "envoy-gateway": GATEWAY_API}[request.param]
        (config / "hc.yaml").write_text(text.format(listener=listener, p1=r1.port, p2=r2.port, interval=INTERVAL_S,
                                                    unhealthy=UNHEALTHY))
        cp = stack.enter_context(ControlPlane(config_dirs=[config], workdir=tmp_path)).wait_ready()
        labels = {"emissary": LABELS, "istio": {"istio": "ingressgateway"}, "envoy-gateway": {}}[request.param]
        envoy = stack.enter_context(Envoy(control_plane=cp, workdir=tmp_path, node_id="hc-1", labels=labels,
                                          gateway="gw" if request.param == "envoy-gateway" else None))
        envoy.wait_ready()
        channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{listener}"))
        wait_until(lambda: set(_answers(channel, 10)) == {"r1", "r2"}, timeout=30, what="both replicas answer")
        yield {"r1": r1, "r2": r2, "channel": channel, "envoy": envoy}


def test_not_serving_replica_is_taken_out_and_comes_back(env) -> None:
    # Envoy runs the checks (at the interval, with no traffic needed)
    wait_until(lambda: any(k.endswith("health_check.success") and v > 0 for k, v in env["envoy"].stats("cluster.").items()),
               timeout=10, what="Envoy health checks succeed")
    env["r1"].serving(False)
    took = _all_go_to(env["channel"], "r2", within=BOUND_S)
    assert took <= BOUND_S
    env["r1"].serving(True)
    wait_until(lambda: "r1" in _answers(env["channel"], 20), timeout=BOUND_S, interval=0.1,
               what="traffic back to r1 once it serves again")


def test_killed_replica_is_taken_out(env) -> None:
    env["r1"].server.stop(grace=None)
    took = _all_go_to(env["channel"], "r2", within=BOUND_S)
    assert took <= BOUND_S
