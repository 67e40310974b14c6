"""Hours of changes in minutes: memory, step time and GC pauses must stay flat.

N ``config_gen`` services in a real :class:`~xds_server.store.ConfigStore`, one origin per object as the
Kubernetes source keeps them, translated and prepared for one Envoy node class as the controller does (the
GC paused around each step, the first build frozen).  Then, round after round, a new service (ServiceEntry +
VirtualService) is added and removed again: two translations a round.  Reported: RSS after the first build
and at every ``every`` translations, the median and worst step, and the longest cyclic-GC pass
(``gc.callbacks``; a pass holds the GIL, so every ADS stream waits for it).

``python -m bench.churn [--services 10000] [--translations 600]``
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time

from bench.config_gen import service
from bench.translation import Replay, _objects
from xds_server import gc_policy


def _rss_mb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20


def run(*, n: int, translations: int, every: int = 200) -> dict:
    objects = _objects(n)
    out: dict = {"services": n, "translations": translations}
    pauses: list[float] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses.append(time.perf_counter() - started[0])

    async def measure() -> None:
        replay = Replay(objects)
        gc.set_threshold(*gc_policy.THRESHOLDS)  # the rest of gc_policy.settle_first_build
        out["rss_mb"] = {"0": _rss_mb()}
        steps: list[float] = []
        gc.callbacks.append(on_gc)
        try:
            for r in range(translations // 2):
                new = [o for o in service(n + r) if o.kind != "DestinationRule"]
                for change in (replay.put(*new), replay.drop(*new)):
                    steps.append(replay.step(change))
                    if len(steps) % every == 0:
                        out["rss_mb"][str(len(steps))] = _rss_mb()
        finally:
            gc.callbacks.remove(on_gc)
        out["step_ms"] = {"median": round(statistics.median(steps) * 1000, 1),
                          "worst": round(max(steps) * 1000, 1)}
        out["gc"] = {"passes": len(pauses), "longest_ms": round(max(pauses, default=0) * 1000, 1),
                     "total_ms": round(sum(pauses) * 1000, 1)}
    asyncio.run(measure())
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.churn")
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--translations", type=int, default=600)
    args = p.parse_args()
    print(json.dumps(run(n=args.services, translations=args.translations), indent=2))


if __name__ == "__main__":
    main()
