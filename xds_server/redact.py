"""Keep private keys out of logs, NACK records, debug output and errors.

Envoy echoes parts of rejected config back in NACK messages; anything that
looks like PEM private key material (or its base64 body) is replaced before
the text is stored or logged.
"""
from __future__ import annotations

import re

_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)
_INLINE_KEY = re.compile(r"(private_key|privateKey|tls\.key)(.{0,40}?)[A-Za-z0-9+/=]{16,}", re.S)

REDACTED = "[redacted]"


def redact(text: str) -> str:
    text = _PEM_KEY.sub(REDACTED, text)
    return _INLINE_KEY.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
