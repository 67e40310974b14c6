"""The Emissary dialect end to end: Emissary's own gRPC guide YAML, a real Envoy, real gRPC backends.

One control plane, one Envoy (node labels ``xds-server.io/dialect: emissary`` and
``xds-server.io/ambassador-id: default``, as ``bootstrap envoy --dialect emissary`` writes) and four
grpcio backends for the whole module:

* ``a``: Greeter and RouteGuide, behind the Kubernetes Service ``grpc-example`` (EndpointSlice);
* ``b``, ``c``: Greeters behind the Services ``grpc-b`` and ``grpc-c``;
* ``tls-backend``: a Greeter serving TLS (a trustme certificate for ``greeter.internal``) behind ``grpc-tls``.

Every assertion is on a call that went through Envoy and on which replica answered (``x-replica``).
"""
from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import struct
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
import trustme

from protos import helloworld_pb2
from tests.grpc_calls import list_features, say_hello
from tests.harness import Backends, ControlPlane, Envoy, free_port, wait_until

pytestmark = pytest.mark.e2e

WEB_ORIGIN = "https://web.example.com"
LABELS = {"xds-server.io/dialect": "emissary", "xds-server.io/ambassador-id": "default"}

# Emissary's gRPC guide (getambassador.io/docs/emissary/latest/howtos/grpc), core objects unchanged
GUIDE = """
apiVersion: getambassador.io/v3alpha1
kind: Host
metadata: {name: example-host}
spec: {hostname: "*", requestPolicy: {insecure: {action: Route}}}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {name: grpc-py}
spec: {hostname: "*", grpc: True, prefix: /helloworld.Greeter/, rewrite: /helloworld.Greeter/, service: grpc-example}
"""

LISTENERS = """
apiVersion: getambassador.io/v3alpha1
kind: Listener
metadata: {{name: cleartext, namespace: default}}
spec: {{port: {plain}, protocol: HTTP, securityModel: XFP, hostBinding: {{namespace: {{from: ALL}}}}}}
---
apiVersion: getambassador.io/v3alpha1
kind: Listener
metadata: {{name: secure, namespace: default}}
spec: {{port: {secure}, protocol: HTTPS, securityModel: XFP, hostBinding: {{namespace: {{from: ALL}}}}}}
---
apiVersion: getambassador.io/v3alpha1
kind: Module
metadata: {{name: ambassador, namespace: default}}
spec:
  config:
    strip_matching_host_port: true
    enable_grpc_web: true
"""

SERVICE = """
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: grpc, port: {service_port}, targetPort: grpc-api}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-abcde, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: grpc, port: {port}, protocol: TCP}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
"""

