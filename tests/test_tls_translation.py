"""TLS and gRPC-Web translation: who gets which secrets, and what validate says about corsPolicy."""
from __future__ import annotations

import json

from translators import type_urls
from translators.node import NodeInfo
from translators.pipeline import translate
from xds_server.sources.documents import parse_text

def _self_signed() -> tuple[str, str]:
    """A real certificate and key: Secrets are parsed, so PEM armour around junk is refused."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()) \
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


PEM_CERT, PEM_KEY = _self_signed()


def secret(name: str, namespace: str) -> str:
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {namespace}}}
type: kubernetes.io/tls
stringData:
  tls.crt: {json.dumps(PEM_CERT)}
  tls.key: {json.dumps(PEM_KEY)}
"""


GATEWAYS = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: public}
  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"], tls: {mode: SIMPLE, credentialName: public-cert}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: internal, namespace: edge}
spec:
  selector: {istio: internal}
  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"], tls: {mode: SIMPLE, credentialName: internal-cert}}]
"""


def _secrets_for(node: NodeInfo) -> list[str]:
    text = GATEWAYS + "---" + secret("public-cert", "edge") + "---" + secret("internal-cert", "edge") + "---" + \
        secret("public-cert", "other")
    objects, diags = parse_text(text, file="t.yaml")
    assert not [d for d in diags]
    return sorted(translate(objects).for_node(node).get(type_urls.SECRET, {}))


def test_a_node_gets_only_the_secrets_its_gateways_reference_in_its_namespace() -> None:
    assert _secrets_for(NodeInfo.of(namespace="edge", labels={"istio": "public"})) == ["kubernetes://public-cert"]
    assert _secrets_for(NodeInfo.of(namespace="edge", labels={"istio": "internal"})) == ["kubernetes://internal-cert"]
    # same labels, another namespace: that namespace's Secret, never edge's
    assert _secrets_for(NodeInfo.of(namespace="other", labels={"istio": "public"})) == ["kubernetes://public-cert"]
    assert _secrets_for(NodeInfo.of(namespace="third", labels={"istio": "public"})) == []
    assert _secrets_for(NodeInfo.of(namespace="edge", labels={"istio": "nothing"})) == []


def test_missing_credential_is_a_warning_and_the_port_is_not_served() -> None:
    objects, _ = parse_text(GATEWAYS, file="t.yaml")
    translation = translate(objects)
    messages = [d.format() for d in translation.diagnostics]
    assert "t.yaml: Gateway/edge/public: spec.servers[0].tls.credentialName: warning: no TLS Secret 'public-cert' in " \
           "any namespace (looked in 'edge' and the others): it must be in the namespace of the Envoy that selects " \
           "this Gateway (`xds-server bootstrap envoy --namespace NAMESPACE`); this server is not served until it " \
           "exists" in messages
    assert translation.for_node(NodeInfo.of(namespace="edge", labels={"istio": "public"}))[type_urls.LISTENER] == {}


def test_bad_secrets_are_reported_without_their_content() -> None:
    text = """
apiVersion: v1
kind: Secret
metadata: {name: broken, namespace: default}
type: kubernetes.io/tls
data: {tls.crt: "not base64!!", tls.key: "U0VOVElORUwtS0VZ"}
"""
    objects, _ = parse_text(text, file="s.yaml")
    messages = [d.format() for d in translate(objects).diagnostics]
    assert "s.yaml: Secret/default/broken: data.tls.crt: is not valid base64 (use stringData for plain PEM)" in messages
    assert "s.yaml: Secret/default/broken: data.tls.key: is not a PEM private key" in messages
    assert not any("SENTINEL" in m or "U0VOVElORUwtS0VZ" in m for m in messages)


CORS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{headers: {content-type: {prefix: application/grpc-web}}}]
    corsPolicy:
      allowOrigins: [{exact: "https://app.example.com"}]
      allowHeaders: [content-type]
    route: [{destination: {host: web, port: {number: 8080}}}]
"""


def test_validate_warns_about_grpc_web_cors_traps() -> None:
    objects, _ = parse_text(CORS, file="c.yaml")
    messages = [d.format() for d in translate(objects).diagnostics]
    assert any("spec.http[0].corsPolicy: warning: for gRPC-Web, corsPolicy should expose/allow grpc-status, "
               "grpc-message, grpc-status-details-bin, x-grpc-web, x-user-agent, grpc-timeout" in m for m in messages)
    assert any("matches only on content-type application/grpc-web*" in m and "preflight" in m for m in messages)
