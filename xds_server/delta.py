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
* ACK and NACK are per nonce.  A NACK restores the client's view from before
  that response, and the rejected versions are not sent again; a newer version
  is (never a resend loop).
* A subscribed name that does not exist is reported once in
  ``removed_resources`` ("does not exist"), not on every push.
* VHDS resources are named ``ROUTE_CONFIG/HOST`` and matched by namespace.
  Envoy 1.40 opens VHDS with a request naming nothing (the legacy wildcard:
  every host of every route configuration, which its watch map sorts by
  namespace); a subscription that names ``http.8080`` is taken as one to
  every resource named ``http.8080/...``, and the namespace itself is never
  reported absent.

**What the client has** is kept as a *view*: a shared ``base`` (a snapshot's
own dict of resources, shared by every stream of the node class) plus a few
per-stream ``overrides``.  After each diff the view is re-based on the current
snapshot's dict, so a thousand streams in sync hold one dict between them, and
the next diff looks only at the names the snapshot says changed (plus
overrides and forced names) instead of every resource.

:func:`on_request` folds a request into a stream's :class:`DeltaTypeState`;
:func:`diff` says what to send; :func:`rebase` and :func:`record_sent` fold a
response in.  None of them does I/O.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from translators import type_urls

#: responses remembered per type while waiting for their ACK/NACK
IN_FLIGHT_LIMIT = 64


