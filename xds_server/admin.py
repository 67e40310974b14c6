"""The admin HTTP server: health, readiness and read-only debug views.

* ``GET /healthz`` -- 200 while the process runs;
* ``GET /readyz`` -- 200 once every source has loaded (Kubernetes: every kind listed) and the
  first snapshot is built, 503 before;
* ``GET /debug/diagnostics`` -- every current diagnostic, as JSON;
* ``GET /debug/nacks`` -- recent NACKs (messages redacted);
* ``GET /debug/clients`` -- connected streams and their ACK/NACK state;
* ``GET /debug/snapshots`` -- per node class, versions and resource names.

No endpoint ever returns resource contents, so no private key can leak here.
"""
from __future__ import annotations

from typing import Callable

from aiohttp import web

from translators import type_urls
from xds_server.ads import AdsServer
from xds_server.controller import Controller


def make_app(*, ads: AdsServer, controller: Controller, sources_ready: Callable[[], bool] = lambda: True,
             probes_only: bool = False) -> web.Application:
    """The admin app; ``probes_only``: just /healthz and /readyz (``serve --probe-address``, for kubelet on the
    pod IP while the debug endpoints stay on loopback)."""
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
                                                                        *cache.request_diagnostics)]})

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
    if probes_only:
        return app
    app.router.add_get("/debug/diagnostics", diagnostics)
    app.router.add_get("/debug/nacks", nacks)
    app.router.add_get("/debug/clients", clients)
    app.router.add_get("/debug/snapshots", snapshots)
    return app
