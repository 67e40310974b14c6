"""The Aggregated Discovery Service, state of the world.

One coroutine per stream.  It waits for whichever comes first: the next
request from the client, or a newer snapshot for the stream's node class.

* Requests go through :func:`xds_server.protocol.should_respond`.
* A new snapshot is pushed type by type in make-before-break order (CDS, EDS,
  LDS, RDS), and only for types whose version *for this stream's
  subscription* differs from what the stream last received.  A NACKed
  version is therefore never re-sent, and a slow stream simply skips
  intermediate snapshots: nothing queues up behind a blocked write.
* After a CDS push that changes clusters, EDS for those clusters follows even
  when their endpoints did not change: Envoy keeps an updated EDS cluster
  warming until it gets a ``ClusterLoadAssignment`` for it (xds_protocol,
  "Eventual consistency considerations"; go-control-plane and Istio do the
  same).
* RDS and EDS pushes carry only the resources that changed since this stream
  last got them: for those types absence means "unchanged", not "removed"
  (xds_protocol, "Knowing When a Requested Resource Does Not Exist").  After
  a NACK the next push is complete again.
* Responses are assembled from pre-serialized bytes
  (:func:`xds_server.snapshot.encode_response`) and sent through an identity
  serializer.

Nothing a client sends may take the server down: requests, names and node
metadata have limits (:class:`Limits`, ``RESOURCE_EXHAUSTED`` beyond them),
NACK text is bounded, escaped and redacted before it is stored or logged, and
unknown type URLs keep no state.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import AsyncIterator, Callable, Iterable, Mapping

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from translators import type_urls
from translators.node import ENVOY, GRPC, NodeInfo
from xds_server.auth import AuthError, Authenticators, Identity, bind
from translators.proxyless_view import INBOUND_PREFIX
from xds_server.cache import SnapshotCache, TooManyClasses
from xds_server.nodes import claimed_namespace, claimed_service_account, node_info
from xds_server.protocol import Decision, Request, TypeState, should_respond
from xds_server.metrics import XdsMetrics
from xds_server.redact import redact
from xds_server import delta
from xds_server.snapshot import Resource, Snapshot, encode_delta_response, encode_response, version_of

log = logging.getLogger(__name__)

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
SOTW_METHOD = "StreamAggregatedResources"
DELTA_METHOD = "DeltaAggregatedResources"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may ask of the server."""

    #: listener and route names in one request: a proxyless client's names are resolved one by one
    names_per_request: int = 10_000
    #: cluster, endpoint and secret names in one request: plain lookups, and a gateway Envoy at 10,000
    #: services subscribes to 30,000 endpoint assignments
    lookup_names_per_request: int = 100_000
    #: resource names subscribed on one stream, over all types
    names_per_stream: int = 200_000
    #: serialized size of the Node a client sends
    node_bytes: int = 64 * 1024
    #: characters of NACK text kept and logged
    nack_chars: int = 4096
    #: an identical NACK is logged once per this many seconds, with a count
    nack_log_interval: float = 10.0
    #: names resolved on the event loop; larger selections run in a worker thread
    inline_names: int = 64
    #: responses of at least this size are written ``big_writes`` at a time (each waits at most
    #: ``big_write_wait`` seconds for its turn)
    big_response_bytes: int = 1 << 20
    big_writes: int = 4
    big_write_wait: float = 2.0


#: types whose names a proxyless client chooses and the server resolves one by one
_RESOLVED_TYPES = frozenset({type_urls.LISTENER, type_urls.ROUTE})


class LimitExceeded(Exception):
    """A request over a :class:`Limits` value: the stream ends with RESOURCE_EXHAUSTED."""


def sanitize(text: str, *, limit: int) -> str:
    """NACK text as it may be stored and logged: bounded, private keys redacted, control characters escaped
    so that it cannot forge log lines."""
    text = redact(text[: limit * 16])
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} more characters]"
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


@dataclass(slots=True)
class NackRecord:
    time: float
    node_id: str
    type_url: str
    version: str
    message: str
    #: the resources the NACK is about (named in the message, else every one the rejected response carried)
    resources: list[str] = field(default_factory=list)
    #: the config objects they were built from: ``{"resource", "file", "kind", "namespace", "name"}``
    sources: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"time": self.time, "node": self.node_id, "type": type_urls.short(self.type_url),
                "version": self.version, "message": self.message, "resources": list(self.resources),
                "sources": [dict(s) for s in self.sources]}