@dataclass(frozen=True, slots=True)
class View:
    """What a client has: ``overrides[name]`` (None: nothing) where given, else ``base[name].version``."""

    base: Mapping | None = None
    overrides: Mapping[str, str | None] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        if name in self.overrides:
            return self.overrides[name]
        if self.base is not None:
            r = self.base.get(name)
            if r is not None:
                return r.version
        return None

    def items(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """``name -> version`` of everything held (restricted to ``names``); O(size), for status views."""
        out = {n: r.version for n, r in (self.base or {}).items()} if names is None else \
            {n: v for n in names if (v := self.get(n)) is not None}
        if names is None:
            for n, v in self.overrides.items():
                if v is None:
                    out.pop(n, None)
                else:
                    out[n] = v
        return out


@dataclass(slots=True)
class DeltaTypeState:
    wildcard: bool = False
    #: names subscribed explicitly (besides the wildcard); a frozenset, so identical subscriptions of many
    #: streams can share one object
    names: frozenset[str] = frozenset()
    view: View = field(default_factory=View)
    #: versions the client rejected: not sent again
    rejected: dict[str, str] = field(default_factory=dict)
    #: names already reported as not existing
    told_absent: set[str] = field(default_factory=set)
    #: nonce -> (the view before that response, name -> version it carried)
    in_flight: dict[str, tuple[View, dict[str, str]]] = field(default_factory=dict)
    last_nonce: str = ""
    #: status: the view after the last response, the view when everything sent was ACKed, the NACKed one
    sent_view: View | None = None
    acked_view: View | None = None
    nacked_view: View | None = None
    nack_message: str = ""
    _versions: dict[int, tuple[View, str]] = field(default_factory=dict, repr=False)

    #: names are namespaces (VHDS): ``names`` holds ``NS`` and subscribes to every ``NS/...``
    namespaced: bool = False

    def subscribed(self, name: str) -> bool:
        return self.wildcard or name in self.names or \
            (self.namespaced and type_urls.namespace_of(name) in self.names)

    def _filter(self) -> Iterable[str] | None:
        """The names to restrict a view to (None: everything it holds)."""
        return None if self.wildcard or self.namespaced else self.names

    @property
    def have(self) -> dict[str, str]:
        """Everything the client has that it subscribes to (O(size); tests and status)."""
        items = self.view.items(self._filter())
        return {n: v for n, v in items.items() if self.subscribed(n)} if self.namespaced and not self.wildcard \
            else items

    def version_of(self, view: View | None) -> str:
        """A summary version of a view (what the client has of its subscription), for status views:
        computed on demand and remembered per view."""
        if view is None:
            return ""
        hit = self._versions.get(id(view))
        if hit is None or hit[0] is not view:
            items = view.items(self._filter())
            hit = (view, summary_version(items))
            if len(self._versions) > 8:
                self._versions.clear()
            self._versions[id(view)] = hit
        return hit[1]

    @property
    def last_version(self) -> str:
        return self.version_of(self.sent_view)

    @property
    def acked_version(self) -> str:
        return self.version_of(self.acked_view)

    @property
    def nacked_version(self) -> str:
        return self.version_of(self.nacked_view)


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


def _with(view: View, changes: Mapping[str, str | None]) -> View:
    return View(view.base, {**view.overrides, **changes})


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
            before, sent = carried
            st.rejected.update(sent)
            st.nacked_view = st.sent_view
            st.nack_message = req.error_message
            if req.response_nonce == st.last_nonce:
                st.view = before  # the client kept what it had before this response
            else:
                st.view = View()  # an older response: what the client kept is not known; resend all
            st.in_flight.clear()
            st.sent_view = st.view
        else:
            acked = True
            for name, version in carried[1].items():
                if st.rejected.get(name) == version:
                    del st.rejected[name]
            if not st.in_flight:
                st.acked_view = st.sent_view
                st.nacked_view = None
                st.nack_message = ""
    force: set[str] = set()
    changed = first
    if first:
        st.namespaced = req.type_url in type_urls.NAMESPACED_TYPES
        st.view = View(None, {str(k): str(v) for k, v in req.initial_versions.items()})
        st.sent_view = st.acked_view = st.view
        if not req.subscribe and (req.type_url in type_urls.WILDCARD_TYPES or st.namespaced):
            # the legacy wildcard: a first LDS/CDS request naming nothing; Envoy's VHDS asks so too, and
            # sorts the hosts into route configurations by namespace itself
            st.wildcard = True
    forget: dict[str, None] = {}
    names = set(st.names) if req.subscribe or req.unsubscribe else None
    for name in req.subscribe:
        changed = True
        if name == "*":
            if not st.wildcard and not first:
                # the view vouches only for subscribed names: keep those, look at everything again
                st.view = View(None, {n: v for n in st.names if (v := st.view.get(n)) is not None})
            st.wildcard = True
            continue
        names.add(name)
        st.told_absent.discard(name)
        kept = name in req.initial_versions or (st.namespaced and any(
            type_urls.namespace_of(k) == name for k in req.initial_versions))
        if not (first and kept):  # a reconnect that kept it gets only what differs
            force.add(name)
    for name in req.unsubscribe:
        changed = True
        if name == "*":
            st.wildcard = False
            continue
        names.discard(name)
        st.told_absent.discard(name)
        force.discard(name)
        if not st.wildcard:
            forget[name] = None  # the client forgets it; a later subscribe sends it again
            st.rejected.pop(name, None)
            if st.namespaced:  # ... and everything in that namespace
                for held in st.view.items():
                    if type_urls.namespace_of(held) == name:
                        forget[held] = None
                        st.rejected.pop(held, None)
    if names is not None and names != st.names:
        st.names = frozenset(names)
    if forget:
        st.view = _with(st.view, forget)
    return st, RequestOutcome(acked=acked, nacked=nacked, stale=stale, respond=changed, force=frozenset(force),
                              opened=first)


def diff(st: DeltaTypeState, *, current: Mapping[str, object], lookup: Callable[[str], "object | None"],
         force: Iterable[str] = (), changed: frozenset[str] | None = None) -> tuple[list, list[str], set[str]]:
    """``(resources to send, names to remove, names examined)``.

    ``current`` is every resource of the type (a snapshot's dict); ``lookup(name)`` finds one by name
    (proxyless names resolve lazily).  ``changed``: the names whose resource differs between the view's
    base and ``current`` (the snapshot knows it); then only those, the overrides and ``force`` are
    examined.  A resource has ``name`` and ``version``.
    """
    force = set(force)
    view = st.view
    spaces = st.names if st.namespaced and not st.wildcard else frozenset()
    if spaces and force & spaces:  # subscribing to a namespace asks for everything in it
        force |= {n for n in current if type_urls.namespace_of(n) in force}
    if changed is not None and view.base is not None:
        candidates = set(changed) | force | set(view.overrides)
        if not st.wildcard:
            candidates = {n for n in candidates if st.subscribed(n) or view.get(n) is not None}
    else:
        candidates = (set(current) if st.wildcard else set()) | (set() if spaces else st.names) | \
            {n for n, v in view.overrides.items() if v is not None} | \
            (set(view.base) if view.base is not None and st.wildcard else set())
        if spaces:
            candidates |= {n for n in current if type_urls.namespace_of(n) in spaces}
            if view.base is not None:
                candidates |= {n for n in view.base if type_urls.namespace_of(n) in spaces}
        elif view.base is not None and not st.wildcard:
            candidates |= {n for n in st.names if n in view.base}
    send = []
    remove: list[str] = []
    for name in sorted(candidates):
        subscribed = st.subscribed(name)
        r = None
        if subscribed:
            r = current.get(name)
            if r is None and name in st.names:
                r = lookup(name)
        have = view.get(name)
        if r is not None:
            version = r.version  # type: ignore[attr-defined]
            if name in force or have != version:
                if name not in force and st.rejected.get(name) == version:
                    continue  # NACKed: never re-sent
                send.append(r)
        elif have is not None:
            remove.append(name)
        elif name in st.names and name not in st.told_absent and not spaces:
            remove.append(name)  # "does not exist", told once (a namespace is not a resource)
    return send, remove, candidates


def rebase(st: DeltaTypeState, *, current: Mapping[str, object], examined: set[str], sent: Iterable,
           removed: Iterable[str]) -> View:
    """The client's view after ``sent``/``removed``, re-based on ``current``: only names whose version the
    client holds differently from ``current`` stay as overrides.  Returns the view before."""
    before = st.view
    sent_by_name = {r.name: r for r in sent}  # type: ignore[attr-defined]
    removed = set(removed)
    overrides: dict[str, str | None] = {}
    for name in examined | set(before.overrides):
        if name in sent_by_name:
            have = sent_by_name[name].version  # type: ignore[attr-defined]
        elif name in removed:
            have = None
        else:
            have = before.get(name)
        r = current.get(name)
        in_base = r.version if r is not None else None  # type: ignore[attr-defined]
        if have != in_base:
            overrides[name] = have
    st.view = View(current, overrides)
    return before


def record_sent(st: DeltaTypeState, *, nonce: str, before: View, sent: Iterable, removed: Iterable[str]) -> None:
    """A response went out: remember it until its ACK or NACK."""
    carried = {r.name: r.version for r in sent}  # type: ignore[attr-defined]
    for name in carried:
        st.told_absent.discard(name)
    for name in removed:
        if name in st.names:
            st.told_absent.add(name)
    st.in_flight[nonce] = (before, carried)
    while len(st.in_flight) > IN_FLIGHT_LIMIT:
        st.in_flight.pop(next(iter(st.in_flight)))
    st.last_nonce = nonce
    st.sent_view = st.view
