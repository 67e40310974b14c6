"""Authenticated xDS end to end: only the right client gets the keys, config follows verified identity.

A control plane serving xDS over TLS with client certificates required (SPIFFE identities from a test
CA), a real Envoy whose certificate says ``team-a`` and which routes TLS traffic with team-a's server
certificate, and raw grpcio ADS clients that try what an attacker would.  A second control plane checks
Kubernetes service-account tokens with TokenReview against the scripted API server.  The private keys
in the config are sentinels: their bytes must never reach an unauthorized client.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import trustme
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2

from tests.fake_apiserver import FakeApiServer, Script
from tests.grpc_calls import say_hello
from tests.harness import ROOT, Backends, ControlPlane, Envoy, _env, free_port, http_get, wait_until
from tests.pki import CA

pytestmark = pytest.mark.e2e

SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
XDS_NAME = "xds.test"

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: team-a}}
spec:
  hosts: [greeter.team-a.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {backend}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: team-a}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: https, protocol: HTTPS}}
    hosts: ["*"]
    tls: {{mode: SIMPLE, credentialName: edge-cert}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: greeter, namespace: team-a}}
spec:
  hosts: ["*"]
  gateways: [edge]
  http: [{{route: [{{destination: {{host: greeter.team-a.svc.cluster.local, port: {{number: 50051}}}}}}]}}]
"""


def tls_secret(name: str, ns: str, cert: bytes, key: bytes) -> str:
    def block(b: bytes) -> str:
        return "\n".join("    " + line for line in b.decode().strip().splitlines())
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\ntype: kubernetes.io/tls\n"
            f"stringData:\n  tls.crt: |\n{block(cert)}\n  tls.key: |\n{block(key)}\n")


def node(namespace: str | None, *, labels: dict[str, str] | None = None, sa: str | None = None) -> base_pb2.Node:
    meta = struct_pb2.Struct()
    if namespace is not None:
        meta.update({"NAMESPACE": namespace})
    if sa is not None:
        meta.update({"SERVICE_ACCOUNT": sa})
    meta.update({"labels": labels if labels is not None else {"istio": "ingressgateway"}})
    return base_pb2.Node(id="attacker", cluster="x", metadata=meta)


def fetch(channel: grpc.Channel, n: base_pb2.Node, *, metadata=(), types=(CLUSTER, SECRET),
          timeout: float = 5.0) -> tuple[list[bytes], grpc.RpcError | None]:
    """Ask for every type by wildcard (and team-a's certificate by name); the raw responses, and the
    error that ended the stream (None if it stayed open)."""
    def requests():
        for t in types:
            names = ["kubernetes://edge-cert"] if t == SECRET else []
            yield discovery_pb2.DiscoveryRequest(node=n, type_url=t, resource_names=names)
    got: list[bytes] = []
    call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
        requests(), metadata=metadata, timeout=timeout)
    try:
        for resp in call:
            got.append(resp.SerializeToString())
            if len(got) >= len(types):
                break
    except grpc.RpcError as exc:
        return got, exc
    finally:
        call.cancel()
    return got, None


class Pki:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "pki"
        self.dir.mkdir()
        self.ca = CA()
        self.ca_path = self.dir / "ca.crt"
        self.ca_path.write_bytes(self.ca.cert_pem)
        self.server = self.ca.issue(common_name=XDS_NAME, dns=(XDS_NAME,), ips=("127.0.0.1",)).write(self.dir, "xds")
        self.a = self.ca.issue(common_name="gateway-a", uris=("spiffe://cluster.local/ns/team-a/sa/gateway",))
        self.b = self.ca.issue(common_name="gateway-b", uris=("spiffe://cluster.local/ns/team-b/sa/gateway",))
        self.a_paths = self.a.write(self.dir, "client-a")
        self.b.write(self.dir, "client-b")
        # the edge certificate Envoys terminate TLS with, and its key: the sentinel
        self.edge_ca = trustme.CA()
        self.edge = self.edge_ca.issue_cert("grpc.example.com")
        self.edge_key = self.edge.private_key_pem.bytes()
        other = trustme.CA().issue_cert("b.example.com")
        self.other_key = other.private_key_pem.bytes()
        self.other = other

    def channel(self, address: str, client=None) -> grpc.Channel:  # noqa: ANN001
        creds = grpc.ssl_channel_credentials(root_certificates=self.ca.cert_pem,
                                             private_key=client.key if client else None,
                                             certificate_chain=client.cert if client else None)
        return grpc.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", XDS_NAME)])


def _key_body(pem: bytes) -> bytes:
    """The base64 body of a PEM key (what would leak, however it is framed)."""
    return b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))