#: nonces remembered per type for convergence timing, and resources traced per NACK
_NONCES_KEPT = 64
_TRACED_NAMES = 50


@dataclass(slots=True)
class TypeWatch:
    """Observability of one type on one stream (``/debug/syncz``, ``/debug/config_dump``, metrics); the
    protocol never reads it."""

    #: wall time of the last response, and of the oldest response not ACKed yet (None: all ACKed)
    sent_at: float = 0.0
    unacked_since: float | None = None
    last_nonce: str = ""
    #: SotW: the version of the last response (Delta: see DeltaTypeState.last_version, computed on demand)
    version: str = ""
    #: nonce -> snapshot generation it was built from (convergence), newest last
    nonces: dict[str, int] = field(default_factory=dict)
    acked_generation: int = -1
    #: names the last response carried (what a NACK of it is about)
    payload: "tuple[str, ...] | Mapping[str, Resource]" = ()
    #: SotW: the mapping the stream last got, and the subscription filtering it (None: all)
    resources: Mapping[str, Resource] | None = None
    subscribed: frozenset[str] | None = None
    #: Delta: the client's view after the last response, and the resources it holds that its base lacks
    view: "delta.View | None" = None
    extras: dict[str, Resource] = field(default_factory=dict)
    wildcard: bool = False
    #: the NACK of the last response, until a later one is ACKed
    nack: NackRecord | None = None

    def held(self) -> dict[str, Resource | None]:
        """What the client was last sent, name -> Resource (None: the server no longer has that version)."""
        if self.view is not None:
            base = self.view.base or {}
            out: dict[str, Resource | None] = {}
            for name, version in sorted(self.view.items(None if self.wildcard else self.subscribed).items()):
                r = base.get(name)
                out[name] = r if r is not None and r.version == version else self.extras.get(name)
            return out
        if self.resources is None:
            return {}
        if self.subscribed is None:
            return dict(sorted(self.resources.items()))
        return {n: self.resources[n] for n in sorted(self.subscribed) if n in self.resources}


@dataclass(slots=True)
class StreamInfo:
    stream_id: int
    node_id: str = ""
    node: NodeInfo | None = None
    states: dict[str, TypeState] = field(default_factory=dict)
    #: Delta streams: per-type incremental state instead of ``states``
    deltas: dict[str, delta.DeltaTypeState] = field(default_factory=dict)
    #: per type, what this stream last got: the snapshot's dict of that type (shared), or name -> Resource
    sent: dict[str, Mapping[str, Resource]] = field(default_factory=dict)
    connected_at: float = field(default_factory=time.time)
    #: the verified identity (None: --insecure-xds, claims trusted)
    identity: "Identity | None" = None
    #: per type: what observability needs (never read by the protocol)
    watch: dict[str, TypeWatch] = field(default_factory=dict)
    connected_mono: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict:
        types = {type_urls.short(t): {"sent": s.last_version, "acked": s.acked_version, "nacked": s.nacked_version,
                                      "subscribed": "*" if s.wildcard else sorted(s.names or ())}
                 for t, s in self.states.items()}
        for t, d in self.deltas.items():
            types[type_urls.short(t)] = {"sent": d.last_version, "acked": d.acked_version, "nacked": d.nacked_version,
                                         "subscribed": "*" if d.wildcard and not d.names
                                         else (["*"] if d.wildcard else []) + sorted(d.names),
                                         "resources": len(d.have)}
        return {"stream": self.stream_id, "node": self.node_id, "mode": "delta" if self.deltas else "sotw",
                "flavour": self.node.flavour if self.node else "", "namespace": self.node.namespace if self.node else "",
                "labels": dict(self.node.labels) if self.node else {},
                "identity": str(self.identity) if self.identity else "", "types": types}


def looks_proxyless(req: discovery_pb2.DiscoveryRequest) -> bool:
    """A first LDS request naming ``host:port`` listeners comes from a gRPC client, whatever its metadata."""
    names = list(req.resource_names)
    return (req.type_url == type_urls.LISTENER and bool(names)
            and all(n.startswith(INBOUND_PREFIX) or (":" in n and n != "*") for n in names))


class _NackLog:
    """Logs each distinct NACK once per interval, with how many identical ones were suppressed."""

    def __init__(self, interval: float, *, clock=time.monotonic, max_keys: int = 1024) -> None:
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._seen: dict[tuple[str, str, str], tuple[float, int]] = {}

    def log(self, node_id: str, type_url: str, version: str, message: str) -> None:
        key = (node_id, type_url, message)
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval:
            self._seen[key] = (last[0], last[1] + 1)
            return
        if len(self._seen) >= self.max_keys:
            self._seen.clear()
        repeated = f" (and {last[1]} identical NACKs in the last {self.interval:.0f}s)" if last and last[1] else ""
        self._seen[key] = (now, 0)
        log.warning("NACK from %s for %s version %s: %s%s", sanitize(node_id, limit=256), type_urls.short(type_url),
                    version, message, repeated)


