"""Incremental (Delta) xDS decisions as pure functions.

Follows Envoy's xds_protocol document, "Incremental xDS":

* Each resource has its own version; a response carries only resources whose
  version differs from what the client has, and ``removed_resources`` for
  what it must drop.
* Subscriptions change by ``resource_names_subscribe`` /
  ``resource_names_unsubscribe``.  ``*`` is the wildcard; a first request for
  LDS or CDS with no names is wildcard too (the legacy form).  Unsubscribing
  a name makes the client forget it: subscribing again always re-sends it
  (go-control-plane #1450).
* A name the client subscribes to explicitly is sent even if the client
  already has that version: a subscription is a request for the current
  state (Istio #41494).
* ``initial_resource_versions`` on a stream's first request says what the
  client kept across a reconnect; only what differs is sent, and what no
  longer exists is removed.
* ACK and NACK are per nonce.  A NACK restores the client's previous view of
  the resources that response carried, and the rejected versions are not
  sent again; a newer version is (never a resend loop).
* A subscribed name that does not exist is reported once in
  ``removed_resources`` ("does not exist"), not on every push.

:func:`on_request` folds a request into a stream's :class:`DeltaTypeState`;
:func:`diff` says what to send for a view of the current resources;
:func:`record_sent` folds a response in.  None of them does I/O.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from translators import type_urls

#: responses remembered per type while waiting for their ACK/NACK
IN_FLIGHT_LIMIT = 64


@dataclass(slots=True)
class DeltaTypeState:
    wildcard: bool = False
    #: names subscribed explicitly (besides the wildcard)
    names: set[str] = field(default_factory=set)
    #: what the client has: name -> version (as sent; a NACK restores the previous view)
    have: dict[str, str] = field(default_factory=dict)
    #: versions the client rejected: not sent again
    rejected: dict[str, str] = field(default_factory=dict)
    #: names already reported as not existing
    told_absent: set[str] = field(default_factory=set)
    #: nonce -> {name: (version sent or None for a removal, the version the client had before)}
    in_flight: dict[str, dict[str, tuple[str | None, str | None]]] = field(default_factory=dict)
    last_nonce: str = ""
    #: summary versions for status views: a hash of ``have`` after the last response, when ACKed, when NACKed
    last_version: str = ""
    acked_version: str = ""
    nacked_version: str = ""
    nack_message: str = ""

    def subscribed(self, name: str) -> bool:
        return self.wildcard or name in self.names


@dataclass(frozen=True, slots=True)
class DeltaRequest:
    type_url: str
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    initial_versions: Mapping[str, str] = field(default_factory=dict)
    response_nonce: str = ""
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    #: the request ACKed a response we sent
    acked: bool = False
    #: the request NACKed a response we sent (the message is in the state)
    nacked: bool = False
    #: the nonce is not one we are waiting for (already answered, or unknown): its ACK part is ignored
    stale: bool = False
    #: the subscription changed or was opened: compute and send a response
    respond: bool = False
    #: names to send even if the client has their version (explicit subscriptions)
    force: frozenset[str] = frozenset()
    #: the first request for this type on the stream: answer it even when nothing differs, so the client
    #: knows its initial state is complete (an empty wildcard LDS, or a reconnect that changed nothing)
    opened: bool = False


def summary_version(have: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(have):
        h.update(name.encode())
        h.update(b"\0")
        h.update(have[name].encode())
        h.update(b"\n")
    return h.hexdigest()[:16] if have else ""


def on_request(state: DeltaTypeState | None, req: DeltaRequest) -> tuple[DeltaTypeState, RequestOutcome]:
    """Fold one DeltaDiscoveryRequest into the stream's state for its type."""
    first = state is None
    st = state if state is not None else DeltaTypeState()
    acked = nacked = stale = False
    if req.response_nonce:
        carried = st.in_flight.pop(req.response_nonce, None)
        if carried is None:
            stale = True
        elif req.error_message is not None:
            nacked = True
            for name, (sent, previous) in carried.items():
                if sent is not None:
                    st.rejected[name] = sent
                if previous is None:
                    st.have.pop(name, None)
                else:
                    st.have[name] = previous
            st.nacked_version = st.last_version
            st.nack_message = req.error_message
            st.last_version = summary_version(st.have)
        else:
            acked = True
            for name, (sent, _) in carried.items():
                if sent is not None and st.rejected.get(name) == sent:
                    st.rejected.pop(name, None)
            if not st.in_flight:
                st.acked_version = st.last_version
                st.nacked_version = ""
                st.nack_message = ""
    force: set[str] = set()
    changed = first
    if first:
        st.have = {str(k): str(v) for k, v in req.initial_versions.items()}
        st.last_version = st.acked_version = summary_version(st.have)
        if not req.subscribe and req.type_url in type_urls.WILDCARD_TYPES:
            st.wildcard = True  # the legacy wildcard: a first LDS/CDS request naming nothing
    for name in req.subscribe:
        changed = True
        if name == "*":
            st.wildcard = True
            continue
        st.names.add(name)
        st.told_absent.discard(name)
        if not (first and name in req.initial_versions):
            force.add(name)
    for name in req.unsubscribe:
        changed = True
        if name == "*":
            st.wildcard = False
            continue
        st.names.discard(name)
        st.told_absent.discard(name)
        force.discard(name)
        if not st.wildcard:
            st.have.pop(name, None)  # the client forgets it; a later subscribe sends it again
            st.rejected.pop(name, None)
    return st, RequestOutcome(acked=acked, nacked=nacked, stale=stale, respond=changed, force=frozenset(force),
                              opened=first)


def diff(st: DeltaTypeState, *, everything: Callable[[], Mapping[str, "object"]],
         lookup: Callable[[str], "object | None"], force: Iterable[str] = ()) -> tuple[list, list[str]]:
    """``(resources to send, names to remove)`` for the current view.

    ``everything()`` is every resource of the type (used for the wildcard); ``lookup(name)`` finds one
    (proxyless names resolve lazily).  A resource has ``name`` and ``version``.
    """
    force = set(force)
    send = []
    remove: list[str] = []
    current: dict[str, object] = dict(everything()) if st.wildcard else {}
    for name in st.names:
        if name not in current:
            found = lookup(name)
            if found is not None:
                current[name] = found
    for name in sorted(current):
        r = current[name]
        version = r.version  # type: ignore[attr-defined]
        if name in force or st.have.get(name) != version:
            if name not in force and st.rejected.get(name) == version:
                continue  # NACKed: never re-sent
            send.append(r)
    for name in sorted(st.have):
        if name not in current:
            remove.append(name)
    for name in sorted(st.names):
        if name not in current and name not in st.have and name not in st.told_absent:
            remove.append(name)  # "does not exist", told once
    return send, remove


def record_sent(st: DeltaTypeState, *, nonce: str, sent: Iterable, removed: Iterable[str]) -> None:
    """Fold a response into the state (optimistically: the client has what we sent until it NACKs)."""
    carried: dict[str, tuple[str | None, str | None]] = {}
    for r in sent:
        name, version = r.name, r.version  # type: ignore[attr-defined]
        carried[name] = (version, st.have.get(name))
        st.have[name] = version
        st.told_absent.discard(name)
    for name in removed:
        carried[name] = (None, st.have.pop(name, None))
        if name in st.names:
            st.told_absent.add(name)
    st.in_flight[nonce] = carried
    while len(st.in_flight) > IN_FLIGHT_LIMIT:
        st.in_flight.pop(next(iter(st.in_flight)))
    st.last_nonce = nonce
    st.last_version = summary_version(st.have)
