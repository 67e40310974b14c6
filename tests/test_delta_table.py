"""The Delta xDS decisions (:mod:`xds_server.delta`) as tables of named cases.

Each request case gives a state, a request, and what the outcome and the new
state must be; each diff case gives a state, the current resources and what
must be sent and removed (Envoy's xds_protocol, "Incremental xDS").
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest

from translators import type_urls as T
from xds_server.delta import DeltaRequest, DeltaTypeState, View, diff, on_request, rebase, record_sent


@dataclass(frozen=True)
class R:
    name: str
    version: str


def state(*, have: dict[str, str] | None = None, in_flight: dict | None = None, **kw: Any) -> DeltaTypeState:
    """A state whose client holds ``have`` (as overrides, no shared base); ``in_flight`` maps a nonce to
    ``{name: (version sent, version before)}``."""
    st = DeltaTypeState()
    for k, v in kw.items():
        setattr(st, k, v)
    st.view = View(None, dict(have or {}))
    for nonce, carried in (in_flight or {}).items():
        before = View(None, {**(have or {}), **{n: prev for n, (_, prev) in carried.items()}})
        st.in_flight[nonce] = (before, {n: sent for n, (sent, _) in carried.items() if sent is not None})
    return st


#: a named EDS subscription to a and b that has a@1 and b@1, with a response (nonce 7) carrying b@2 in flight
IN_FLIGHT = state(names={"a", "b"}, have={"a": "1", "b": "2"}, in_flight={"7": {"b": ("2", "1")}}, last_nonce="7")


class ReqCase(NamedTuple):
    name: str
    state: DeltaTypeState | None
    request: DeltaRequest
    outcome: dict[str, Any]
    expected: dict[str, Any]


REQUESTS = [
    ReqCase("first CDS request with no names is wildcard", None, DeltaRequest(T.CLUSTER),
            {"respond": True, "opened": True}, {"wildcard": True, "names": set()}),
    ReqCase("first LDS request with * is wildcard", None, DeltaRequest(T.LISTENER, subscribe=("*",)),
            {"respond": True}, {"wildcard": True}),
    ReqCase("first EDS request with no names is not wildcard", None, DeltaRequest(T.ENDPOINT),
            {"respond": True, "opened": True}, {"wildcard": False, "names": set()}),
    ReqCase("first CDS request naming clusters is not wildcard", None, DeltaRequest(T.CLUSTER, subscribe=("c1",)),
            {"force": frozenset({"c1"})}, {"wildcard": False, "names": {"c1"}}),
    ReqCase("named subscribe forces a send", state(names={"a"}, have={"a": "1"}),
            DeltaRequest(T.ENDPOINT, subscribe=("b",)), {"respond": True, "force": frozenset({"b"})},
            {"names": {"a", "b"}}),
    ReqCase("re-subscribing a name the client has forces it again", state(names={"a"}, have={"a": "1"}),
            DeltaRequest(T.ENDPOINT, subscribe=("a",)), {"force": frozenset({"a"})}, {"have": {"a": "1"}}),
    ReqCase("unsubscribe makes the client forget the name", state(names={"a", "b"}, have={"a": "1", "b": "1"}),
            DeltaRequest(T.ENDPOINT, unsubscribe=("b",)), {"respond": True}, {"names": {"a"}, "have": {"a": "1"}}),
    ReqCase("unsubscribe * leaves explicit names", state(wildcard=True, names={"x"}),
            DeltaRequest(T.CLUSTER, unsubscribe=("*",)), {"respond": True}, {"wildcard": False, "names": {"x"}}),
    ReqCase("reconnect with initial versions: the client has them", None,
            DeltaRequest(T.ENDPOINT, subscribe=("a", "b"), initial_versions={"a": "1"}),
            {"force": frozenset({"b"}), "opened": True}, {"have": {"a": "1"}, "names": {"a", "b"}}),
    ReqCase("ACK of the nonce in flight", IN_FLIGHT, DeltaRequest(T.ENDPOINT, response_nonce="7"),
            {"acked": True, "respond": False}, {"in_flight": {}, "have": {"a": "1", "b": "2"}}),
    ReqCase("NACK restores the previous view and rejects the version", IN_FLIGHT,
            DeltaRequest(T.ENDPOINT, response_nonce="7", error_message="bad b"),
            {"nacked": True, "respond": False},
            {"have": {"a": "1", "b": "1"}, "rejected": {"b": "2"}, "nack_message": "bad b", "in_flight": {}}),
    ReqCase("ACK of an unknown nonce is stale", IN_FLIGHT, DeltaRequest(T.ENDPOINT, response_nonce="3"),
            {"stale": True, "acked": False}, {"have": {"a": "1", "b": "2"}}),
    ReqCase("NACK of an unknown nonce records nothing", IN_FLIGHT,
            DeltaRequest(T.ENDPOINT, response_nonce="3", error_message="old"), {"stale": True, "nacked": False},
            {"rejected": {}, "nack_message": ""}),
    ReqCase("an ACK that also subscribes responds", IN_FLIGHT,
            DeltaRequest(T.ENDPOINT, response_nonce="7", subscribe=("c",)),
            {"acked": True, "respond": True, "force": frozenset({"c"})}, {"names": {"a", "b", "c"}}),
    ReqCase("first VHDS request naming nothing is wildcard (as Envoy opens it)", None, DeltaRequest(T.VIRTUAL_HOST),
            {"respond": True, "opened": True}, {"wildcard": True, "namespaced": True}),
    ReqCase("VHDS subscribing a route configuration forces its namespace", None,
            DeltaRequest(T.VIRTUAL_HOST, subscribe=("rc",)), {"force": frozenset({"rc"})},
            {"wildcard": False, "names": {"rc"}, "namespaced": True}),
    ReqCase("VHDS reconnect that kept hosts of the namespace: nothing forced", None,
            DeltaRequest(T.VIRTUAL_HOST, subscribe=("rc",), initial_versions={"rc/a": "1"}), {"force": frozenset()},
            {"names": {"rc"}}),
    ReqCase("VHDS unsubscribing a namespace forgets its hosts", state(names={"rc"}, namespaced=True,
                                                                    have={"rc/a": "1", "other/b": "1"}),
            DeltaRequest(T.VIRTUAL_HOST, unsubscribe=("rc",)), {"respond": True}, {"names": set()}),
]


@pytest.mark.parametrize("case", REQUESTS, ids=[c.name for c in REQUESTS])
def test_on_request(case: ReqCase) -> None:
    st, outcome = on_request(copy.deepcopy(case.state), case.request)
    for k, v in case.outcome.items():
        assert getattr(outcome, k) == v, k
    for k, v in case.expected.items():
        assert getattr(st, k) == v, k


class DiffCase(NamedTuple):
    name: str
    state: DeltaTypeState
    current: dict[str, str]
    force: frozenset[str]
    send: list[str]
    remove: list[str]


DIFFS = [
    DiffCase("wildcard sends everything new", state(wildcard=True), {"a": "1", "b": "1"}, frozenset(), ["a", "b"], []),
    DiffCase("only changed versions are sent", state(wildcard=True, have={"a": "1", "b": "1"}),
             {"a": "1", "b": "2"}, frozenset(), ["b"], []),
    DiffCase("a resource gone from the wildcard is removed", state(wildcard=True, have={"a": "1", "b": "1"}),
             {"a": "1"}, frozenset(), [], ["b"]),
    DiffCase("named: only the subscribed names", state(names={"a"}), {"a": "1", "b": "1"}, frozenset(), ["a"], []),
    DiffCase("named and absent: removed once to say it does not exist", state(names={"a", "z"}), {"a": "1"},
             frozenset(), ["a"], ["z"]),
    DiffCase("absent already told: not repeated", state(names={"z"}, told_absent={"z"}), {}, frozenset(), [], []),
    DiffCase("a rejected version is not re-sent", state(names={"a"}, have={"a": "1"}, rejected={"a": "2"}),
             {"a": "2"}, frozenset(), [], []),
    DiffCase("a newer version than the rejected one is sent", state(names={"a"}, have={"a": "1"}, rejected={"a": "2"}),
             {"a": "3"}, frozenset(), ["a"], []),
    DiffCase("forced names are sent at the same version (EDS after CDS)", state(names={"a", "b"},
                                                                               have={"a": "1", "b": "1"}),
             {"a": "1", "b": "1"}, frozenset({"a"}), ["a"], []),
    DiffCase("initial versions that still match send nothing", state(wildcard=True, have={"a": "1"}), {"a": "1"},
             frozenset(), [], []),
    DiffCase("initial versions for resources that are gone are removed", state(wildcard=True, have={"a": "1", "x": "9"}),
             {"a": "1"}, frozenset(), [], ["x"]),
    DiffCase("VHDS namespace: every host named NS/... is sent", state(names={"rc"}, namespaced=True),
             {"rc/a": "1", "rc/b": "1", "other/c": "1"}, frozenset(), ["rc/a", "rc/b"], []),
    DiffCase("VHDS namespace: a namespace is never reported absent", state(names={"rc", "gone"}, namespaced=True),
             {"rc/a": "1"}, frozenset(), ["rc/a"], []),
    DiffCase("VHDS namespace: a host that went is removed", state(names={"rc"}, namespaced=True,
                                                                  have={"rc/a": "1", "rc/b": "1"}),
             {"rc/a": "1"}, frozenset(), [], ["rc/b"]),
    DiffCase("VHDS namespace forced: every host re-sent", state(names={"rc"}, namespaced=True, have={"rc/a": "1"}),
             {"rc/a": "1"}, frozenset({"rc"}), ["rc/a"], []),
]


@pytest.mark.parametrize("case", DIFFS, ids=[c.name for c in DIFFS])
def test_diff(case: DiffCase) -> None:
    resources = {n: R(n, v) for n, v in case.current.items()}
    send, remove, _ = diff(case.state, current=resources, lookup=resources.get, force=case.force)
    assert [r.name for r in send] == case.send
    assert remove == case.remove


def test_diff_with_a_shared_base_looks_only_at_what_changed() -> None:
    """Re-based on the snapshot's dict, the next diff examines only the names the snapshot says changed."""
    old = {n: R(n, "1") for n in ("a", "b", "c")}
    st = state(wildcard=True)
    send, remove, examined = diff(st, current=old, lookup=old.get)
    rebase(st, current=old, examined=examined, sent=send, removed=remove)
    assert st.view.base is old and st.view.overrides == {}, "in sync: the view is the shared dict"
    new = {"a": old["a"], "b": R("b", "2")}  # b changed, c removed
    send, remove, examined = diff(st, current=new, lookup=new.get, changed=frozenset({"b", "c"}))
    assert [r.name for r in send] == ["b"] and remove == ["c"] and examined == {"b", "c"}
    rebase(st, current=new, examined=examined, sent=send, removed=remove)
    assert st.view.base is new and st.view.overrides == {} and st.have == {"a": "1", "b": "2"}


def test_record_sent_then_nack_round_trip() -> None:
    st = state(names={"a"}, have={"a": "1"})
    current = {"a": R("a", "2")}
    send, remove, examined = diff(st, current=current, lookup=current.get)
    before = rebase(st, current=current, examined=examined, sent=send, removed=remove)
    record_sent(st, nonce="1", before=before, sent=send, removed=remove)
    assert st.have == {"a": "2"} and st.last_nonce == "1"
    st, outcome = on_request(st, DeltaRequest(T.ENDPOINT, response_nonce="1", error_message="no"))
    assert outcome.nacked and st.have == {"a": "1"} and st.rejected == {"a": "2"}
    send, _, _ = diff(st, current=current, lookup=current.get)
    assert send == [], "the NACKed version is never re-sent"


def test_case_names_are_unique() -> None:
    assert len({c.name for c in REQUESTS}) == len(REQUESTS) and len({c.name for c in DIFFS}) == len(DIFFS)
