"""Gateway hosts, shadowed routes, Secret namespaces and ``bind``, end to end.

One control plane, one real Envoy (bootstrapped in namespace ``istio-system``,
while every Gateway is in ``default``) and two grpcio backend replicas for the
whole module.  Assertions are on calls through Envoy and on which replica
answered (``x-replica``), on what Envoy reports it bound (admin
``/listeners?format=json``), and on the control plane's diagnostics.
"""
from __future__ import annotations

import contextlib
import http.client
import json
from pathlib import Path

import grpc
import pytest
import trustme

from demo.run import listening_on
from tests.grpc_calls import call_unknown, say_hello
from tests.harness import Backends, ControlPlane, Envoy, free_port, http_get, wait_until

pytestmark = pytest.mark.e2e

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {a}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {b}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: greeter, namespace: default}}
spec:
  host: greeter
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: two-hosts, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {hosts_port}, name: grpc, protocol: GRPC}}
    hosts: [a.example.com, b.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: every-host, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [two-hosts]
  http: [{{route: [{{destination: {{host: greeter, subset: v1}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: misc, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {misc_port}, name: grpc-misc, protocol: GRPC}}
    hosts: ["*"]
---
# grpc-resilience and grpc-routing for one host: merged in name order, resilience's catch-all comes first
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: grpc-resilience, namespace: default}}
spec:
  hosts: [shadow.example.com]
  gateways: [misc]
  http:
  - retries: {{attempts: 3, retryOn: unavailable}}
    route: [{{destination: {{host: greeter, subset: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: grpc-routing, namespace: default}}
spec:
  hosts: [shadow.example.com]
  gateways: [misc]
  http:
  - match: [{{uri: {{prefix: /helloworld.Greeter/}}}}]
    route: [{{destination: {{host: greeter, subset: v1}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: default}}
spec:
  hosts: [web.example.com]
  gateways: [misc]
  http:
  - match: [{{headers: {{content-type: {{prefix: application/grpc-web}}}}}}]
    corsPolicy:
      allowOrigins: [{{exact: "http://app.example.test"}}]
      allowMethods: [POST, OPTIONS]
      allowHeaders: [content-type, x-grpc-web, x-user-agent, grpc-timeout]
      exposeHeaders: [grpc-status, grpc-message, grpc-status-details-bin]
    route: [{{destination: {{host: greeter, subset: v1}}}}]
  - route: [{{destination: {{host: greeter, subset: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: loopback-1, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {bind_port}, name: grpc-lo1, protocol: GRPC}}
    bind: 127.0.0.1
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: loopback-2, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {bind_port}, name: grpc-lo2, protocol: GRPC}}
    bind: 127.0.0.2
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bind-a, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [loopback-1]
  http: [{{route: [{{destination: {{host: greeter, subset: v1}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bind-b, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [loopback-2]
  http: [{{route: [{{destination: {{host: greeter, subset: v2}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: secure, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {tls_port}, name: https, protocol: HTTPS}}
    hosts: [secure.example.com]
    tls: {{mode: SIMPLE, credentialName: edge-cert}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [secure.example.com]
  gateways: [secure]
  http: [{{route: [{{destination: {{host: greeter, subset: v2}}}}]}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: edge-cert, namespace: istio-system}}
type: kubernetes.io/tls
stringData:
  tls.crt: |
{cert}
  tls.key: |
{key}
"""


def _block(pem: bytes) -> str:
    return "\n".join("    " + line for line in pem.decode().strip().splitlines())


class Env:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "config"
        self.config.mkdir()
        self.hosts_port, self.misc_port, self.bind_port, self.tls_port = (free_port() for _ in range(4))
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("secure.example.com")
        self.stack = contextlib.ExitStack()

    def start(self) -> "Env":
        try:
            self.a = self.stack.enter_context(Backends(replica="a", workdir=self.workdir, route_guide=False))
            self.b = self.stack.enter_context(Backends(replica="b", workdir=self.workdir, route_guide=False))
            self.a.wait_ready()
            self.b.wait_ready()
            (self.config / "config.yaml").write_text(CONFIG.format(
                a=self.a.greeter_port, b=self.b.greeter_port, hosts_port=self.hosts_port, misc_port=self.misc_port,
                bind_port=self.bind_port, tls_port=self.tls_port,
                cert=_block(b"".join(p.bytes() for p in self.cert.cert_chain_pems)),
                key=_block(self.cert.private_key_pem.bytes())))
            self.cp = self.stack.enter_context(ControlPlane(config_dirs=[self.config], workdir=self.workdir)).wait_ready()
            self.envoy = self.stack.enter_context(Envoy(control_plane=self.cp, workdir=self.workdir,
                                                        namespace="istio-system"))
            self.envoy.wait_ready()
            wait_until(lambda: self.call(self.hosts_port, authority="a.example.com") == "a", timeout=20,
                       what="a call through Envoy")
            wait_until(lambda: any(name.endswith(f"_{self.bind_port}") for name in self.listeners()), timeout=20,
                       what="the listeners on the bind port")
        except BaseException:
            self.stack.close()
            raise
        return self

    def channel(self, port: int, *, authority: str | None = None, address: str = "127.0.0.1") -> grpc.Channel:
        options = [("grpc.use_local_subchannel_pool", 1)]
        if authority:
            options.append(("grpc.default_authority", authority))
        return grpc.insecure_channel(f"{address}:{port}", options=options)

    def call(self, port: int, *, authority: str | None = None, address: str = "127.0.0.1") -> str:
        with self.channel(port, authority=authority, address=address) as ch:
            return say_hello(ch, timeout=3)[1]

    def diagnostics(self) -> list[dict]:
        return self.cp.debug("diagnostics")["diagnostics"]

    def listeners(self) -> dict[str, str]:
        """Envoy's own view: listener name -> the address it bound."""
        body = json.loads(http_get(f"{self.envoy.admin_url}/listeners?format=json")[1])
        return {s["name"]: s["local_address"]["socket_address"]["address"] for s in body["listener_statuses"]}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    e = Env(tmp_path_factory.mktemp("gateway-hosts")).start()
    try:
        yield e
    finally:
        e.stack.close()


# --------------------------------------------------------------------------- 1. every server host


@pytest.mark.parametrize("host", ["a.example.com", "b.example.com"])
@pytest.mark.parametrize("with_port", [False, True], ids=["no-port", "with-port"])
def test_star_virtual_service_serves_every_server_host(env: Env, host: str, with_port: bool) -> None:
    authority = f"{host}:{env.hosts_port}" if with_port else host
    assert env.call(env.hosts_port, authority=authority) == "a"


def test_a_host_the_server_does_not_list_is_still_refused(env: Env) -> None:
    with env.channel(env.hosts_port, authority="c.example.com") as ch:
        assert call_unknown(ch) == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as exc:
            say_hello(ch)
        assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --------------------------------------------------------------------------- 2. shadowed routes


def test_catch_all_shadowing_is_real_and_reported_with_both_objects(env: Env) -> None:
    # grpc-routing sends Greeter to v1 (a), but grpc-resilience's catch-all is merged first: b answers
    assert env.call(env.misc_port, authority="shadow.example.com") == "b"
    [d] = [d for d in env.diagnostics() if d["code"] == "shadowed-route"
           and d["object"] == "VirtualService/default/grpc-routing"]
    assert d["severity"] == "warning" and d["field"] == "spec.http[0]" and d["file"].endswith("config.yaml")
    assert "VirtualService/default/grpc-resilience" in d["message"]
    assert "'default/grpc-routing/http[0]'" in d["message"] and "shadow.example.com" in d["message"]


def test_grpc_web_cors_route_loses_preflights_to_the_catch_all(env: Env) -> None:
    [d] = [d for d in env.diagnostics() if d["code"] == "grpc-web-preflight-shadowed"]
    assert d["object"] == "VirtualService/default/web" and d["field"] == "spec.http[0]"
    assert "'default/web/http[1]'" in d["message"]
    # and it is true: the preflight goes to the catch-all, whose route has no CORS policy
    conn = http.client.HTTPConnection("127.0.0.1", env.misc_port, timeout=5)
    try:
        conn.request("OPTIONS", "/helloworld.Greeter/SayHello", headers={
            "Host": "web.example.com", "Origin": "http://app.example.test",
            "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-grpc-web"})
        resp = conn.getresponse()
        resp.read()
        assert resp.getheader("access-control-allow-origin") is None, resp.getheaders()
    finally:
        conn.close()


# --------------------------------------------------------------------------- 3. Secret namespace


def test_secret_in_the_envoys_namespace_serves_and_validate_says_where_envoy_must_run(env: Env) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=env.ca.cert_pem.bytes())
    with grpc.secure_channel(f"127.0.0.1:{env.tls_port}", creds, options=[
            ("grpc.ssl_target_name_override", "secure.example.com"),
            ("grpc.default_authority", "secure.example.com")]) as ch:
        assert say_hello(ch)[1] == "b"
    diags = env.diagnostics()
    assert not [d for d in diags if d["code"] == "unknown-secret"], diags
    [info] = [d for d in diags if d["code"] == "secret-namespace"]
    assert info["severity"] == "info" and info["object"] == "Gateway/default/secure"
    assert "`xds-server bootstrap envoy --namespace istio-system`" in info["message"]


# --------------------------------------------------------------------------- 4. bind


def test_bind_addresses_are_separate_listeners_on_one_port(env: Env) -> None:
    assert env.call(env.bind_port, address="127.0.0.1") == "a"
    assert env.call(env.bind_port, address="127.0.0.2") == "b"
    bound = env.listeners()
    assert bound[f"127.0.0.1_{env.bind_port}"] == "127.0.0.1"
    assert bound[f"127.0.0.2_{env.bind_port}"] == "127.0.0.2"
    assert bound[f"0.0.0.0_{env.hosts_port}"] == "0.0.0.0"  # the default keeps Istio's name
    assert f"127.0.0.1:{env.bind_port} (127.0.0.1_{env.bind_port})" in listening_on(env.envoy.admin_url)


def test_envoy_accepted_everything(env: Env) -> None:
    assert env.cp.debug("nacks")["nacks"] == []