class AdsServer:
    def __init__(self, *, cache: SnapshotCache, nack_history: int = 200, limits: Limits = Limits(),
                 auth: Authenticators | None = None, metrics: XdsMetrics | None = None,
                 sources: Callable[[str, str, NodeInfo | None], list] | None = None,
                 changed_at: Callable[[int], float | None] | None = None, vhds: bool = True) -> None:
        self.cache = cache
        #: Envoys on Delta xDS get their gateway virtual hosts over VHDS (``--no-vhds``: in RDS)
        self.vhds = vhds
        self.metrics = metrics or XdsMetrics()
        if self.metrics.clients is None:
            self.metrics.clients = self.client_counts
        #: ``(type_url, name, node) -> [(file, ObjectRef)]``: the config objects a resource came from
        self.sources = sources
        #: generation -> monotonic time the controller saw the change it was built from
        self.changed_at = changed_at
        self.auth = auth or Authenticators()
        self.limits = limits
        self.streams: dict[int, StreamInfo] = {}
        self.nacks: deque[NackRecord] = deque(maxlen=nack_history)
        self._nack_log = _NackLog(limits.nack_log_interval)
        self._ids = itertools.count(1)
        self._nonces = itertools.count(1)
        self._subscriptions: dict[frozenset[str], frozenset[str]] = {}
        self._big_writes = asyncio.Semaphore(limits.big_writes)

    async def _write(self, context, resources: list[Resource], encode: Callable[[], bytes], *,  # noqa: ANN001
                     type_url: str = "") -> None:
        """Encode and send one response.  Large ones (a full CDS or EDS at 10,000 services is ~15 MB) are
        encoded and written a few at a time, so a thousand clients syncing at once do not each hold their
        own copy in memory; a client that does not read delays the others by ``big_write_wait`` at most."""
        async def send() -> None:
            data = encode()
            try:
                await context.write(data)
            except Exception:
                self.metrics.push_failed(type_url)
                raise
            self.metrics.pushed(type_url, len(data))

        if len(resources) < 1000 or sum(len(r.delta_entry) for r in resources) < self.limits.big_response_bytes:
            await send()
            return
        try:
            await asyncio.wait_for(self._big_writes.acquire(), self.limits.big_write_wait)
        except asyncio.TimeoutError:
            await send()  # do not let a stalled client hold everyone up
            return
        try:
            await send()
        finally:
            self._big_writes.release()

    def _record_nack(self, info: StreamInfo, type_url: str, version: str, message: str,
                     names: tuple[str, ...] | list[str] = ()) -> None:
        """A NACK for ``/debug/nacks`` and the log (``message`` is already sanitized), traced to the config
        objects the rejected resources came from: those the message names, else all the response carried."""
        named = [n for n in names if n and n in message]
        chosen = (named or list(names))[:_TRACED_NAMES]
        record = NackRecord(time.time(), info.node_id[:256], type_url, version, message, resources=chosen,
                            sources=self._trace(type_url, chosen, info.node))
        self.nacks.append(record)
        self.metrics.nacked(type_url)
        w = info.watch.get(type_url)
        if w is not None:
            w.nack = record
        self._nack_log.log(info.node_id, type_url, version, message)

    def _trace(self, type_url: str, names: list[str], node: NodeInfo | None) -> list[dict]:
        if self.sources is None:
            return []
        out: list[dict] = []
        seen: set = set()
        for name in names:
            try:
                found = self.sources(type_url, name, node)
            except Exception:  # noqa: BLE001 - tracing is best effort; the NACK is recorded regardless
                log.debug("tracing %s %s failed", type_urls.short(type_url), name, exc_info=True)
                continue
            for file, ref in found or ():
                key = (name, file, ref)
                if key not in seen:
                    seen.add(key)
                    out.append({"resource": name, "file": str(file or ""), "kind": ref.kind,
                                "namespace": ref.namespace, "name": ref.name, "group": ref.group})
        return out

    # ------------------------------------------------------------------ observability (never read by the protocol)
    def client_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in list(self.streams.values()):
            if s.node is not None:
                out[s.node.flavour] = out.get(s.node.flavour, 0) + 1
        return out

    def _watch(self, info: StreamInfo, type_url: str) -> TypeWatch:
        w = info.watch.get(type_url)
        if w is None:
            w = info.watch[type_url] = TypeWatch()
        return w

    def _sent(self, info: StreamInfo, type_url: str, *, nonce: str, version: str, generation: int,
              payload: "Iterable[str]") -> TypeWatch:
        w = self._watch(info, type_url)
        now = time.time()
        w.sent_at = now
        if w.unacked_since is None:
            w.unacked_since = now
        w.last_nonce = nonce
        w.version = version
        w.payload = payload if isinstance(payload, Mapping) else tuple(payload)
        w.nonces[nonce] = generation
        while len(w.nonces) > _NONCES_KEPT:
            w.nonces.pop(next(iter(w.nonces)))
        return w

    def _acked(self, info: StreamInfo, type_url: str, nonce: str) -> None:
        w = info.watch.get(type_url)
        if w is None:
            return
        generation = w.nonces.pop(nonce, None)
        if nonce == w.last_nonce:
            w.unacked_since = None
            w.nack = None
        if generation is None or generation <= w.acked_generation:
            return
        w.acked_generation = generation
        changed = self.changed_at(generation) if self.changed_at is not None else None
        # only changes made while the client was connected: a first sync is not convergence
        if changed is not None and changed >= info.connected_mono:
            self.metrics.converged(time.monotonic() - changed)

    def sync_status(self, info: StreamInfo, *, now: float | None = None, nacked_only: bool = False) -> dict[str, dict]:
        """Per type: SYNCED (everything sent is ACKed), STALE (sent, not ACKed yet), NACKED.  ``nacked_only``:
        just the NACKED types (a Delta stream's summary versions hash every name it holds: at 30,000 clusters,
        computing them for every stream every 2 s for NACK conditions was most of the server's CPU)."""
        now = time.time() if now is None else now
        out: dict[str, dict] = {}
        for type_url in (*info.states, *info.deltas):
            w = info.watch.get(type_url)
            if type_url in info.deltas:
                d = info.deltas[type_url]
                if d.nacked_view is not None and not d.in_flight and self._still_rejected(info, type_url, d):
                    status = "NACKED"
                elif d.in_flight:
                    status = "STALE"
                else:
                    status = "SYNCED" if d.last_nonce else "-"
                if nacked_only and status != "NACKED":
                    continue
                sent, acked, nacked = d.last_version, d.acked_version, d.nacked_version
            else:
                s = info.states[type_url]
                sent, acked, nacked = s.last_version, s.acked_version, s.nacked_version
                if not sent:
                    status = "-"
                elif nacked and nacked == sent:
                    status = "NACKED"
                elif acked == sent:
                    status = "SYNCED"
                else:
                    status = "STALE"
                if nacked_only and status != "NACKED":
                    continue
            entry: dict = {"status": status, "sent": sent, "acked": acked}
            if status == "STALE" and w is not None and w.unacked_since is not None:
                entry["stale_seconds"] = round(max(0.0, now - w.unacked_since), 3)
            if status == "NACKED":
                entry["nacked"] = nacked
                if w is not None and w.nack is not None:
                    entry["message"] = redact(w.nack.message)
                    entry["resources"] = list(w.nack.resources)
                    entry["sources"] = [dict(s) for s in w.nack.sources]
            out[type_urls.short(type_url)] = entry
        return out

    def _still_rejected(self, info: StreamInfo, type_url: str, d: delta.DeltaTypeState) -> bool:
        """Delta: whether the server still serves a version the client rejected.  After a NACK the client
        keeps what it had; when the config goes back to that, nothing is sent and nothing is wrong."""
        if not d.rejected or info.node is None:
            return True
        try:
            snap = self.cache.known(info.node)
        except Exception:  # noqa: BLE001 - status must not fail
            return True
        if snap is None:
            return True
        current = snap.get(type_url)
        for name, version in d.rejected.items():
            r = current.get(name)
            if r is None and snap.resolver is not None and type_url in _RESOLVED_TYPES and info.node.flavour == GRPC:
                return True  # resolved lazily: do not resolve for a status view
            if r is not None and r.version == version:
                return True
        return False

    def nack_diagnostics(self) -> list:
        """A warning (code ``nack``) per config object behind a resource a connected client rejects now."""
        from translators.diagnostics import Diagnostic, Severity
        from translators.objects import ObjectRef

        found: dict[tuple, list] = {}
        for info in list(self.streams.values()):
            for type_url, entry in self.sync_status(info, nacked_only=True).items():
                for src in entry.get("sources") or [{"file": "", "kind": "", "namespace": "", "name": "",
                                                     "resource": ", ".join(entry.get("resources") or [])}]:
                    key = (src["file"], src["kind"], src["namespace"], src["name"], type_url, src["resource"],
                           entry.get("message", ""), src.get("group", ""))
                    found.setdefault(key, []).append(info.node_id)
        out = []
        for (file, kind, ns, name, type_name, resource, message, group), nodes in found.items():
            who = sanitize(nodes[0], limit=128) + (f" and {len(nodes) - 1} more clients" if len(nodes) > 1 else "")
            ref = ObjectRef(kind, ns, name, group) if kind else None
            out.append(Diagnostic(Severity.WARNING, "nack", f"Envoy rejected {type_name} {resource!r} built from "
                                  f"this object (client {who}): {message}", file, ref, ""))
        return out

    def _intern(self, names: frozenset[str]) -> frozenset[str]:
        """One object for identical subscriptions: a thousand Envoys of one class subscribe to the same
        30,000 endpoint names, and hold one set between them."""
        if len(names) < 64:
            return names
        found = self._subscriptions.get(names)
        if found is None:
            if len(self._subscriptions) >= 256:
                self._subscriptions.clear()
            found = self._subscriptions[names] = names
        return found

    # ------------------------------------------------------------------ grpc wiring
    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.stream_stream_rpc_method_handler(
            self._stream, request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=lambda b: b)
        delta_method = grpc.stream_stream_rpc_method_handler(
            self._delta_stream, request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
            response_serializer=lambda b: b)
        return grpc.method_handlers_generic_handler(SERVICE, {SOTW_METHOD: method, DELTA_METHOD: delta_method})

    # ------------------------------------------------------------------ one stream
    async def _stream(self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest], context) -> None:
        await self._guarded(self._serve_stream, requests, context)

    async def _delta_stream(self, requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest], context) -> None:
        await self._guarded(self._serve_delta, requests, context)

    async def _guarded(self, serve, requests, context) -> None:  # noqa: ANN001
        info = StreamInfo(next(self._ids))
        try:
            try:
                info.identity = await self.auth.authenticate(context)
            except AuthError as exc:
                log.warning("stream %d refused: %s", info.stream_id, exc)
                await context.abort(exc.code, str(exc))
            await serve(info, requests, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except (LimitExceeded, TooManyClasses) as exc:
            log.warning("stream %d (node %s): %s", info.stream_id, sanitize(info.node_id, limit=256), exc)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except Exception:  # noqa: BLE001 - one broken stream must not take others down
            log.exception("stream %d (node %s) failed", info.stream_id, sanitize(info.node_id, limit=256))
            await context.abort(grpc.StatusCode.INTERNAL, "xds-server internal error; see the server log")

    def _check_request(self, info: StreamInfo, req) -> None:  # noqa: ANN001 - SotW or Delta request
        lim = self.limits
        if isinstance(req, discovery_pb2.DeltaDiscoveryRequest):
            named = len(req.resource_names_subscribe) + len(req.resource_names_unsubscribe) \
                + len(req.initial_resource_versions)
            subscribed = sum(len(d.names) for d in info.deltas.values()) + len(req.resource_names_subscribe)
        else:
            named = len(req.resource_names)
            subscribed = sum(len(s.names or ()) for t, s in info.states.items() if t != req.type_url) + named
        limit = lim.names_per_request if req.type_url in _RESOLVED_TYPES else lim.lookup_names_per_request
        if named > limit:
            raise LimitExceeded(f"a request names {named} {type_urls.short(req.type_url)} resources; the limit is "
                                f"{limit} per request")
        if req.HasField("node") and req.node.ByteSize() > lim.node_bytes:
            raise LimitExceeded(f"the node is {req.node.ByteSize()} bytes; the limit is {lim.node_bytes}")
        if subscribed > lim.names_per_stream:
            raise LimitExceeded(f"the stream would subscribe to {subscribed} resources; "
                                f"the limit is {lim.names_per_stream} per stream")

    def _identify(self, info: StreamInfo, req) -> None:  # noqa: ANN001
        node = node_info(req.node)
        if node.flavour == ENVOY and isinstance(req, discovery_pb2.DiscoveryRequest) and looks_proxyless(req):
            node = replace(node, flavour=GRPC)
        if node.flavour == ENVOY and self.vhds and isinstance(req, discovery_pb2.DeltaDiscoveryRequest):
            node = replace(node, vhds=True)  # VHDS is Delta-only (Envoy refuses it over a SotW ADS stream)
        # claims must agree with the verified identity; the config is then the verified namespace's
        if info.identity is not None and not claimed_namespace(req.node):
            node = replace(node, namespace=info.identity.namespace)
        bind(info.identity, claimed_namespace=node.namespace, claimed_service_account=claimed_service_account(req.node),
             gateway=node.flavour == ENVOY, gateway_service_accounts=self.auth.gateway_service_accounts)
        info.node_id = req.node.id
        info.node = node
        log.info("stream %d: node %s connected as %s (%s)", info.stream_id, sanitize(info.node_id, limit=256),
                 info.node, "delta" if isinstance(req, discovery_pb2.DeltaDiscoveryRequest) else "sotw")

    async def _serve_stream(self, info: StreamInfo, requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
                            context) -> None:
        await self._serve(info, requests, context, on_request=self._on_request, push=self._push)

    async def _serve_delta(self, info: StreamInfo, requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
                           context) -> None:
        await self._serve(info, requests, context, on_request=self._on_delta_request, push=self._delta_push)

    async def _serve(self, info: StreamInfo, requests: AsyncIterator, context, *, on_request, push) -> None:  # noqa: ANN001
        """One stream, SotW or Delta: wait for the next request or a newer snapshot of the node's class,
        whichever comes first; ``on_request`` and ``push`` decide what to send."""
        self.streams[info.stream_id] = info
        snapshot: Snapshot | None = None
        reader: asyncio.Task | None = None
        waiter: asyncio.Task | None = None
        try:
            it = requests.__aiter__()
            reader = asyncio.ensure_future(it.__anext__())
            while True:
                pending = {reader}
                if info.node is not None:
                    if waiter is None:
                        waiter = asyncio.ensure_future(self.cache.wait(info.node, newer_than=snapshot))
                    pending.add(waiter)
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    try:
                        req = reader.result()
                    except StopAsyncIteration:
                        return
                    reader = asyncio.ensure_future(it.__anext__())
                    self._check_request(info, req)
                    if info.node is None:
                        if not req.HasField("node"):
                            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first request must carry a node")
                        try:
                            self._identify(info, req)
                        except AuthError as exc:
                            log.warning("stream %d (node %s) refused: %s", info.stream_id,
                                        sanitize(req.node.id, limit=256), exc)
                            await context.abort(exc.code, str(exc))
                    if req.type_url not in type_urls.SHORT_NAMES:
                        log.debug("stream %d: ignoring unknown type %s", info.stream_id, sanitize(req.type_url, limit=256))
                        continue  # no state for types we do not serve
                    if snapshot is None:
                        # wait for the first snapshot before answering anything (never send an empty config)
                        if waiter is not None:
                            waiter.cancel()
                        snapshot = await self.cache.wait(info.node, newer_than=None)
                        waiter = None
                    await on_request(info, req, snapshot, context)
                if waiter is not None and waiter in done:
                    snapshot = waiter.result()
                    waiter = None
                    await push(info, snapshot, context)
        finally:
            for task in (reader, waiter):
                if task is not None:
                    task.cancel()
            self.streams.pop(info.stream_id, None)
            if info.node is not None and not any(s.node == info.node for s in self.streams.values()):
                self.cache.forget(info.node)

    async def _on_request(self, info: StreamInfo, req: discovery_pb2.DiscoveryRequest, snapshot: Snapshot, context) -> None:
        error = sanitize(req.error_detail.message, limit=self.limits.nack_chars) if req.HasField("error_detail") else None
        request = Request(type_url=req.type_url, version_info=req.version_info[:256],
                          resource_names=tuple(req.resource_names), response_nonce=req.response_nonce, error_message=error)
        previous = info.states.get(req.type_url)
        decision, state = should_respond(previous, request)
        if state.names:
            state = replace(state, names=self._intern(state.names))
        info.states[req.type_url] = state
        if error is None and previous is not None and req.response_nonce \
                and req.response_nonce == previous.last_nonce and decision is not Decision.STALE:
            self._acked(info, req.type_url, req.response_nonce)
        if decision is Decision.NACK or (decision is Decision.RESPOND and error is not None):
            w = info.watch.get(req.type_url)
            self._record_nack(info, req.type_url, state.nacked_version, error or "",
                              names=list(w.payload) if w is not None else ())
            info.sent.pop(req.type_url, None)  # the client dropped that response: the next one is complete
        if decision is Decision.RESPOND:
            changed = await self._send(info, req.type_url, snapshot, context, force=True)
            if req.type_url == type_urls.CLUSTER and changed and type_urls.ENDPOINT in info.states:
                await self._send(info, type_urls.ENDPOINT, snapshot, context, force=False, also=changed)

    async def _push(self, info: StreamInfo, snapshot: Snapshot, context) -> None:
        changed_clusters: frozenset[str] = frozenset()
        for type_url in type_urls.PUSH_ORDER:
            if type_url in info.states:
                changed = await self._send(info, type_url, snapshot, context, force=False,
                                           also=changed_clusters if type_url == type_urls.ENDPOINT else frozenset())
                if type_url == type_urls.CLUSTER:
                    changed_clusters = changed

    async def _select(self, snapshot: Snapshot, type_url: str, names: frozenset[str] | None) -> list[Resource]:
        """Resolve off the event loop when a client names many resources (proxyless names resolve lazily)."""
        if names is not None and len(names) > self.limits.inline_names and snapshot.resolver is not None:
            return await asyncio.to_thread(snapshot.select, type_url, names)
        return snapshot.select(type_url, names)

    async def _send(self, info: StreamInfo, type_url: str, snapshot: Snapshot, context, *, force: bool,
                    also: frozenset[str] = frozenset()) -> frozenset[str]:
        """Send ``type_url`` if it differs from what the stream last got (always with ``force``; the
        resources named in ``also`` are sent even if unchanged).  Returns the names whose content the
        client did not have."""
        state = info.states[type_url]
        resources = await self._select(snapshot, type_url, state.names)
        if not resources and type_url not in type_urls.WILDCARD_TYPES:
            # RDS/EDS: absence says nothing; LDS/CDS: an empty answer says "does not exist"
            # (xds_protocol, "Knowing When a Requested Resource Does Not Exist")
            return frozenset()
        version = snapshot.version(type_url, state.names) if snapshot.resolver is None or state.names is None \
            else version_of(resources)
        # what the stream last got: a snapshot's own dict (shared by every stream of the class), or for
        # resolved (proxyless) names a small dict of its own
        current = snapshot.get(type_url)
        before = info.sent.get(type_url)
        hint = snapshot.changed_since(type_url, before)
        if before is None:
            changed = frozenset(r.name for r in resources)
        elif hint is not None:
            changed = frozenset(n for n in hint if n in current and (state.names is None or n in state.names)
                                and ((p := before.get(n)) is None or p.version != current[n].version))
        else:
            changed = frozenset(r.name for r in resources if (p := before.get(r.name)) is None or p.version != r.version)
        unchanged_version = version == state.last_version or version == state.nacked_version
        if not force and unchanged_version and not also:
            return frozenset()
        if force or type_url in type_urls.WILDCARD_TYPES:
            payload = resources  # LDS/CDS responses are always complete
        else:
            payload = [r for r in resources if r.name in changed or r.name in also]
            if not payload:
                return frozenset()
        nonce = str(next(self._nonces))
        await self._write(context, payload, lambda: encode_response(version=version, type_url=type_url,
                                                                    nonce=nonce, resources=payload),
                          type_url=type_url)
        resolved = snapshot.resolver is not None and state.names is not None and type_url in _RESOLVED_TYPES
        info.sent[type_url] = {r.name: r for r in resources} if resolved else current
        info.states[type_url] = replace(state, last_version=version, last_nonce=nonce)
        # the names a NACK of it is about: a complete response's are the shared dict's keys (a tuple of 30,000
        # names per stream was most of a gateway stream's memory)
        complete = payload is resources and state.names is None and len(resources) == len(current)
        w = self._sent(info, type_url, nonce=nonce, version=version, generation=snapshot.generation,
                       payload=current if complete else [r.name for r in payload])
        w.resources, w.subscribed = info.sent[type_url], state.names
        return changed

    # ------------------------------------------------------------------ Delta (incremental) streams
    async def _on_delta_request(self, info: StreamInfo, req: discovery_pb2.DeltaDiscoveryRequest,
                                snapshot: Snapshot, context) -> None:
        error = sanitize(req.error_detail.message, limit=self.limits.nack_chars) if req.HasField("error_detail") else None
        request = delta.DeltaRequest(type_url=req.type_url, subscribe=tuple(req.resource_names_subscribe),
                                     unsubscribe=tuple(req.resource_names_unsubscribe),
                                     initial_versions=dict(req.initial_resource_versions),
                                     response_nonce=req.response_nonce, error_message=error)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("stream %d: %s request nonce=%s subscribe=%s unsubscribe=%s initial=%d%s", info.stream_id,
                      type_urls.short(req.type_url), sanitize(req.response_nonce, limit=32),
                      sanitize(",".join(request.subscribe[:5]), limit=300), sanitize(",".join(request.unsubscribe[:5]),
                      limit=300), len(request.initial_versions), " NACK" if error is not None else "")
        previous = info.deltas.get(req.type_url)
        carried = previous.in_flight.get(req.response_nonce) if previous is not None and req.response_nonce else None
        state, outcome = delta.on_request(previous, request)
        if state.names:
            state.names = self._intern(state.names)
        info.deltas[req.type_url] = state
        if outcome.acked:
            self._acked(info, req.type_url, req.response_nonce)
            if not state.in_flight and (w := info.watch.get(req.type_url)) is not None:
                w.unacked_since = None
                w.nack = None
        if outcome.nacked:
            self._record_nack(info, req.type_url, state.nacked_version, error or "",
                              names=sorted(carried[1]) if carried is not None else ())
        if outcome.respond:
            changed = await self._delta_send(info, req.type_url, snapshot, context, force=outcome.force,
                                             always=outcome.opened)
            if req.type_url == type_urls.CLUSTER and changed and type_urls.ENDPOINT in info.deltas:
                await self._delta_send(info, type_urls.ENDPOINT, snapshot, context, force=changed)

    async def _delta_push(self, info: StreamInfo, snapshot: Snapshot, context) -> None:
        changed_clusters: frozenset[str] = frozenset()
        for type_url in type_urls.PUSH_ORDER:
            if type_url in info.deltas:
                # EDS after a CDS change of an EDS cluster, even with the same endpoints (cluster warming)
                force = changed_clusters & info.deltas[type_url].names if type_url == type_urls.ENDPOINT else ()
                changed = await self._delta_send(info, type_url, snapshot, context, force=force)
                if type_url == type_urls.CLUSTER:
                    changed_clusters = changed

    async def _delta_send(self, info: StreamInfo, type_url: str, snapshot: Snapshot, context, *,
                          force=(), always: bool = False) -> frozenset[str]:  # noqa: ANN001
        state = info.deltas[type_url]
        current = snapshot.get(type_url)
        # the snapshot knows which names changed since the dict the stream's view is based on
        changed = snapshot.changed_since(type_url, state.view.base)

        def work() -> tuple[list, list[str], set[str]]:
            return delta.diff(state, current=current, lookup=lambda n: snapshot.lookup(type_url, n), force=force,
                              changed=changed)
        if changed is None and len(state.names) > self.limits.inline_names and snapshot.resolver is not None:
            send, remove, examined = await asyncio.to_thread(work)
        else:
            send, remove, examined = work()
        before = delta.rebase(state, current=current, examined=examined, sent=send, removed=remove)
        if not send and not remove and not always:
            return frozenset()
        nonce = str(next(self._nonces))
        await self._write(context, send, lambda: encode_delta_response(
            system_version=str(snapshot.generation), type_url=type_url, nonce=nonce, resources=send, removed=remove),
                          type_url=type_url)
        delta.record_sent(state, nonce=nonce, before=before, sent=send, removed=remove)
        self._delta_sent(info, type_url, state, before, send, nonce=nonce, generation=snapshot.generation)
        return frozenset(r.name for r in send)

    def _delta_sent(self, info: StreamInfo, type_url: str, state: delta.DeltaTypeState, before: delta.View,
                    send: list[Resource], *, nonce: str, generation: int) -> None:
        """Remember the client's view after a Delta response, and the Resources behind the names its base
        (the snapshot's dict) does not hold at the client's version (usually none)."""
        # the summary version of a Delta view is O(size): config_dump computes it when asked, never per send
        # (a Delta NACK is traced from the in-flight record of that response, not from the watch)
        w = self._sent(info, type_url, nonce=nonce, version="", generation=generation, payload=())
        sent = {r.name: r for r in send}
        old_bases = (before.base or {}, (w.view.base if w.view is not None else None) or {})
        extras: dict[str, Resource] = {}
        for name, version in state.view.overrides.items():
            if version is None:
                continue
            for r in (sent.get(name), w.extras.get(name), *(b.get(name) for b in old_bases)):
                if r is not None and r.version == version:
                    extras[name] = r
                    break
        w.view, w.extras, w.wildcard, w.subscribed = state.view, extras, state.wildcard, state.names