MAPPINGS = """
# 2. TLS on the HTTPS Listener: a Host with tlsSecret and a TLSContext with alpn_protocols h2
apiVersion: getambassador.io/v3alpha1
kind: TLSContext
metadata: {{name: edge-ctx, namespace: default}}
spec: {{hosts: [grpc-tls.example.com], secret: edge-cert, alpn_protocols: h2, min_tls_version: v1.2}}
---
apiVersion: getambassador.io/v3alpha1
kind: Host
metadata: {{name: tls-host, namespace: default}}
spec:
  hostname: grpc-tls.example.com
  tlsSecret: {{name: edge-cert}}
  tlsContext: {{name: edge-ctx}}
  # Route, not the default Redirect: a Redirect Host on the cleartext Listener redirects every Host on it
  # (see test_redirect_host_does_not_redirect_the_guides_route_host)
  requestPolicy: {{insecure: {{action: Route}}}}
---
# 3. strip_matching_host_port: a Mapping for grpc.example.com, called with :authority grpc.example.com:PORT
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: by-hostname, namespace: default}}
spec: {{hostname: grpc.example.com, grpc: true, prefix: /helloworld.Greeter/, rewrite: /helloworld.Greeter/,
        service: grpc-b}}
---
# 4. an :authority header match
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: by-authority-header, namespace: default}}
spec:
  grpc: true
  prefix: /helloworld.Greeter/
  rewrite: /helloworld.Greeter/
  headers: {{":authority": header.example.com}}
  service: grpc-c
---
# 5. upstream TLS: TLSContexts without hosts, named by the Mappings' tls
apiVersion: getambassador.io/v3alpha1
kind: TLSContext
metadata: {{name: upstream-verified, namespace: default}}
spec: {{ca_secret: upstream-ca, sni: greeter.internal}}
---
apiVersion: getambassador.io/v3alpha1
kind: TLSContext
metadata: {{name: upstream-verified-bundle, namespace: default}}
spec: {{ca_secret: upstream-ca-bundle, sni: greeter.internal}}
---
apiVersion: getambassador.io/v3alpha1
kind: TLSContext
metadata: {{name: upstream-wrong-ca, namespace: default}}
spec: {{ca_secret: other-ca, sni: greeter.internal}}
---
apiVersion: getambassador.io/v3alpha1
kind: TLSContext
metadata: {{name: upstream-unverified, namespace: default}}
spec: {{sni: greeter.internal}}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: upstream-tls, namespace: default}}
spec: {{hostname: upstream.example.com, grpc: true, prefix: /helloworld.Greeter/, service: grpc-tls,
        tls: upstream-verified}}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: upstream-tls-bundle, namespace: default}}
spec: {{hostname: bundle.example.com, grpc: true, prefix: /helloworld.Greeter/, service: grpc-tls,
        tls: upstream-verified-bundle}}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: upstream-tls-wrong-ca, namespace: default}}
spec: {{hostname: wrong-ca.example.com, grpc: true, prefix: /helloworld.Greeter/, service: grpc-tls,
        tls: upstream-wrong-ca}}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: upstream-tls-unverified, namespace: default}}
spec: {{hostname: unverified.example.com, grpc: true, prefix: /helloworld.Greeter/, service: grpc-tls,
        tls: upstream-unverified}}
---
# 6. canary: two Mappings with the same match, one weight 20, the other without weight
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: canary-stable, namespace: default}}
spec: {{hostname: canary.example.com, grpc: true, prefix: /helloworld.Greeter/, rewrite: /helloworld.Greeter/,
        service: grpc-example}}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: canary-new, namespace: default}}
spec: {{hostname: canary.example.com, grpc: true, prefix: /helloworld.Greeter/, rewrite: /helloworld.Greeter/,
        service: grpc-b, weight: 20}}
---
# 7. a server stream, no timeout_ms; a static endpoint
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: route-guide, namespace: default}}
spec: {{hostname: "*", grpc: true, prefix: /routeguide.RouteGuide/, service: "127.0.0.1:{route_guide}"}}
---
# 8. gRPC-Web (Module enable_grpc_web) with a Mapping cors
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {{name: grpc-web, namespace: default}}
spec:
  hostname: grpcweb.example.com
  grpc: true
  prefix: /helloworld.Greeter/
  rewrite: /helloworld.Greeter/
  service: grpc-b
  cors:
    origins: ["{origin}"]
    methods: [POST, OPTIONS]
    headers: [content-type, x-grpc-web, x-user-agent, grpc-timeout]
    exposed_headers: [grpc-status, grpc-message]
    max_age: "3600"
"""


def _block(pem: bytes) -> str:
    return "\n".join("    " + line for line in pem.decode().strip().splitlines())


def tls_secret(name: str, cert: trustme.LeafCert) -> str:
    chain = b"".join(b.bytes() for b in cert.cert_chain_pems)
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\n"
            f"stringData:\n  tls.crt: |\n{_block(chain)}\n  tls.key: |\n{_block(cert.private_key_pem.bytes())}\n")


def ca_secret(name: str, ca: trustme.CA, *, key: str = "tls.crt") -> str:
    """A CA-only Secret.  ``tls.crt`` is Emissary's form (``kubectl create secret generic NAME
    --from-file=tls.crt=ca.pem``, what a ``ca_secret`` reads); ``ca.crt`` is Istio's."""
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: Opaque\n"
            f"stringData:\n  {key}: |\n{_block(ca.cert_pem.bytes())}\n")


