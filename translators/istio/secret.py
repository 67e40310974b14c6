"""Core ``v1/Secret`` -> :class:`translators.ir.TlsSecret`, as Istio reads gateway credentials.

``kubernetes.io/tls`` secrets carry ``tls.crt`` and ``tls.key`` (and optionally
``ca.crt``); a generic secret may carry only ``ca.crt`` (Istio's ``NAME-cacert``).
Base64 ``data`` and plain ``stringData`` are both accepted.  Messages about a
secret never include any of its content.
"""
from __future__ import annotations

import base64
import binascii

from translators.diagnostics import Reporter
from translators.ir import TlsSecret
from translators.objects import ConfigObject

KEYS = ("tls.crt", "tls.key", "ca.crt")


def _pem_ok(value: bytes, *, private: bool) -> bool:
    marker = b"PRIVATE KEY-----" if private else b"-----BEGIN CERTIFICATE-----"
    return b"-----BEGIN" in value and marker in value


def parse_secret(obj: ConfigObject, rep: Reporter) -> TlsSecret | None:
    raw = obj.raw
    kind = raw.get("type", "Opaque")
    values: dict[str, bytes] = {}
    data = raw.get("data") or {}
    string_data = raw.get("stringData") or {}
    if not isinstance(data, dict) or not isinstance(string_data, dict):
        rep.error("data", "data and stringData must be mappings")
        return None
    for key in KEYS:
        if key in string_data:
            v = string_data[key]
            if not isinstance(v, str):
                rep.error(f"stringData.{key}", "must be a string")
                continue
            values[key] = v.encode()
        elif key in data:
            v = data[key]
            try:
                values[key] = base64.b64decode(v if isinstance(v, str) else "", validate=True)
            except (binascii.Error, ValueError):
                rep.error(f"data.{key}", "is not valid base64 (use stringData for plain PEM)")
    if "tls.key" in values and not _pem_ok(values["tls.key"], private=True):
        rep.error("data.tls.key", "is not a PEM private key")
    for key in ("tls.crt", "ca.crt"):
        if key in values and not _pem_ok(values[key], private=False):
            rep.error(f"data.{key}", "is not a PEM certificate")
    if ("tls.crt" in values) != ("tls.key" in values):
        rep.error("data", "tls.crt and tls.key must be given together")
    if kind == "kubernetes.io/tls" and "tls.crt" not in values:
        rep.error("data.tls.crt", "a kubernetes.io/tls secret needs tls.crt and tls.key")
    if rep.failed or not values:
        return None
    return TlsSecret(obj.name, obj.namespace, values.get("tls.crt", b""), values.get("tls.key", b""),
                     values.get("ca.crt", b""))