def leaked(responses: list[bytes], pki: Pki) -> bool:
    keys = [_key_body(pki.edge_key)[:64], _key_body(pki.other_key)[:64]]
    return any(k in r or k in r.replace(b"\n", b"") for r in responses for k in keys)


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("xds-mtls")
    pki = Pki(workdir)
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(Backends(replica="a", workdir=workdir, route_guide=False)).wait_ready()
        port = free_port()
        config = workdir / "config"
        config.mkdir()
        (config / "app.yaml").write_text(CONFIG.format(backend=backend.greeter_port, port=port))
        (config / "secrets.yaml").write_text(
            tls_secret("edge-cert", "team-a", pki.edge.cert_chain_pems[0].bytes(), pki.edge_key) + "---\n"
            + tls_secret("edge-cert", "team-b", pki.other.cert_chain_pems[0].bytes(), pki.other_key))
        cert, key = pki.server
        cp = stack.enter_context(ControlPlane(config_dirs=[config], workdir=workdir, extra_args=[
            "--xds-tls-cert", str(cert), "--xds-tls-key", str(key), "--xds-client-ca", str(pki.ca_path)]))
        cp.wait_ready()
        yield {"pki": pki, "cp": cp, "port": port, "workdir": workdir, "stack": stack}


def test_envoy_with_team_a_certificate_gets_its_certificate_and_routes_tls(mtls) -> None:
    pki, cp = mtls["pki"], mtls["cp"]
    a_cert, a_key = pki.a_paths
    envoy = mtls["stack"].enter_context(Envoy(control_plane=cp, workdir=mtls["workdir"], node_id="gw-a",
                                              namespace="team-a", bootstrap_args=[
        "--xds-ca", str(pki.ca_path), "--xds-client-cert", str(a_cert), "--xds-client-key", str(a_key),
        "--xds-server-name", XDS_NAME]))
    envoy.wait_ready()
    creds = grpc.ssl_channel_credentials(root_certificates=pki.edge_ca.cert_pem.bytes())
    with grpc.secure_channel(f"127.0.0.1:{mtls['port']}", creds,
                             options=[("grpc.ssl_target_name_override", "grpc.example.com")]) as ch:
        assert wait_until(lambda: say_hello(ch, timeout=2)[1] == "a", timeout=30, what="TLS through the gateway")
    clients = cp.debug("clients")
    identities = {c.get("identity") for c in (clients if isinstance(clients, list) else clients.get("clients", []))}
    assert any("team-a/gateway" in (i or "") for i in identities)


def test_the_verified_client_gets_its_own_key_but_not_another_namespaces(mtls) -> None:
    """Positive control for the sentinel check: team-a's key reaches team-a; team-b's never does."""
    pki = mtls["pki"]
    with pki.channel(mtls["cp"].xds_address, pki.a) as ch:
        got, err = fetch(ch, node("team-a"))
    assert err is None and got
    assert _key_body(pki.edge_key)[:64] in b"".join(got).replace(b"\n", b"")
    assert _key_body(pki.other_key)[:64] not in b"".join(got).replace(b"\n", b"")


def test_team_b_certificate_claiming_team_a_is_permission_denied(mtls) -> None:
    pki = mtls["pki"]
    with pki.channel(mtls["cp"].xds_address, pki.b) as ch:
        got, err = fetch(ch, node("team-a"))
    assert err is not None and err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "team-a" in err.details() and "team-b" in err.details()
    assert not leaked(got, pki)


def test_wrong_service_account_claim_is_permission_denied(mtls) -> None:
    pki = mtls["pki"]
    with pki.channel(mtls["cp"].xds_address, pki.a) as ch:
        got, err = fetch(ch, node("team-a", sa="admin"))
    assert err is not None and err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not leaked(got, pki)


def test_a_client_without_a_certificate_is_refused_at_the_handshake(mtls) -> None:
    pki = mtls["pki"]
    with pki.channel(mtls["cp"].xds_address) as ch:
        got, err = fetch(ch, node("team-a"), timeout=3)
    assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
    assert got == []
    with grpc.insecure_channel(mtls["cp"].xds_address) as ch:  # plaintext is refused too
        got, err = fetch(ch, node("team-a"), timeout=3)
    assert err is not None and got == []


def test_proxyless_grpcio_over_mtls_with_bootstrap_grpc(mtls) -> None:
    pki, cp = mtls["pki"], mtls["cp"]
    a_cert, a_key = pki.a_paths
    bootstrap = mtls["workdir"] / "grpc-bootstrap.json"
    subprocess.run([sys.executable, "-m", "xds_server", "bootstrap", "grpc", "--node-id", "px-a", "--namespace",
                    "team-a", "--xds-address", cp.xds_address, "--xds-ca", str(pki.ca_path), "--xds-client-cert",
                    str(a_cert), "--xds-client-key", str(a_key), "-o", str(bootstrap)], check=True, env=_env(), cwd=ROOT)
    doc = json.loads(bootstrap.read_text())
    assert doc["xds_servers"][0]["channel_creds"][0]["type"] == "tls"
    out = subprocess.run([sys.executable, "-m", "tests.proxyless_apps", "client", "--target",
                          "xds:///greeter.team-a.svc.cluster.local:50051", "--calls", "3", "--timeout", "10"],
                         cwd=ROOT, env=dict(_env(), GRPC_XDS_BOOTSTRAP=str(bootstrap)), capture_output=True, text=True,
                         timeout=60)
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines and all(line.get("replica") == "a" for line in lines), (out.stdout, out.stderr[-2000:])