class Env:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.config = workdir / "config"
        self.config.mkdir()
        self.plain, self.secure = free_port(), free_port()
        self.ca = trustme.CA()
        self.other_ca = trustme.CA()
        self.edge_cert = self.ca.issue_cert("grpc-tls.example.com")
        backend = self.ca.issue_cert("greeter.internal")
        self.backend_cert, self.backend_key = workdir / "backend.pem", workdir / "backend.key"
        self.backend_cert.write_bytes(b"".join(b.bytes() for b in backend.cert_chain_pems))
        backend.private_key_pem.write_to_path(str(self.backend_key))
        self.stack = contextlib.ExitStack()

    def start(self) -> "Env":
        try:
            self.a = self.stack.enter_context(Backends(replica="a", workdir=self.workdir))
            self.b = self.stack.enter_context(Backends(replica="b", workdir=self.workdir, route_guide=False))
            self.c = self.stack.enter_context(Backends(replica="c", workdir=self.workdir, route_guide=False))
            self.tls_backend = self.stack.enter_context(Backends(
                replica="tls-backend", workdir=self.workdir, route_guide=False,
                tls=(self.backend_cert, self.backend_key)))
            for b in (self.a, self.b, self.c, self.tls_backend):
                b.wait_ready()
            (self.config / "guide.yaml").write_text(GUIDE)
            (self.config / "listeners.yaml").write_text(LISTENERS.format(plain=self.plain, secure=self.secure))
            (self.config / "services.yaml").write_text("---".join([
                SERVICE.format(name="grpc-example", service_port=80, port=self.a.greeter_port),
                SERVICE.format(name="grpc-b", service_port=80, port=self.b.greeter_port),
                SERVICE.format(name="grpc-c", service_port=80, port=self.c.greeter_port),
                SERVICE.format(name="grpc-tls", service_port=443, port=self.tls_backend.greeter_port)]))
            (self.config / "mappings.yaml").write_text(MAPPINGS.format(route_guide=self.a.route_guide_port,
                                                                       origin=WEB_ORIGIN))
            (self.config / "secrets.yaml").write_text("---\n".join([
                tls_secret("edge-cert", self.edge_cert), ca_secret("upstream-ca", self.ca),
                ca_secret("upstream-ca-bundle", self.ca, key="ca.crt"),
                # ca.crt, so that a refusal is Envoy's validation failing, whatever becomes of tls.crt-only Secrets
                ca_secret("other-ca", self.other_ca, key="ca.crt")]))
            self.cp = self.stack.enter_context(ControlPlane(config_dirs=[self.config], workdir=self.workdir)).wait_ready()
            self.envoy = self.stack.enter_context(Envoy(control_plane=self.cp, workdir=self.workdir, node_id="emissary-1",
                                                        labels=LABELS, namespace="default"))
            self.envoy.wait_ready()
            wait_until(lambda: self.call() == "a", timeout=20, what="a call through Envoy")
        except BaseException:
            self.stack.close()
            raise
        return self

    def channel(self, *, authority: str | None = None) -> grpc.Channel:
        options = [("grpc.use_local_subchannel_pool", 1)]
        if authority:
            options.append(("grpc.default_authority", authority))
        return grpc.insecure_channel(f"127.0.0.1:{self.plain}", options=options)

    def tls_channel(self, *, host: str = "grpc-tls.example.com") -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(root_certificates=self.ca.cert_pem.bytes())
        return grpc.secure_channel(f"127.0.0.1:{self.secure}", creds, options=[
            ("grpc.ssl_target_name_override", host), ("grpc.default_authority", host),
            ("grpc.use_local_subchannel_pool", 1)])

    def call(self, *, authority: str | None = None, name: str = "e2e", timeout: float = 3) -> str:
        with self.channel(authority=authority) as ch:
            return say_hello(ch, name=name, timeout=timeout)[1]

    def diagnostics(self) -> list[dict]:
        return self.cp.debug("diagnostics")["diagnostics"]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.workdir.glob("*.log")))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    e = Env(tmp_path_factory.mktemp("emissary")).start()
    try:
        yield e
    finally:
        e.stack.close()


# --------------------------------------------------------------------------- 1. the guide's grpc Mapping


def test_guide_grpc_mapping_on_the_cleartext_listener(env: Env) -> None:
    with env.channel() as ch:
        assert say_hello(ch, name="guide") == ("Hello guide from a", "a")
    # any :authority: the guide's Host and Mapping are both "*"
    assert env.call(authority="anything.example.org") == "a"


# --------------------------------------------------------------------------- 2. TLS with ALPN h2


def test_tls_host_with_tls_context_alpn_h2(env: Env) -> None:
    with env.tls_channel() as ch:
        assert say_hello(ch, name="tls") == ("Hello tls from a", "a")
    ctx = ssl.create_default_context(cadata=env.ca.cert_pem.bytes().decode())
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", env.secure), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="grpc-tls.example.com") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert "grpc-tls.example.com" in str(tls.getpeercert()["subjectAltName"])


