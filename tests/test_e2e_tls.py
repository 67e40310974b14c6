"""TLS and gRPC-Web end to end with a real Envoy.

Certificates come from ``trustme``.  The gateway's server key is the
*sentinel*: after every scenario, no log, debug endpoint, ``render`` output or
NACK record may contain any line of it.
"""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import trustme
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from protos import helloworld_pb2
from tests.grpc_calls import list_features, say_hello
from tests.harness import ROOT, Backends, ControlPlane, Envoy, _env, free_port, http_get, wait_until
from translators import type_urls

pytestmark = pytest.mark.e2e

ALLOWED_ORIGIN = "http://app.example.test"


def secret_yaml(name: str, cert: trustme.LeafCert, ca: trustme.CA) -> str:
    def block(pem: bytes) -> str:
        return "\n".join("    " + line for line in pem.decode().strip().splitlines())
    chain = b"".join(b.bytes() for b in cert.cert_chain_pems)
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\n"
            f"stringData:\n  tls.crt: |\n{block(chain)}\n  tls.key: |\n{block(cert.private_key_pem.bytes())}\n"
            f"  ca.crt: |\n{block(ca.cert_pem.bytes())}\n")


CONFIG = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {https}, name: https, protocol: HTTPS}}
    hosts: [grpc.example.com]
    tls: {{mode: SIMPLE, credentialName: gateway-cert, minProtocolVersion: TLSV1_2}}
  - port: {{number: {https}, name: https-mtls, protocol: HTTPS}}
    hosts: [mtls.example.com]
    tls: {{mode: MUTUAL, credentialName: gateway-cert}}
  - port: {{number: {web}, name: grpc-web, protocol: GRPC-WEB}}
    hosts: ["*"]
  - port: {{number: {plain}, name: grpc, protocol: GRPC}}
    hosts: ["*"]
  - port: {{number: {redirect}, name: http-redirect, protocol: HTTP}}
    hosts: ["*"]
    tls: {{httpsRedirect: true}}
  - port: {{number: {passthrough}, name: tls-passthrough, protocol: TLS}}
    hosts: [greeter.internal]
    tls: {{mode: PASSTHROUGH}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: passthrough, namespace: default}}
