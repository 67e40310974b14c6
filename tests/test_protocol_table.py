"""``should_respond`` as a table of named cases (Istio pilot's style).

Each case gives the stream's state for one type, a request, the expected
:class:`~xds_server.protocol.Decision` and the fields of the new state that
matter for that case (Envoy's xds_protocol: ACK/NACK, stale nonce, wildcard
LDS/CDS, named RDS/EDS, reconnect).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import pytest

from translators import type_urls as T
from xds_server.protocol import Decision, Request, TypeState, should_respond

#: a named RDS subscription to "a" that was sent v2 with nonce 7 and had ACKed v1 before
SENT = TypeState(names=frozenset({"a"}), last_version="v2", last_nonce="7", acked_version="v1")
#: a wildcard LDS subscription in the same position
WILD = TypeState(names=None, last_version="v2", last_nonce="7", acked_version="v1")
#: SENT after the client NACKed v2
NACKED = replace(SENT, nacked_version="v2", nack_message="bad route")


class Case(NamedTuple):
    name: str
    state: TypeState | None
    request: Request
    decision: Decision
    expected: dict[str, Any]


CASES = [
    # -- opening a subscription
    Case("initial named request responds", None, Request(T.ROUTE, resource_names=("a",)), Decision.RESPOND,
         {"names": frozenset({"a"}), "last_version": "", "last_nonce": "", "acked_version": ""}),
    Case("LDS with no names is wildcard", None, Request(T.LISTENER), Decision.RESPOND, {"names": None}),
    Case("LDS with * is wildcard", None, Request(T.LISTENER, resource_names=("*",)), Decision.RESPOND, {"names": None}),
    Case("CDS with no names is wildcard", None, Request(T.CLUSTER), Decision.RESPOND, {"names": None}),
    Case("CDS with * among names is wildcard", None, Request(T.CLUSTER, resource_names=("x", "*")), Decision.RESPOND,
         {"names": None}),
    Case("RDS names are explicit", None, Request(T.ROUTE, resource_names=("r1", "r2")), Decision.RESPOND,
         {"names": frozenset({"r1", "r2"})}),
    Case("EDS with no names is an empty named set", None, Request(T.ENDPOINT), Decision.RESPOND,
         {"names": frozenset()}),
    Case("EDS * is a plain name, not wildcard", None, Request(T.ENDPOINT, resource_names=("*",)), Decision.RESPOND,
         {"names": frozenset({"*"})}),
    Case("reconnect with a version_info responds", None, Request(T.CLUSTER, version_info="v9"), Decision.RESPOND,
         {"names": None, "last_version": "", "acked_version": ""}),
    Case("reconnect of a named type with a version_info responds", None,
         Request(T.ROUTE, version_info="v9", resource_names=("a",)), Decision.RESPOND, {"names": frozenset({"a"})}),
    Case("request without a nonce on a known stream responds", SENT, Request(T.ROUTE, "v1", ("a", "b")),
         Decision.RESPOND, {"names": frozenset({"a", "b"}), "last_version": "v2", "last_nonce": "7"}),
    # -- ACK
    Case("ACK records the version", SENT, Request(T.ROUTE, "v2", ("a",), "7"), Decision.ACK,
         {"acked_version": "v2", "last_version": "v2", "last_nonce": "7", "names": frozenset({"a"})}),
    Case("ACK with changed names responds", SENT, Request(T.ROUTE, "v2", ("a", "b"), "7"), Decision.RESPOND,
         {"acked_version": "v2", "names": frozenset({"a", "b"})}),
    Case("ACK with the same names in another order", SENT, Request(T.ROUTE, "v2", ("a", "a"), "7"), Decision.ACK,
         {"names": frozenset({"a"})}),
    Case("wildcard ACK with no names", WILD, Request(T.LISTENER, "v2", (), "7"), Decision.ACK,
         {"names": None, "acked_version": "v2"}),
    Case("wildcard ACK with *", WILD, Request(T.LISTENER, "v2", ("*",), "7"), Decision.ACK, {"names": None}),
    Case("wildcard to named is a change", WILD, Request(T.LISTENER, "v2", ("x:1",), "7"), Decision.RESPOND,
         {"names": frozenset({"x:1"})}),
    Case("ACK of a version never sent acknowledges nothing", SENT, Request(T.ROUTE, "v99", ("a",), "7"), Decision.ACK,
         {"acked_version": "v1", "last_version": "v2"}),
    Case("ACK clears a previous NACK", NACKED, Request(T.ROUTE, "v2", ("a",), "7"), Decision.ACK,
         {"nacked_version": "", "nack_message": "", "acked_version": "v2"}),
    # -- NACK
    Case("NACK records the error and keeps the acked version", SENT, Request(T.ROUTE, "v1", ("a",), "7", "bad route"),
         Decision.NACK, {"acked_version": "v1", "nacked_version": "v2", "nack_message": "bad route",
                         "last_version": "v2", "last_nonce": "7"}),
    Case("NACK with an empty message is still a NACK", SENT, Request(T.ROUTE, "v1", ("a",), "7", ""), Decision.NACK,
         {"nacked_version": "v2", "nack_message": ""}),
    Case("NACK with changed names responds", SENT, Request(T.ROUTE, "v1", ("b",), "7", "bad"), Decision.RESPOND,
         {"nacked_version": "v2", "nack_message": "bad", "names": frozenset({"b"})}),
    Case("wildcard NACK", WILD, Request(T.CLUSTER, "v1", (), "7", "bad cluster"), Decision.NACK,
         {"names": None, "nacked_version": "v2", "acked_version": "v1"}),
    # -- stale nonce
    Case("stale nonce is ignored", SENT, Request(T.ROUTE, "v1", ("a", "b"), "6"), Decision.STALE,
         {"names": frozenset({"a"}), "acked_version": "v1"}),
    Case("stale NACK is ignored", SENT, Request(T.ROUTE, "v1", ("a",), "3", "old error"), Decision.STALE,
         {"nacked_version": "", "nack_message": ""}),
    Case("stale ACK does not clear a NACK", NACKED, Request(T.ROUTE, "v2", ("a",), "6"), Decision.STALE,
         {"nacked_version": "v2", "nack_message": "bad route"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_should_respond(case: Case) -> None:
    got, new = should_respond(case.state, case.request)
    assert got is case.decision
    for field, value in case.expected.items():
        assert getattr(new, field) == value, field
    if case.decision is Decision.STALE:
        assert new == case.state, "a stale request must leave the state untouched"


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)