# ---------------------------------------------------------------------------------------------- tokens

TOKENS = {
    "tok-a": {"authenticated": True, "user": {"username": "system:serviceaccount:team-a:gateway"}},
    "tok-b": {"authenticated": True, "user": {"username": "system:serviceaccount:team-b:gateway"}},
    "tok-expired": {"authenticated": False, "error": "token has expired"},
    "tok-other-audience": {"authenticated": True, "audiences": ["kubernetes.default.svc"],
                           "user": {"username": "system:serviceaccount:team-a:gateway"}},
}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("xds-token")
    pki = Pki(workdir)
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(FakeApiServer(groups={}, scripts={"leases": Script(lists=[("1", [])])},
                                                token_reviews=TOKENS))
        kubeconfig = api.kubeconfig(workdir / "kubeconfig")
        config = workdir / "config"
        config.mkdir()
        (config / "app.yaml").write_text(CONFIG.format(backend=free_port(), port=free_port()))
        (config / "secrets.yaml").write_text(
            tls_secret("edge-cert", "team-a", pki.edge.cert_chain_pems[0].bytes(), pki.edge_key) + "---\n"
            + tls_secret("edge-cert", "team-b", pki.other.cert_chain_pems[0].bytes(), pki.other_key))
        cert, key = pki.server
        cp = stack.enter_context(ControlPlane(config_dirs=[config], workdir=workdir, extra_args=[
            "--xds-tls-cert", str(cert), "--xds-tls-key", str(key), "--xds-auth", "kubernetes",
            "--kubeconfig", str(kubeconfig)]))
        cp.wait_ready()
        yield {"pki": pki, "cp": cp, "api": api}


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def test_a_valid_token_gets_its_namespace_config(tokens) -> None:
    pki = tokens["pki"]
    with pki.channel(tokens["cp"].xds_address) as ch:
        got, err = fetch(ch, node("team-a"), metadata=_bearer("tok-a"))
    assert err is None and got
    assert _key_body(pki.edge_key)[:64] in b"".join(got).replace(b"\n", b"")
    review = tokens["api"].reviews[-1]
    assert review["spec"]["audiences"] == ["xds-server"] and review["spec"]["token"] == "tok-a"


@pytest.mark.parametrize("token, code", [("tok-expired", grpc.StatusCode.UNAUTHENTICATED),
                                         ("tok-other-audience", grpc.StatusCode.UNAUTHENTICATED),
                                         ("unknown", grpc.StatusCode.UNAUTHENTICATED),
                                         ("tok-b", grpc.StatusCode.PERMISSION_DENIED)])
def test_bad_tokens_and_claims_are_refused(tokens, token: str, code: grpc.StatusCode) -> None:
    pki = tokens["pki"]
    with pki.channel(tokens["cp"].xds_address) as ch:
        got, err = fetch(ch, node("team-a"), metadata=_bearer(token))
    assert err is not None and err.code() == code, err
    assert not leaked(got, pki)


def test_no_token_is_unauthenticated(tokens) -> None:
    pki = tokens["pki"]
    with pki.channel(tokens["cp"].xds_address) as ch:
        got, err = fetch(ch, node("team-a"))
    assert err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not leaked(got, pki)


# ---------------------------------------------------------------------------------------------- defaults

def test_serve_on_a_public_address_without_authentication_refuses_unless_insecure(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "app.yaml").write_text(CONFIG.format(backend=free_port(), port=free_port()))
    port, admin = free_port(), free_port()
    args = [sys.executable, "-m", "xds_server", "serve", "--config", str(config), "--xds-address", f"0.0.0.0:{port}",
            "--admin-address", f"127.0.0.1:{admin}"]
    refused = subprocess.run(args, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=30)
    assert refused.returncode == 1
    assert "refusing to serve xDS on 0.0.0.0" in refused.stderr and "--insecure-xds" in refused.stderr
    log = tmp_path / "insecure.log"
    proc = subprocess.Popen([*args, "--insecure-xds"], stdout=log.open("w"), stderr=subprocess.STDOUT, env=_env(),
                            cwd=ROOT)
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{admin}/readyz")[0] == 200, timeout=20, what="insecure serve")
        assert "--insecure-xds" in log.read_text() and "no authentication" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
