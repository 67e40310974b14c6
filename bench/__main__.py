"""``python -m bench [--quick] [--only translation|fanout|propagation|scale]``: prints one JSON document."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    p.add_argument("--only", choices=["translation", "fanout", "propagation", "scale", "peers", "responsiveness"],
                   help="peers and responsiveness run only when named (make bench-peers / bench-responsiveness)")
    p.add_argument("--sizes", default="", help="comma-separated service counts for translation and scale")
    args = p.parse_args(argv)
    out: dict = {"machine": machine(), "quick": args.quick}
    started = time.time()
    if args.only in (None, "translation"):
        from bench import translation
        print("translation ...", file=sys.stderr, flush=True)
        sizes = tuple(int(x) for x in args.sizes.split(",") if x) or ((100, 1000) if args.quick else (100, 1000, 10000))
        out["translation"] = translation.run(sizes=sizes, repeats=3 if args.quick else 5)
    if args.only in (None, "fanout"):
        from bench import fanout
        print("fanout (and memory with 1,000 clients) ...", file=sys.stderr, flush=True)
        out["fanout"] = fanout.run(quick=args.quick)
    if args.only in (None, "propagation"):
        from bench import propagation
        print("propagation ...", file=sys.stderr, flush=True)
        out["propagation"] = propagation.run(routes=20 if args.quick else 100)
    if args.only in (None, "scale"):
        from bench import scale
        print("scale (a real Envoy, Delta and SotW) ...", file=sys.stderr, flush=True)
        sizes = tuple(int(x) for x in args.sizes.split(",") if x) or ((100, 1000) if args.quick else (100, 1000, 10000))
        out["scale"] = scale.run(sizes=sizes, updates=10 if args.quick else 20)
    if args.only == "peers":  # needs bench/.peers-venv (make bench-peers)
        from bench import peers
        from bench import scale
        n = int((args.sizes or ("100" if args.quick else "1000")).split(",")[0])
        rows = [dict(scale.run_one(n=n, ads=m, updates=10 if args.quick else 20), server="xds-server")
                for m in ("delta", "sotw")]
        rows.append(peers.run_sovereign(n=n, updates=10 if args.quick else 20, workers=1))
        out["peers"] = rows
    if args.only == "responsiveness":
        from bench import responsiveness
        n = int((args.sizes or ("1000" if args.quick else "10000")).split(",")[0])
        out["responsiveness"] = responsiveness.run(n=n, idle_seconds=3 if args.quick else 10)
    out["seconds"] = round(time.time() - started, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
