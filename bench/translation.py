"""Translation + serialization of N services for one Envoy node class, full and after one VirtualService edit."""
from __future__ import annotations

import asyncio
import statistics
import time

from bench.config_gen import config, virtual_service
from translators import type_urls
from translators.node import NodeInfo
from translators.pipeline import translate
from xds_server.cache import SnapshotCache
from xds_server.controller import gc_paused

NODE = NodeInfo.of(labels={"istio": "ingressgateway"})


def _measure(objects: list, edited: list) -> tuple[float, float, object]:
    """Seconds for the full build, then for the rebuild after one edit, as the controller does them:
    translate, serialize every resource one gateway node class gets, publish."""
    box: dict = {}

    async def run() -> None:  # SnapshotCache wants a running loop; nothing big is returned through asyncio
        cache = SnapshotCache()
        started = time.perf_counter()
        with gc_paused():  # as the controller does
            translation = translate(objects)
            cache.install(cache.prepare(translation, generation=1))
            snap = cache.get(NODE)
        box["full"] = time.perf_counter() - started
        started = time.perf_counter()
        with gc_paused():
            again = translate(edited, accepted=translation.accepted, previous=translation)
            cache.install(cache.prepare(again, generation=2))
        box["rebuild"] = time.perf_counter() - started
        box["snap"] = snap
        assert cache.get(NODE).versions[type_urls.ROUTE] != snap.versions[type_urls.ROUTE]
    asyncio.run(run())
    return box["full"], box["rebuild"], box["snap"]


def run(*, sizes: tuple[int, ...], repeats: int) -> dict:
    out = {}
    for n in sizes:
        objects = config(n)
        fulls, rebuilds = [], []
        edited = [virtual_service(0, prefix="/edited.Service/") if (o.kind, o.name) == ("VirtualService", "svc-0")
                  else o for o in objects]
        for _ in range(repeats if n <= 1000 else max(1, repeats // 3)):
            full, rebuild, snap = _measure(objects, edited)
            fulls.append(full)
            rebuilds.append(rebuild)
        out[str(n)] = {
            "full_s": round(statistics.median(fulls), 3),
            "rebuild_after_one_vs_edit_s": round(statistics.median(rebuilds), 3),
            "resources": {type_urls.short(t): len(r) for t, r in snap.resources.items()},
            "runs": len(fulls),
        }
    return out
