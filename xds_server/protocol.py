"""The SotW ACK/NACK decision as a pure function.

Follows Envoy's xds_protocol document ("ACK/NACK and resource type instance
version", "When to send an update", "Resource warming"):

* A request whose ``response_nonce`` is not the nonce of the last response we
  sent on this stream for this type is **stale**: ignore it entirely.
* A request with ``error_detail`` is a **NACK** of the last response: record
  it, keep serving the same version, never re-send it (we respond again only
  if the subscription changed).
* A request with the current nonce and no error is an **ACK**: record the
  version (only if it is the version that response carried); respond only
  when the subscribed names changed.
* A request with no nonce opens (or re-opens after reconnect) the
  subscription: respond with what we have.

Wildcard: for LDS and CDS an empty ``resource_names`` (or ``*``) means all
resources.  For RDS and EDS, names are always explicit.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from translators import type_urls


class Decision(str, enum.Enum):
    RESPOND = "respond"   # send the current resources for this type
    ACK = "ack"           # recorded, nothing to send
    NACK = "nack"         # recorded, nothing to send
    STALE = "stale"       # ignored


@dataclass(frozen=True, slots=True)
class TypeState:
    """What one stream knows about one type URL."""

    names: frozenset[str] | None = frozenset()  # None: wildcard
    last_version: str = ""   # version of the last response sent
    last_nonce: str = ""     # nonce of the last response sent
    acked_version: str = ""
    nacked_version: str = ""
    nack_message: str = ""

    @property
    def wildcard(self) -> bool:
        return self.names is None


@dataclass(frozen=True, slots=True)
class Request:
    """The fields of a DiscoveryRequest that the decision depends on."""

    type_url: str
    version_info: str = ""
    resource_names: tuple[str, ...] = ()
    response_nonce: str = ""
    error_message: str | None = None


def subscribed_names(type_url: str, names: tuple[str, ...]) -> frozenset[str] | None:
    if type_url in type_urls.WILDCARD_TYPES and (not names or "*" in names):
        return None
    return frozenset(names)


def should_respond(state: TypeState | None, request: Request) -> tuple[Decision, TypeState]:
    """Decide what to do with ``request`` given the stream's ``state`` for its type."""
    names = subscribed_names(request.type_url, request.resource_names)
    if state is None or not request.response_nonce:
        base = state or TypeState()
        return Decision.RESPOND, replace(base, names=names)
    if request.response_nonce != state.last_nonce:
        return Decision.STALE, state
    changed = names != state.names
    if request.error_message is not None:
        new = replace(state, names=names, nacked_version=state.last_version, nack_message=request.error_message)
        return (Decision.RESPOND if changed else Decision.NACK), new
    # An ACK carries the version it applies.  One that names a version we never sent on this stream
    # (a confused or hostile client) acknowledges nothing: the acked version stays what it was.
    acked = request.version_info if request.version_info == state.last_version else state.acked_version
    new = replace(state, names=names, acked_version=acked, nacked_version="", nack_message="")
    return (Decision.RESPOND if changed else Decision.ACK), new