# --------------------------------------------------------------------------- 3. strip_matching_host_port


@pytest.mark.parametrize("with_port", [True, False], ids=["with-port", "no-port"])
def test_strip_matching_host_port(env: Env, with_port: bool) -> None:
    authority = f"grpc.example.com:{env.plain}" if with_port else "grpc.example.com"
    assert env.call(authority=authority) == "b"


# --------------------------------------------------------------------------- 4. :authority header


def test_authority_header_match_routes_to_another_backend(env: Env) -> None:
    assert env.call(authority="header.example.com") == "c"
    assert env.call(authority=f"header.example.com:{env.plain}") == "c"
    assert env.call(authority="not-header.example.com") == "a"


# --------------------------------------------------------------------------- 5. upstream TLS


def test_upstream_tls_validated_with_ca_secret(env: Env) -> None:
    """TLSContext ca_secret (Emissary's CA Secret: the CA in tls.crt): Envoy verifies the backend."""
    assert env.call(authority="upstream.example.com", timeout=5) == "tls-backend"


def test_upstream_tls_validated_with_a_ca_crt_secret(env: Env) -> None:
    """The same, with the CA in ``ca.crt`` (Istio's form of a CA Secret)."""
    assert env.call(authority="bundle.example.com", timeout=5) == "tls-backend"


