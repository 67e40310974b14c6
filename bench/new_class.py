"""A new node class's first client: how long the event loop stalls while its snapshot is built.

``xds-server serve`` on N ``config_gen`` services (scale.py's files).  Once it is ready, ``GET /healthz`` on the
admin port is polled every 10 ms (the admin server shares the event loop with ADS, so its worst latency bounds
the loop's worst stall from above), and one SotW ADS client of a class no stream has used yet opens a CDS
wildcard stream.  Reported: that client's time to its first response, and ``/healthz``'s worst and median
latency while it waited.

``python -m bench.new_class [--services 10000]``
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench import responsiveness, scale
from translators import type_urls as T
from tests.harness import ControlPlane


def run(*, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "config"
        config.mkdir()
        scale.write_config(config, n, gateway_port=scale.free_port())
        with ControlPlane(config_dirs=[config], workdir=workdir, debounce_quiet=0.1, log_level="info") as cp:
            cp.wait_ready(timeout=600)
            time.sleep(2)
            health = responsiveness.HealthProbe(f"{cp.admin_url}/healthz")
            health.start()
            time.sleep(1)
            t0 = time.perf_counter()
            first = asyncio.run(responsiveness.first_response(cp.xds_address, 0, T.CLUSTER))
            t1 = time.perf_counter()
            time.sleep(0.5)
            health.stop.set()
            health.join(timeout=70)
    during = sorted(lat for start, lat in health.samples if t0 - 0.05 <= start <= t1)
    return {"services": n, "first_client_cds_s": round(first, 3),
            "healthz_while_waiting_max_ms": round(during[-1] * 1000, 1) if during else None,
            "healthz_while_waiting_p50_ms": round(during[len(during) // 2] * 1000, 1) if during else None,
            "healthz_samples": len(during)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=10000)
    args = ap.parse_args(argv)
    print(json.dumps(run(n=args.services), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
