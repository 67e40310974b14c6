"""The Aggregated Discovery Service, state of the world.

One coroutine per stream.  It waits for whichever comes first: the next
request from the client, or a newer snapshot for the stream's node class.

* Requests go through :func:`xds_server.protocol.should_respond`.
* A new snapshot is pushed type by type in make-before-break order (CDS, EDS,
  LDS, RDS), and only for types whose version *for this stream's
  subscription* differs from what the stream last received.  A NACKed
  version is therefore never re-sent, and a slow stream simply skips
  intermediate snapshots: nothing queues up behind a blocked write.
* Responses are assembled from pre-serialized bytes
  (:func:`xds_server.snapshot.encode_response`) and sent through an identity
  serializer.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import AsyncIterator

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from translators import type_urls
from translators.node import ENVOY, GRPC, NodeInfo
from translators.proxyless_view import INBOUND_PREFIX
from xds_server.cache import SnapshotCache
from xds_server.nodes import node_info
from xds_server.protocol import Decision, Request, TypeState, should_respond
from xds_server.redact import redact
from xds_server.snapshot import Snapshot, encode_response, version_of

log = logging.getLogger(__name__)

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
SOTW_METHOD = "StreamAggregatedResources"


@dataclass(slots=True)
class NackRecord:
    time: float
    node_id: str
    type_url: str
    version: str
    message: str

    def as_dict(self) -> dict:
        return {"time": self.time, "node": self.node_id, "type": type_urls.short(self.type_url),
                "version": self.version, "message": self.message}


@dataclass(slots=True)
class StreamInfo:
    stream_id: int
    node_id: str = ""
    node: NodeInfo | None = None
    states: dict[str, TypeState] = field(default_factory=dict)
    connected_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        return {"stream": self.stream_id, "node": self.node_id,
                "flavour": self.node.flavour if self.node else "", "namespace": self.node.namespace if self.node else "",
                "labels": dict(self.node.labels) if self.node else {},
                "types": {type_urls.short(t): {"sent": s.last_version, "acked": s.acked_version,
                                               "nacked": s.nacked_version, "subscribed": "*" if s.wildcard else sorted(s.names or ())}
                          for t, s in self.states.items()}}


def looks_proxyless(req: discovery_pb2.DiscoveryRequest) -> bool:
    """A first LDS request naming ``host:port`` listeners comes from a gRPC client, whatever its metadata."""
    names = list(req.resource_names)
    return (req.type_url == type_urls.LISTENER and bool(names)
            and all(n.startswith(INBOUND_PREFIX) or (":" in n and n != "*") for n in names))


class AdsServer:
    def __init__(self, *, cache: SnapshotCache, nack_history: int = 200) -> None:
        self.cache = cache
        self.streams: dict[int, StreamInfo] = {}
        self.nacks: deque[NackRecord] = deque(maxlen=nack_history)
        self._ids = itertools.count(1)
        self._nonces = itertools.count(1)

    # ------------------------------------------------------------------ grpc wiring
    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.stream_stream_rpc_method_handler(
            self._stream, request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=lambda b: b)
        return grpc.method_handlers_generic_handler(SERVICE, {SOTW_METHOD: method})

    # ------------------------------------------------------------------ one stream
    async def _stream(self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest], context) -> None:
        info = StreamInfo(next(self._ids))
        try:
            await self._serve_stream(info, requests, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception:  # noqa: BLE001 - one broken stream must not take others down
            log.exception("stream %d (node %s) failed", info.stream_id, info.node_id)
            await context.abort(grpc.StatusCode.INTERNAL, "xds-server internal error; see the server log")

    async def _serve_stream(self, info: StreamInfo, requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
                            context) -> None:
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
                    if info.node is None:
                        if not req.HasField("node"):
                            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first request must carry a node")
                        info.node_id = req.node.id
                        info.node = node_info(req.node)
                        if info.node.flavour == ENVOY and looks_proxyless(req):
                            info.node = replace(info.node, flavour=GRPC)
                        log.info("stream %d: node %s connected as %s", info.stream_id, info.node_id, info.node)
                    if snapshot is None:
                        # wait for the first snapshot before answering anything (never send an empty config)
                        snapshot = await self.cache.wait(info.node, newer_than=None)
                        waiter = None
                    await self._on_request(info, req, snapshot, context)
                if waiter is not None and waiter in done:
                    snapshot = waiter.result()
                    waiter = None
                    await self._push(info, snapshot, context)
        finally:
            for task in (reader, waiter):
                if task is not None:
                    task.cancel()
            self.streams.pop(info.stream_id, None)
            if info.node is not None and not any(s.node == info.node for s in self.streams.values()):
                self.cache.forget(info.node)

    async def _on_request(self, info: StreamInfo, req: discovery_pb2.DiscoveryRequest, snapshot: Snapshot, context) -> None:
        error = redact(req.error_detail.message) if req.HasField("error_detail") else None
        request = Request(type_url=req.type_url, version_info=req.version_info, resource_names=tuple(req.resource_names),
                          response_nonce=req.response_nonce, error_message=error)
        decision, state = should_respond(info.states.get(req.type_url), request)
        info.states[req.type_url] = state
        if decision is Decision.NACK or (decision is Decision.RESPOND and error is not None):
            record = NackRecord(time.time(), info.node_id, req.type_url, state.nacked_version, error or "")
            self.nacks.append(record)
            log.warning("NACK from %s for %s version %s: %s", info.node_id, type_urls.short(req.type_url),
                        state.nacked_version, error)
        if decision is Decision.RESPOND:
            await self._send(info, req.type_url, snapshot, context, force=True)

    async def _push(self, info: StreamInfo, snapshot: Snapshot, context) -> None:
        for type_url in type_urls.PUSH_ORDER:
            if type_url in info.states:
                await self._send(info, type_url, snapshot, context, force=False)

    async def _send(self, info: StreamInfo, type_url: str, snapshot: Snapshot, context, *, force: bool) -> None:
        state = info.states[type_url]
        resources = snapshot.select(type_url, state.names)
        if not resources and type_url not in type_urls.WILDCARD_TYPES:
            # RDS/EDS: absence says nothing; LDS/CDS: an empty answer says "does not exist"
            # (xds_protocol, "Knowing When a Requested Resource Does Not Exist")
            return
        version = version_of(resources)
        if not force and version == state.last_version:
            return
        if not force and version == state.nacked_version:
            return
        nonce = str(next(self._nonces))
        await context.write(encode_response(version=version, type_url=type_url, nonce=nonce, resources=resources))
        info.states[type_url] = replace(state, last_version=version, last_nonce=nonce)