def test_upstream_tls_with_the_wrong_ca_secret_is_refused(env: Env) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        env.call(authority="wrong-ca.example.com", timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    # refused by certificate validation: Envoy has the (wrong) CA
    assert "kubernetes://other-ca-cacert" in json.dumps(_sds_secrets(env))


def test_upstream_tls_without_ca_secret_is_not_verified(env: Env) -> None:
    """Emissary's default: no ca_secret, no verification of the upstream's certificate."""
    assert env.call(authority="unverified.example.com", timeout=5) == "tls-backend"


def _sds_secrets(env: Env) -> list[str]:
    """Names of the SDS secrets Envoy has received (active; a requested secret that never came is warming)."""
    dump = env.envoy.config_dump()
    names = []
    for section in dump["configs"]:
        if section.get("@type", "").endswith("SecretsConfigDump"):
            names += [s["name"] for s in section.get("dynamic_active_secrets", [])]
    return names


def test_upstream_tls_envoy_has_the_ca_secret(env: Env) -> None:
    assert "kubernetes://upstream-ca-cacert" in _sds_secrets(env), _sds_secrets(env)


# --------------------------------------------------------------------------- 6. canary


def test_canary_80_20_over_500_calls(env: Env) -> None:
    with env.channel(authority="canary.example.com") as ch:
        counts = Counter(say_hello(ch, timeout=3)[1] for _ in range(500))
    assert set(counts) <= {"a", "b"}, counts
    # binomial(500, 0.2): sd ~ 9 calls; 20% +- 6% is +-30 calls, over three sigma
    assert abs(counts["b"] - 100) <= 30, counts


# --------------------------------------------------------------------------- 7. long server stream


def test_server_stream_longer_than_15s_with_no_timeout_ms(env: Env) -> None:
    started = time.monotonic()
    with env.channel() as ch:
        features, replica = list_features(ch, metadata=[("x-stream-interval-ms", "1000"), ("x-stream-count", "17")],
                                          timeout=40)
    assert len(features) == 17 and replica == "a"
    assert time.monotonic() - started >= 15.5


# --------------------------------------------------------------------------- 8. gRPC-Web and CORS


def _grpc_web_frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def test_raw_grpc_web_post(env: Env) -> None:
    body = _grpc_web_frame(helloworld_pb2.HelloRequest(name="web").SerializeToString())
    conn = http.client.HTTPConnection("127.0.0.1", env.plain, timeout=10)
    try:
        conn.request("POST", "/helloworld.Greeter/SayHello", body=body, headers={
            "host": "grpcweb.example.com", "content-type": "application/grpc-web+proto", "x-grpc-web": "1",
            "origin": WEB_ORIGIN})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, (resp.status, resp.getheaders(), data[:300])
    assert resp.getheader("content-type", "").startswith("application/grpc-web"), resp.getheaders()
    assert resp.getheader("x-replica") == "b", resp.getheaders()
    assert resp.getheader("access-control-allow-origin") == WEB_ORIGIN, resp.getheaders()
    frames, i = [], 0
    while i < len(data):
        flag, length = data[i], struct.unpack(">I", data[i + 1:i + 5])[0]
        frames.append((flag, data[i + 5:i + 5 + length]))
        i += 5 + length
    assert [flag for flag, _ in frames] == [0x00, 0x80], frames  # one message, then the trailer frame
    assert helloworld_pb2.HelloReply.FromString(frames[0][1]).message == "Hello web from b"
    assert b"grpc-status:0" in frames[1][1].replace(b" ", b"")


@pytest.mark.parametrize("origin,allowed", [(WEB_ORIGIN, True), ("https://evil.example.com", False)])
def test_cors_preflight(env: Env, origin: str, allowed: bool) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", env.plain, timeout=10)
    try:
        conn.request("OPTIONS", "/helloworld.Greeter/SayHello", headers={
            "host": "grpcweb.example.com", "origin": origin, "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web,x-user-agent"})
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    if allowed:
        assert resp.status == 200, (resp.status, resp.getheaders())
        assert resp.getheader("access-control-allow-origin") == origin, resp.getheaders()
        assert "x-grpc-web" in (resp.getheader("access-control-allow-headers") or ""), resp.getheaders()
        assert "POST" in (resp.getheader("access-control-allow-methods") or ""), resp.getheaders()
    else:
        assert resp.getheader("access-control-allow-origin") is None, resp.getheaders()


# --------------------------------------------------------------------------- everything accepted


def test_envoy_accepted_everything_and_no_errors(env: Env) -> None:
    assert env.cp.debug("nacks")["nacks"] == []
    errors = [d for d in env.diagnostics() if d["severity"] == "error"]
    assert errors == [], errors


# --------------------------------------------------------------------------- Route and Redirect Hosts on one Listener

REDIRECT_HOST = """
apiVersion: getambassador.io/v3alpha1
kind: Listener
metadata: {{name: cleartext, namespace: default}}
spec: {{port: {plain}, protocol: HTTP, securityModel: XFP, hostBinding: {{namespace: {{from: ALL}}}}}}
---
apiVersion: getambassador.io/v3alpha1
kind: Listener
metadata: {{name: secure, namespace: default}}
spec: {{port: {secure}, protocol: HTTPS, securityModel: XFP, hostBinding: {{namespace: {{from: ALL}}}}}}
---
# no requestPolicy: Emissary's default insecure action, Redirect
apiVersion: getambassador.io/v3alpha1
kind: Host
metadata: {{name: secure-only, namespace: default}}
spec: {{hostname: secure-only.example.com, tlsSecret: {{name: edge-cert}}}}
"""


def test_redirect_host_does_not_redirect_the_guides_route_host(env: Env, tmp_path: Path) -> None:
    """The guide's Host ``*`` (insecure Route) next to a TLS Host with the default insecure action
    (Redirect) on the same cleartext Listener: only the TLS Host's cleartext requests are redirected."""
    config = tmp_path / "config"
    config.mkdir()
    plain, secure = free_port(), free_port()
    (config / "guide.yaml").write_text(GUIDE)
    (config / "hosts.yaml").write_text(REDIRECT_HOST.format(plain=plain, secure=secure))
    (config / "services.yaml").write_text(SERVICE.format(name="grpc-example", service_port=80, port=env.a.greeter_port))
    (config / "secrets.yaml").write_text(tls_secret("edge-cert", env.edge_cert))

    def get(host: str) -> tuple[int, str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", plain, timeout=5)
        try:
            conn.request("GET", "/helloworld.Greeter/SayHello", headers={"host": host})
            resp = conn.getresponse()
            resp.read()
            return resp.status, resp.getheader("location")
        finally:
            conn.close()

    with contextlib.ExitStack() as stack:
        cp = stack.enter_context(ControlPlane(config_dirs=[config], workdir=tmp_path)).wait_ready()
        stack.enter_context(Envoy(control_plane=cp, workdir=tmp_path, node_id="emissary-2", labels=LABELS)).wait_ready()
        wait_until(lambda: get("secure-only.example.com")[0] == 301, timeout=20, what="the Redirect Host's redirect")
        status, location = get("secure-only.example.com")
        assert location is not None and location.startswith("https://secure-only.example.com/"), location
        # the guide's Host routes in cleartext, as Emissary does
        with grpc.insecure_channel(f"127.0.0.1:{plain}") as ch:
            assert say_hello(ch, name="mixed", timeout=3) == ("Hello mixed from a", "a")
