"""Resources as JSON-able dicts, in push order: what ``xds-server render`` prints and golden files hold."""
from __future__ import annotations

from google.protobuf import json_format

from translators import type_urls
from translators.node import NodeInfo
from translators.pipeline import Translation


def render(translation: Translation, node: NodeInfo) -> dict:
    resources = translation.for_node(node)
    out: dict = {}
    for type_url in type_urls.PUSH_ORDER:
        msgs = resources.get(type_url, {})
        if msgs or type_url != type_urls.SECRET:
            out[type_urls.short(type_url)] = [json_format.MessageToDict(msgs[n], preserving_proto_field_name=True)
                                              for n in sorted(msgs)]
    return out
