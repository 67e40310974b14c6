"""Protobuf wire-format helpers: length-delimited fields built from bytes we already have.

Repeated fields concatenate on the wire, so a message can be assembled from
cached serialized parts; used for DiscoveryResponses (``xds_server.snapshot``)
and for endpoint assignments (``translators.builders.endpoints``).
"""
from __future__ import annotations


_SMALL = [bytes((n,)) if n < 128 else bytes(((n & 0x7F) | 0x80, n >> 7)) for n in range(16384)]


def varint(n: int) -> bytes:
    if n < 16384:
        return _SMALL[n]
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    if len(payload) < 4096:
        return _TAGS[tag] + varint(len(payload)) + payload
    return b"".join((_TAGS[tag], varint(len(payload)), payload))  # one copy of a large payload, not two


_TAGS = [bytes(((t << 3) | 2,)) for t in range(16)]
