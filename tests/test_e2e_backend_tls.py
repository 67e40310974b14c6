"""Gateway API BackendTLSPolicy end to end: a real Envoy originates TLS to a gRPC backend, verifying it with
the CA from a ConfigMap and the policy's hostname; a wrong CA is refused (UNAVAILABLE)."""
from __future__ import annotations

import contextlib
import json
from concurrent import futures

import grpc
import pytest
import trustme

from protos import helloworld_pb2, helloworld_pb2_grpc
from tests.harness import ControlPlane, Envoy, free_port, wait_until

pytestmark = pytest.mark.e2e

CONFIG = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: xds-server
  listeners: [{{name: grpc, port: {port}, protocol: HTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: greeter, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{name: greeter, port: 50051}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: greeter, namespace: default}}
spec: {{ports: [{{name: grpc, port: 50051, appProtocol: grpc}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: greeter-1, namespace: default, labels: {{kubernetes.io/service-name: greeter}}}}
addressType: IPv4
ports: [{{name: grpc, port: {backend}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: greeter-tls, namespace: default}}
spec:
  targetRefs: [{{group: "", kind: Service, name: greeter}}]
  validation:
    caCertificateRefs: [{{group: "", kind: ConfigMap, name: greeter-ca}}]
    hostname: greeter.internal
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: greeter-ca, namespace: default}}
data:
  ca.crt: {ca}
"""


class _Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):  # noqa: N802, ANN001, ANN201
        context.send_initial_metadata((("x-replica", "tls-backend"),))
        return helloworld_pb2.HelloReply(message=f"hello {request.name} over TLS")


def _say_hello(channel: grpc.Channel) -> str:
    _, call = helloworld_pb2_grpc.GreeterStub(channel).SayHello.with_call(helloworld_pb2.HelloRequest(name="t"),
                                                                         timeout=2)
    return dict(call.initial_metadata()).get("x-replica", "")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("backend-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("greeter.internal")
    with contextlib.ExitStack() as stack:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        helloworld_pb2_grpc.add_GreeterServicer_to_server(_Greeter(), server)
        backend = free_port()
        server.add_secure_port(f"127.0.0.1:{backend}", grpc.ssl_server_credentials(
            [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())]))
        server.start()
        stack.callback(server.stop, None)
        port = free_port()
        config = workdir / "config"
        config.mkdir()
        path = config / "app.yaml"
        path.write_text(CONFIG.format(port=port, backend=backend, ca=json.dumps(ca.cert_pem.bytes().decode())))
        cp = stack.enter_context(ControlPlane(config_dirs=[config], workdir=workdir)).wait_ready()
        envoy = stack.enter_context(Envoy(control_plane=cp, workdir=workdir, labels={}, gateway="gw"))
        envoy.wait_ready()
        channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{port}"))
        yield {"channel": channel, "path": path, "port": port, "backend": backend}


def test_tls_to_the_backend_verified_with_the_configmap_ca(env) -> None:
    wait_until(lambda: _say_hello(env["channel"]) == "tls-backend", timeout=30, what="TLS origination")


def test_a_wrong_ca_is_refused(env) -> None:
    other = trustme.CA()
    text = env["path"].read_text()
    start = text.index("ca.crt: ") + len("ca.crt: ")
    env["path"].write_text(text[:start] + json.dumps(other.cert_pem.bytes().decode()) + "\n")

    def refused() -> bool:
        try:
            _say_hello(env["channel"])
            return False
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAVAILABLE
    wait_until(refused, timeout=30, what="the backend's certificate refused with the wrong CA")
