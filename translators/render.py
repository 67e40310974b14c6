"""Resources as JSON-able dicts, in push order: what ``xds-server render`` prints and golden files hold.

Private keys are redacted structurally: any ``private_key`` field is replaced,
so no rendering of a Secret ever carries key material.
"""
from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from translators import type_urls
from translators.node import NodeInfo
from translators.builders.prebuilt import real_message
from translators.pipeline import Translation

REDACTED = "[redacted]"


def redact_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ({"redacted": REDACTED} if k in ("private_key", "privateKey") else redact_keys(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_keys(v) for v in value]
    return value


def render(translation: Translation, node: NodeInfo) -> dict:
    resources = translation.for_node(node)
    out: dict = {}
    for type_url in type_urls.PUSH_ORDER:
        msgs = resources.get(type_url, {})
        if msgs or type_url not in (type_urls.SECRET, type_urls.VIRTUAL_HOST):  # (VHDS: Delta Envoys only)
            out[type_urls.short(type_url)] = [
                redact_keys(json_format.MessageToDict(real_message(msgs[n]), preserving_proto_field_name=True)) for n in sorted(msgs)]
    return out
