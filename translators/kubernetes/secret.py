"""Core ``v1/Secret`` -> :class:`translators.ir.TlsSecret`, as Istio reads gateway credentials.

``kubernetes.io/tls`` secrets carry ``tls.crt`` and ``tls.key`` (and optionally
``ca.crt``); a generic secret may carry only ``ca.crt`` (Istio's ``NAME-cacert``).
Base64 ``data`` and plain ``stringData`` are both accepted.  Messages about a
secret never include any of its content.
"""
from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from translators.diagnostics import Reporter
from translators.ir import TlsSecret
from translators.objects import ConfigObject

KEYS = ("tls.crt", "tls.key", "ca.crt")
#: the elliptic curves BoringSSL (Envoy) loads certificates for
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def _certificates(value: bytes, path: str, rep: Reporter) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; an error (naming no content) when there is none or one is broken."""
    try:
        certs = x509.load_pem_x509_certificates(value)
    except ValueError:
        certs = []
    if not certs:
        rep.error(path, "is not a PEM certificate")
    return certs


def _public_key_ok(key, path: str, rep: Reporter, *, what: str) -> bool:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        rep.error(path, f"{what} has a {key.key_size}-bit RSA key; Envoy needs 2048 bits or more")
        return False
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, _CURVES):
        rep.error(path, f"{what} uses curve {key.curve.name}; Envoy supports P-256, P-384 and P-521")
        return False
    return True


def _private_key(value: bytes, path: str, rep: Reporter):
    """The parsed key, or None after an error.  Parser messages are never passed on: they could quote the key."""
    try:
        return serialization.load_pem_private_key(value, password=None)
    except TypeError:
        rep.error(path, "is an encrypted private key; Envoy needs it unencrypted")
    except Exception:  # noqa: BLE001 - ValueError, UnsupportedAlgorithm...: what the parser says stays out of the message
        rep.error(path, "is not a PEM private key")
    return None


def _spki(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_secret(obj: ConfigObject, rep: Reporter) -> TlsSecret | None:
    raw = obj.raw
    kind = raw.get("type", "Opaque")
    values: dict[str, bytes] = {}
    where: dict[str, str] = {}
    data = raw.get("data") or {}
    string_data = raw.get("stringData") or {}
    if not isinstance(data, dict) or not isinstance(string_data, dict):
        rep.error("data", "data and stringData must be mappings")
        return None
    for key in KEYS:
        if key in string_data:
            where[key] = f"stringData.{key}"
            v = string_data[key]
            if not isinstance(v, str):
                rep.error(f"stringData.{key}", "must be a string")
                continue
            values[key] = v.encode()
        elif key in data:
            where[key] = f"data.{key}"
            v = data[key]
            if not isinstance(v, str):
                rep.error(f"data.{key}", "must be a base64 string")
                continue
            try:
                values[key] = base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                rep.error(f"data.{key}", "is not valid base64 (use stringData for plain PEM)")
    certs = _certificates(values["tls.crt"], where["tls.crt"], rep) if "tls.crt" in values else []
    if certs:
        _public_key_ok(certs[0].public_key(), where["tls.crt"], rep, what="the certificate")
    if "ca.crt" in values:
        _certificates(values["ca.crt"], where["ca.crt"], rep)
    key = _private_key(values["tls.key"], where["tls.key"], rep) if "tls.key" in values else None
    if key is not None and certs:
        try:
            matches = _spki(key.public_key()) == _spki(certs[0].public_key())
        except Exception:  # noqa: BLE001
            matches = False
        if not matches:
            rep.error(where["tls.key"], "does not match the certificate in tls.crt (its first certificate)")
    ca_only = kind != "kubernetes.io/tls" and "tls.crt" in values and "tls.key" not in values \
        and "ca.crt" not in values
    if ca_only:
        # a CA bundle in tls.crt alone (Emissary's ca_secret: ``kubectl create secret generic NAME
        # --from-file=tls.crt=ca.pem``): a CA, never a serving certificate
        return None if rep.failed else TlsSecret(obj.name, obj.namespace, b"", b"", values["tls.crt"])
    if ("tls.crt" in values) != ("tls.key" in values):
        rep.error("data", "tls.crt and tls.key must be given together")
    if kind == "kubernetes.io/tls" and "tls.crt" not in values:
        rep.error("data.tls.crt", "a kubernetes.io/tls secret needs tls.crt and tls.key")
    if rep.failed or not values:
        return None
    return TlsSecret(obj.name, obj.namespace, values.get("tls.crt", b""), values.get("tls.key", b""),
                     values.get("ca.crt", b""))