spec:
  hosts: [greeter.internal]
  gateways: [edge]
  tls:
  - match: [{{sniHosts: [greeter.internal]}}]
    route: [{{destination: {{host: tls-direct, port: {{number: 50051}}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: tls-direct, namespace: default}}
spec:
  hosts: [tls-direct.default.svc.cluster.local]
  ports: [{{number: 50051, name: tls, protocol: TLS}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {secure}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}, {{number: 50052, name: grpc-rg, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {greeter}, grpc-rg: {route_guide}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure-greeter, namespace: default}}
spec:
  hosts: [secure-greeter.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {secure}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure-greeter-sds, namespace: default}}
spec:
  hosts: [secure-greeter-sds.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {secure}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: secure-greeter-sds, namespace: default}}
spec:
  host: secure-greeter-sds
  trafficPolicy:
    tls: {{mode: SIMPLE, credentialName: backend-ca, sni: greeter.internal}}
---
apiVersion: v1
kind: Secret
metadata: {{name: backend-ca, namespace: default}}
type: Opaque
stringData:
  ca.crt: |
{ca_block}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: secure-greeter, namespace: default}}
spec:
  host: secure-greeter
  trafficPolicy:
    tls: {{mode: SIMPLE, caCertificates: {ca_file}, sni: greeter.internal}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: routes, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [edge]
  http:
  - match: [{{uri: {{prefix: /helloworld.Greeter/}}, port: {plain}, headers: {{x-sds: {{exact: "1"}}}}}}]
    route: [{{destination: {{host: secure-greeter-sds}}}}]
  - match: [{{uri: {{prefix: /helloworld.Greeter/}}, port: {plain}}}]
    route: [{{destination: {{host: secure-greeter}}}}]
  - match: [{{uri: {{prefix: /helloworld.Greeter/}}}}]
    corsPolicy: &cors
      allowOrigins: [{{exact: "{origin}"}}, {{exact: "http://127.0.0.1:{page_port}"}}]
      allowMethods: [POST, OPTIONS]
      allowHeaders: [content-type, x-grpc-web, x-user-agent, grpc-timeout, x-stream-count]
      exposeHeaders: [grpc-status, grpc-message, grpc-status-details-bin, x-replica]
      maxAge: 1h
    route: [{{destination: {{host: greeter, port: {{number: 50051}}}}}}]
  - match: [{{uri: {{prefix: /routeguide.RouteGuide/}}}}]
    corsPolicy: *cors
    route: [{{destination: {{host: greeter, port: {{number: 50052}}}}}}]
"""


class TlsEnv:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "config"
        self.config.mkdir()
        self.stack = contextlib.ExitStack()
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("grpc.example.com", "mtls.example.com")
        self.client_cert = self.ca.issue_cert("client.example.com")
        self.ca_file = workdir / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        backend = self.ca.issue_cert("greeter.internal")
        self.backend_cert, self.backend_key = workdir / "backend.pem", workdir / "backend.key"
        self.backend_cert.write_bytes(b"".join(b.bytes() for b in backend.cert_chain_pems))
        backend.private_key_pem.write_to_path(str(self.backend_key))
        self.https, self.web, self.plain = free_port(), free_port(), free_port()
        self.page_port = free_port()  # the browser page's (allowed) origin
        self.passthrough = free_port()
        self.redirect = free_port()

    def start(self) -> "TlsEnv":
        self.plain_backend = self.stack.enter_context(Backends(replica="plain", workdir=self.workdir)).wait_ready()
        self.secure_backend = self.stack.enter_context(Backends(
            replica="tls-backend", workdir=self.workdir, route_guide=False,
            tls=(self.backend_cert, self.backend_key))).wait_ready()
        self.write_secret(self.cert)
        (self.config / "config.yaml").write_text(CONFIG.format(
            https=self.https, web=self.web, plain=self.plain, greeter=self.plain_backend.greeter_port,
            route_guide=self.plain_backend.route_guide_port, secure=self.secure_backend.greeter_port,
            ca_file=self.ca_file, origin=ALLOWED_ORIGIN, page_port=self.page_port, passthrough=self.passthrough,
            redirect=self.redirect,
            ca_block="\n".join("    " + l for l in self.ca.cert_pem.bytes().decode().strip().splitlines())))
        self.cp = self.stack.enter_context(ControlPlane(config_dirs=[self.config], workdir=self.workdir)).wait_ready()
        self.envoy = self.stack.enter_context(Envoy(control_plane=self.cp, workdir=self.workdir))
        self.envoy.wait_ready()
        wait_until(lambda: self.tls_channel_call(), timeout=30, what="TLS routing")
        return self

    def write_secret(self, cert: trustme.LeafCert) -> None:
        tmp = self.config / "secret.tmp"
        tmp.write_text(secret_yaml("gateway-cert", cert, self.ca))
        tmp.rename(self.config / "secret.yaml")

    def channel(self, *, host: str = "grpc.example.com", client_cert: bool = False) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.ca.cert_pem.bytes(),
            private_key=self.client_cert.private_key_pem.bytes() if client_cert else None,
            certificate_chain=b"".join(b.bytes() for b in self.client_cert.cert_chain_pems) if client_cert else None)
        return grpc.secure_channel(f"127.0.0.1:{self.https}", creds, options=[
            ("grpc.ssl_target_name_override", host), ("grpc.default_authority", host),
            ("grpc.use_local_subchannel_pool", 1)])

    def tls_channel_call(self) -> bool:
        with self.channel() as ch:
            return say_hello(ch, timeout=2)[1] == "plain"

    def presented_serial(self, *, host: str = "grpc.example.com") -> int:
        ctx = ssl.create_default_context(cadata=self.ca.cert_pem.bytes().decode())
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", self.https), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
        from cryptography import x509
        return x509.load_der_x509_certificate(der).serial_number

    def sentinel_lines(self) -> list[str]:
        pem = self.cert.private_key_pem.bytes().decode()
        return [l for l in pem.splitlines() if l and "-----" not in l]


@pytest.fixture(scope="module")
def tls_env(tmp_path_factory: pytest.TempPathFactory):
    env = TlsEnv(tmp_path_factory.mktemp("tls"))
    try:
        yield env.start()
    finally:
        env.stack.close()


def test_tls_grpc_call_negotiates_alpn_h2(tls_env: TlsEnv) -> None:
    with tls_env.channel() as ch:
        assert say_hello(ch, name="tls") == ("Hello tls from plain", "plain")
    ctx = ssl.create_default_context(cadata=tls_env.ca.cert_pem.bytes().decode())
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", tls_env.https), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="grpc.example.com") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_mutual_tls_requires_a_client_certificate(tls_env: TlsEnv) -> None:
    with tls_env.channel(host="mtls.example.com") as ch:
        with pytest.raises(grpc.RpcError) as exc:
            say_hello(ch, timeout=5)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    with tls_env.channel(host="mtls.example.com", client_cert=True) as ch:
        assert say_hello(ch)[1] == "plain"


def test_tls_origination_to_a_tls_backend(tls_env: TlsEnv) -> None:
    """Plaintext h2c to the gateway, TLS (SNI greeter.internal, ALPN h2, CA-verified) to the backend."""
    with grpc.insecure_channel(f"127.0.0.1:{tls_env.plain}") as ch:
        assert say_hello(ch, name="origin") == ("Hello origin from tls-backend", "tls-backend")


def test_tls_origination_with_a_credential_from_sds(tls_env: TlsEnv) -> None:
    """DestinationRule tls.credentialName: the CA reaches Envoy as SDS ``kubernetes://backend-ca-cacert``."""
    with grpc.insecure_channel(f"127.0.0.1:{tls_env.plain}") as ch:
        assert say_hello(ch, name="sds", metadata=[("x-sds", "1")]) == ("Hello sds from tls-backend", "tls-backend")
    dump = json.dumps(tls_env.envoy.config_dump())
    assert "kubernetes://backend-ca-cacert" in dump


def test_tls_passthrough_routes_on_sni_to_the_backend(tls_env: TlsEnv) -> None:
    """Envoy does not terminate: the client's TLS session is with the backend (its certificate, its ALPN)."""
    creds = grpc.ssl_channel_credentials(root_certificates=tls_env.ca.cert_pem.bytes())
    with grpc.secure_channel(f"127.0.0.1:{tls_env.passthrough}", creds, options=[
            ("grpc.ssl_target_name_override", "greeter.internal")]) as ch:
        assert say_hello(ch, name="sni") == ("Hello sni from tls-backend", "tls-backend")
    ctx = ssl.create_default_context(cadata=tls_env.ca.cert_pem.bytes().decode())
    with socket.create_connection(("127.0.0.1", tls_env.passthrough), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="greeter.internal") as tls:
            assert "greeter.internal" in str(tls.getpeercert()["subjectAltName"])


def test_https_redirect(tls_env: TlsEnv) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", tls_env.redirect, timeout=10)
    conn.request("GET", "/helloworld.Greeter/SayHello", headers={"host": "grpc.example.com"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 301 and resp.getheader("location").startswith("https://grpc.example.com/")


def _grpc_web_frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def test_raw_grpc_web_post_returns_a_trailer_frame(tls_env: TlsEnv) -> None:
    body = _grpc_web_frame(helloworld_pb2.HelloRequest(name="web").SerializeToString())
    conn = http.client.HTTPConnection("127.0.0.1", tls_env.web, timeout=10)
    conn.request("POST", "/helloworld.Greeter/SayHello", body=body, headers={
        "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "origin": ALLOWED_ORIGIN})
    resp = conn.getresponse()
    data = resp.read()
    assert resp.status == 200 and resp.getheader("content-type").startswith("application/grpc-web")
    assert resp.getheader("access-control-allow-origin") == ALLOWED_ORIGIN
    frames, i = [], 0
    while i < len(data):
        flag, length = data[i], struct.unpack(">I", data[i + 1:i + 5])[0]
        frames.append((flag, data[i + 5:i + 5 + length]))
        i += 5 + length
    assert [flag for flag, _ in frames] == [0x00, 0x80], frames  # one message, then the trailer frame
    message, trailers = frames[0][1], frames[1][1]
    assert helloworld_pb2.HelloReply.FromString(message).message == "Hello web from plain"
    assert b"grpc-status:0" in trailers.replace(b" ", b"")


@pytest.mark.parametrize("origin,allowed", [(ALLOWED_ORIGIN, True), ("http://evil.example.test", False)])
def test_cors_preflight(tls_env: TlsEnv, origin: str, allowed: bool) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", tls_env.web, timeout=10)
    conn.request("OPTIONS", "/helloworld.Greeter/SayHello", headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web,x-user-agent"})
    resp = conn.getresponse()
    resp.read()
    if allowed:
        assert resp.status == 200
        assert resp.getheader("access-control-allow-origin") == origin
        assert "x-grpc-web" in (resp.getheader("access-control-allow-headers") or "")
        assert resp.getheader("access-control-max-age") == "3600"
    else:
        assert resp.getheader("access-control-allow-origin") is None


def test_secret_rotation_without_restart_or_dropped_stream(tls_env: TlsEnv) -> None:
    old_serial = tls_env.presented_serial()
    results: dict = {}
    with tls_env.channel() as ch:
        import threading

        def stream() -> None:
            results["features"], _ = list_features(ch, metadata=[("x-stream-interval-ms", "200"),
                                                                 ("x-stream-count", "25")], timeout=30)
        t = threading.Thread(target=stream)
        t.start()
        time.sleep(1.0)
        new_cert = tls_env.ca.issue_cert("grpc.example.com", "mtls.example.com")
        tls_env.cert = new_cert  # the sentinel follows the live key
        tls_env.write_secret(new_cert)
        wait_until(lambda: tls_env.presented_serial() != old_serial, timeout=10, what="the new certificate")
        t.join(timeout=30)
    assert len(results["features"]) == 25, "the in-flight stream must survive the rotation"
    assert tls_env.envoy.proc.poll() is None


def test_private_key_never_leaks(tls_env: TlsEnv) -> None:
    sentinel = tls_env.sentinel_lines()
    # a NACK that echoes key material back, as Envoy can do
    async def nack() -> None:
        async with grpc.aio.insecure_channel(tls_env.cp.xds_address) as ch:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(ch)
            call = stub.StreamAggregatedResources()
            req = discovery_pb2.DiscoveryRequest(type_url=type_urls.CLUSTER)
            req.node.id = "nack-probe"
            await call.write(req)
            first = await asyncio.wait_for(call.read(), 10)
            pem = tls_env.cert.private_key_pem.bytes().decode()
            await call.write(discovery_pb2.DiscoveryRequest(
                type_url=type_urls.CLUSTER, response_nonce=first.nonce, version_info="",
                error_detail=status_pb2.Status(code=3, message=f"bad private key: {pem}")))
            await asyncio.sleep(0.5)
            call.cancel()
    asyncio.run(nack())
    nacks = tls_env.cp.debug("nacks")["nacks"]
    assert any(n["node"] == "nack-probe" for n in nacks)
    surfaces = {"xds-server log": tls_env.cp.log(), "nacks": json.dumps(nacks)}
    for path in ("diagnostics", "clients", "snapshots"):
        surfaces[path] = json.dumps(tls_env.cp.debug(path))
    render = subprocess.run([sys.executable, "-m", "xds_server", "render", str(tls_env.config), "--node-id", "r",
                             "--label", "istio=ingressgateway"], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert render.returncode == 0 and "kubernetes://gateway-cert" in render.stdout
    surfaces["render"] = render.stdout + render.stderr
    validate = subprocess.run([sys.executable, "-m", "xds_server", "validate", str(tls_env.config)], cwd=ROOT,
                              env=_env(), capture_output=True, text=True)
    surfaces["validate"] = validate.stdout + validate.stderr
    for name, text in surfaces.items():
        for line in sentinel:
            assert line not in text, f"private key material in {name}"


# --------------------------------------------------------------------------- a real browser

BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]


def _chromium() -> str | None:
    import shutil
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _bundle() -> Path:
    bundle = BROWSER_DIR / "dist" / "bundle.js"
    if not bundle.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BROWSER_DIR, check=True,
                       timeout=300, capture_output=True)
        subprocess.run(["npm", "run", "build"], cwd=BROWSER_DIR, check=True, timeout=120, capture_output=True)
    return bundle


@contextlib.contextmanager
def _static_site(port: int):
    import functools
    import http.server
    import threading
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(BROWSER_DIR))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def _dom(url: str, workdir: Path) -> str:
    profile = workdir / f"chromium-profile-{time.time_ns()}"
    out = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=90)
    return out.stdout


def _span(dom: str, element_id: str) -> str:
    import re
    m = re.search(rf'<span id="{element_id}">(.*?)</span>', dom, re.S)
    return m.group(1) if m else ""


@pytest.fixture(scope="module")
def browser() -> str:
    if _chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it so CI never skips this")
    _bundle()
    return _chromium()


def test_browser_grpc_web_unary_and_server_streaming(tls_env: TlsEnv, browser: str) -> None:
    with _static_site(tls_env.page_port) as origin:
        dom = _dom(f"{origin}/index.html?gateway=http://127.0.0.1:{tls_env.web}", tls_env.workdir)
    assert _span(dom, "unary") == "Hello browser from plain", dom[-2000:]
    stream = _span(dom, "stream")
    assert stream.startswith("3 features: ") and stream.count("|") == 2, stream


def test_browser_from_a_disallowed_origin_fails(tls_env: TlsEnv, browser: str) -> None:
    with _static_site(free_port()) as origin:  # same page, an origin the corsPolicy does not list
        dom = _dom(f"{origin}/index.html?gateway=http://127.0.0.1:{tls_env.web}", tls_env.workdir)
    assert _span(dom, "unary").startswith("error"), dom[-2000:]
    assert _span(dom, "stream").startswith("error"), dom[-2000:]
