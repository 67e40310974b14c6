"""``should_respond`` as a table of cases (Istio pilot's style)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from translators import type_urls as T
from xds_server.protocol import Decision, Request, TypeState, should_respond

SENT = TypeState(names=frozenset({"a"}), last_version="v2", last_nonce="7", acked_version="v1")
WILD = TypeState(names=None, last_version="v2", last_nonce="7", acked_version="v1")

CASES = [
    # name, state, request, decision, expected fields of the new state
    ("first request opens the subscription", None, Request(T.ROUTE, resource_names=("a",)), Decision.RESPOND,
     {"names": frozenset({"a"})}),
    ("LDS with no names is wildcard", None, Request(T.LISTENER), Decision.RESPOND, {"names": None}),
    ("CDS with * is wildcard", None, Request(T.CLUSTER, resource_names=("*",)), Decision.RESPOND, {"names": None}),
    ("EDS with no names is an empty named set", None, Request(T.ENDPOINT), Decision.RESPOND, {"names": frozenset()}),
    ("reconnect with a version still responds", None, Request(T.CLUSTER, version_info="v9"), Decision.RESPOND,
     {"names": None}),
    ("ACK records the version", SENT, Request(T.ROUTE, "v2", ("a",), "7"), Decision.ACK,
     {"acked_version": "v2", "last_version": "v2"}),
    ("ACK with new names responds", SENT, Request(T.ROUTE, "v2", ("a", "b"), "7"), Decision.RESPOND,
     {"acked_version": "v2", "names": frozenset({"a", "b"})}),
    ("NACK records the error and keeps the acked version", SENT, Request(T.ROUTE, "v1", ("a",), "7", "bad route"),
     Decision.NACK, {"acked_version": "v1", "nacked_version": "v2", "nack_message": "bad route"}),
    ("NACK with new names responds", SENT, Request(T.ROUTE, "v1", ("b",), "7", "bad"), Decision.RESPOND,
     {"nacked_version": "v2", "names": frozenset({"b"})}),
    ("stale nonce is ignored", SENT, Request(T.ROUTE, "v1", ("a", "b"), "6"), Decision.STALE, {"names": frozenset({"a"})}),
    ("stale NACK is ignored", SENT, Request(T.ROUTE, "v1", ("a",), "3", "old error"), Decision.STALE,
     {"nacked_version": ""}),
    ("ACK after a NACK clears it", replace(SENT, nacked_version="v2", nack_message="x"), Request(T.ROUTE, "v2", ("a",), "7"),
     Decision.ACK, {"nacked_version": "", "nack_message": ""}),
    ("wildcard ACK", WILD, Request(T.LISTENER, "v2", (), "7"), Decision.ACK, {"names": None, "acked_version": "v2"}),
    ("wildcard to named is a change", WILD, Request(T.LISTENER, "v2", ("x:1",), "7"), Decision.RESPOND,
     {"names": frozenset({"x:1"})}),
]


@pytest.mark.parametrize("name,state,request_,decision,expected", CASES, ids=[c[0] for c in CASES])
def test_should_respond(name, state, request_, decision, expected) -> None:
    got, new = should_respond(state, request_)
    assert got is decision
    for field, value in expected.items():
        assert getattr(new, field) == value, field
