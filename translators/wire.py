"""Protobuf wire-format helpers: length-delimited fields built from bytes we already have.

Repeated fields concatenate on the wire, so a message can be assembled from
cached serialized parts; used for DiscoveryResponses (``xds_server.snapshot``)
and for endpoint assignments (``translators.builders.endpoints``).
"""
from __future__ import annotations


def varint(n: int) -> bytes:
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
    return bytes([(tag << 3) | 2]) + varint(len(payload)) + payload
