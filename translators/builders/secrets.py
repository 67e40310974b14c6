"""SDS: gateway credentials as ``Secret`` resources, never inlined in listeners.

``kubernetes://NAME`` carries the certificate chain and private key;
``kubernetes://NAME-cacert`` carries the CA that verifies client certificates
(from ``ca.crt`` in the same Secret, or from a Secret named ``NAME-cacert``),
as in Istio.
"""
from __future__ import annotations

from typing import Iterable

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from translators import ir


def build_certificate_secret(secret: ir.TlsSecret) -> secret_pb2.Secret:
    return secret_pb2.Secret(name=ir.sds_name(secret.name), tls_certificate=common_pb2.TlsCertificate(
        certificate_chain=base_pb2.DataSource(inline_bytes=secret.cert_pem),
        private_key=base_pb2.DataSource(inline_bytes=secret.key_pem)))


def build_ca_secret(*, credential: str, ca_pem: bytes) -> secret_pb2.Secret:
    return secret_pb2.Secret(name=ir.sds_name(credential) + "-cacert", validation_context=common_pb2.CertificateValidationContext(
        trusted_ca=base_pb2.DataSource(inline_bytes=ca_pem)))


class SecretStore:
    """Collects the SDS secrets one node may have: only those its config references, from its namespace."""

    def __init__(self, secrets: Iterable[ir.TlsSecret], *, namespace: str) -> None:
        secrets = list(secrets)
        self.namespace = namespace
        self._by_name = {s.name: s for s in secrets if s.namespace == namespace}
        #: every namespace's, for a server certificate a ReferenceGrant lets a Gateway use across namespaces
        self._granted = {(s.namespace, s.name): s for s in secrets}
        self.resources: dict[str, secret_pb2.Secret] = {}

    def _ca(self, credential: str) -> bytes:
        own = self._by_name.get(credential)
        if own is not None and own.ca_pem:
            return own.ca_pem
        other = self._by_name.get(f"{credential}-cacert")
        return other.ca_pem if other is not None else b""

    def _named_ca(self, name: str) -> bytes:
        """A Secret named as a CA (Emissary's ``ca_secret``): its ca.crt, else its tls.crt."""
        s = self._by_name.get(name)
        return (s.ca_pem or s.cert_pem) if s is not None else b""

    def _add_ca(self, credential: str, ca_credential: str) -> bool:
        """The validation CA as ``kubernetes://NAME-cacert``: from ``ca_credential`` when one is named,
        else the credential's own ``ca.crt`` (or its ``-cacert`` Secret); False when there is none."""
        name = ca_credential or credential
        ca = self._named_ca(ca_credential) if ca_credential else self._ca(credential)
        if ca:
            self.resources[ir.sds_name(name) + "-cacert"] = build_ca_secret(credential=name, ca_pem=ca)
        return bool(ca)

    def add_server_credential(self, tls: ir.ServerTls) -> bool:
        """Add what a TLS server needs; False when its Secret (or MUTUAL's CA) is missing."""
        if tls.credential_namespace and tls.credential_namespace != self.namespace:
            granted = self._granted.get((tls.credential_namespace, tls.credential_name))
            if granted is None or not granted.cert_pem or tls.mode == "MUTUAL":
                return False
            msg = build_certificate_secret(granted)
            msg.name = ir.sds_name(tls.sds_credential)
            self.resources[msg.name] = msg
            return True
        secret = self._by_name.get(tls.credential_name)
        if secret is None or not secret.cert_pem:
            return False
        if tls.mode == "MUTUAL" and not self._add_ca(tls.credential_name, tls.ca_credential):
            return False
        self.resources[ir.sds_name(secret.name)] = build_certificate_secret(secret)
        return True

    def add_upstream_ca(self, tls: ir.UpstreamTls) -> None:
        """Only the CA of an upstream credential (public): for clusters this node does not route to."""
        self._add_ca(tls.credential_name, tls.ca_credential)

    def add_upstream_credential(self, tls: ir.UpstreamTls) -> None:
        """The client certificate and the CA of a cluster this node routes to."""
        secret = self._by_name.get(tls.credential_name)
        if secret is not None and secret.cert_pem:
            self.resources[ir.sds_name(secret.name)] = build_certificate_secret(secret)
        self._add_ca(tls.credential_name, tls.ca_credential)
