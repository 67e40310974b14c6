"""The admin HTTP server: health, readiness and read-only debug views.

* ``GET /healthz`` -- 200 while the process runs;
* ``GET /readyz`` -- 200 once every source has loaded (Kubernetes: every kind listed) and the
  first snapshot is built, 503 before;
* ``GET /debug/diagnostics`` -- every current diagnostic, as JSON;
* ``GET /debug/nacks`` -- recent NACKs (messages redacted);
* ``GET /debug/clients`` -- connected streams and their ACK/NACK state;
* ``GET /debug/snapshots`` -- per node class, versions and resource names;
* ``GET /metrics`` -- Prometheus metrics (also on the probe listener; see :mod:`xds_server.metrics`);
* ``GET /debug/syncz`` -- per connected client and type: SYNCED, STALE (for how long) or NACKED (with the
  message and the config objects the rejected resources came from);
* ``GET /debug/config_dump?node=ID`` -- what that client was last sent, as JSON, every private key
  replaced by ``[redacted]``; 404 for a node that is not connected.

Only ``/debug/config_dump`` returns resource contents; private keys, passwords and generic secrets are
redacted there field by field, and the text is run through :func:`xds_server.redact.redact` again.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

from aiohttp import web
from google.protobuf import json_format

from translators import type_urls
from translators.builders.prebuilt import real_message
from xds_server.ads import AdsServer, StreamInfo
from xds_server.controller import Controller
from xds_server.metrics import CONTENT_TYPE
from xds_server.redact import REDACTED, redact

#: fields whose value is secret wherever they appear in a resource (Secret tls_certificate.private_key,
#: its password, generic secrets, session ticket keys)
SECRET_FIELDS = frozenset({"private_key", "password", "generic_secret", "session_ticket_keys", "secret"})


def _redacted(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (REDACTED if k in SECRET_FIELDS else _redacted(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_redacted(v) for v in node]
    return node


def resource_json(resource) -> Any:  # noqa: ANN001 - a snapshot Resource
    try:
        body = json_format.MessageToDict(real_message(resource.message), preserving_proto_field_name=True)
    except Exception as exc:  # noqa: BLE001 - e.g. an Any of a type this process cannot name
        body = {"error": f"cannot render as JSON: {type(exc).__name__}"}
    return _redacted(body)


def config_dump(info: StreamInfo) -> dict:
    """What one stream was last sent, per type, secrets redacted."""
    types = {}
    for type_url, w in sorted(info.watch.items(), key=lambda kv: type_urls.PUSH_ORDER.index(kv[0])
                              if kv[0] in type_urls.PUSH_ORDER else 99):
        resources = []
        for name, r in w.held().items():
            resources.append({"name": name, "version": r.version, "resource": resource_json(r)} if r is not None
                             else {"name": name, "resource": None, "note": "no longer held by the server"})
        version = info.deltas[type_url].last_version if type_url in info.deltas else w.version
        types[type_urls.short(type_url)] = {"version": version, "nonce": w.last_nonce, "sent_at": w.sent_at,
                                            "resources": resources}
    out = {"node": info.node_id, "stream": info.stream_id, "mode": "delta" if info.deltas else "sotw",
           "flavour": info.node.flavour if info.node else "", "namespace": info.node.namespace if info.node else "",
           "types": types}
    # belt and braces: nothing that looks like key material survives, whatever field it hid in
    return json.loads(redact(json.dumps(out)))


def syncz(ads: AdsServer) -> dict:
    now = time.time()
    clients = []
    for info in sorted(list(ads.streams.values()), key=lambda i: (i.node_id, i.stream_id)):
        if info.node is None:
            continue
        clients.append({"node": info.node_id, "stream": info.stream_id, "flavour": info.node.flavour,
                        "namespace": info.node.namespace, "identity": str(info.identity) if info.identity else "",
                        "mode": "delta" if info.deltas else "sotw", "connected_at": info.connected_at,
                        "types": ads.sync_status(info, now=now)})
    return json.loads(redact(json.dumps({"time": now, "clients": clients})))


def make_app(*, ads: AdsServer, controller: Controller, sources_ready: Callable[[], bool] = lambda: True,
             probes_only: bool = False) -> web.Application:
    """The admin app; ``probes_only``: just /healthz, /readyz and /metrics (``serve --probe-address``, for kubelet
    and Prometheus on the pod IP while the debug endpoints stay on loopback)."""
    cache = ads.cache

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if not sources_ready():
            return web.Response(status=503, text="waiting for every watched kind to list\n")
        if cache.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="waiting for the first snapshot\n")

    async def diagnostics(_: web.Request) -> web.Response:
        return web.json_response({"generation": cache.generation, "translations": controller.translations,
                                  "diagnostics": [d.as_dict() for d in (*controller.diagnostics,
                                                                        *cache.request_diagnostics,
                                                                        *ads.nack_diagnostics())]})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=ads.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def syncz_view(_: web.Request) -> web.Response:
        return web.json_response(syncz(ads))

    async def config_dump_view(request: web.Request) -> web.Response:
        node = request.query.get("node")
        if not node:
            return web.json_response({"error": "give ?node=ID"}, status=400)
        matches = [s for s in list(ads.streams.values()) if s.node_id == node and s.node is not None]
        if not matches:
            return web.json_response({"error": "no connected client has that node id"}, status=404)
        return web.json_response(config_dump(max(matches, key=lambda s: s.stream_id)))

    async def nacks(_: web.Request) -> web.Response:
        return web.json_response({"nacks": [n.as_dict() for n in ads.nacks]})

    async def clients(_: web.Request) -> web.Response:
        return web.json_response({"clients": [s.as_dict() for s in ads.streams.values()]})

    async def snapshots(_: web.Request) -> web.Response:
        out = []
        for node, snap in cache.classes.items():
            out.append({"flavour": node.flavour, "namespace": node.namespace, "labels": dict(node.labels),
                        "generation": snap.generation,
                        "types": {type_urls.short(t): {"version": snap.version(t),
                                                       "names": sorted(rs)} for t, rs in snap.resources.items()}})
        return web.json_response({"snapshots": out})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if probes_only:
        return app
    app.router.add_get("/debug/syncz", syncz_view)
    app.router.add_get("/debug/config_dump", config_dump_view)
    app.router.add_get("/debug/diagnostics", diagnostics)
    app.router.add_get("/debug/nacks", nacks)
    app.router.add_get("/debug/clients", clients)
    app.router.add_get("/debug/snapshots", snapshots)
    return app
