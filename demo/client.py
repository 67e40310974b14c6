"""The demo client: helloworld and all four RouteGuide RPC kinds through the gateway.

``python -m demo.client --target 127.0.0.1:8080 [--authority HOST]`` prints
one readable line per call, with the replica that answered (``x-replica``),
and exits non-zero if any call fails.  Every call has a deadline.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

import grpc

from protos import helloworld_pb2, helloworld_pb2_grpc, route_guide_pb2, route_guide_pb2_grpc

DEADLINE_S = 10.0


def _replica(call) -> str:
    return dict(call.initial_metadata() or ()).get("x-replica", "?")


def run(channel: grpc.Channel) -> list[tuple[str, str, str]]:
    """All calls; returns (call, replica, summary) rows.  Raises grpc.RpcError on failure."""
    greeter = helloworld_pb2_grpc.GreeterStub(channel)
    guide = route_guide_pb2_grpc.RouteGuideStub(channel)
    rows = []

    reply, call = greeter.SayHello.with_call(helloworld_pb2.HelloRequest(name="demo"), timeout=DEADLINE_S)
    rows.append(("Greeter.SayHello         (unary)", _replica(call), repr(reply.message)))

    feature, call = guide.GetFeature.with_call(route_guide_pb2.Point(latitude=409146138, longitude=-746188906),
                                               timeout=DEADLINE_S)
    rows.append(("RouteGuide.GetFeature    (unary)", _replica(call), f"feature {feature.name!r}"))

    stream = guide.ListFeatures(route_guide_pb2.Rectangle(lo=route_guide_pb2.Point(latitude=400000000, longitude=-750000000),
                                                          hi=route_guide_pb2.Point(latitude=420000000, longitude=-730000000)),
                                timeout=DEADLINE_S)
    names = [f.name for f in stream]
    rows.append(("RouteGuide.ListFeatures  (server streaming)", _replica(stream), f"{len(names)} features"))

    points = [
        route_guide_pb2.Point(latitude=407838351, longitude=-746143763),
        route_guide_pb2.Point(latitude=408122808, longitude=-743999179),
        route_guide_pb2.Point(latitude=413628156, longitude=-749015468)]
    summary, call = guide.RecordRoute.with_call(iter(points), timeout=DEADLINE_S)
    rows.append(("RouteGuide.RecordRoute   (client streaming)", _replica(call),
                 f"{summary.point_count} points, {summary.distance} m"))

    notes = [route_guide_pb2.RouteNote(location=route_guide_pb2.Point(latitude=0, longitude=i % 2), message=m)
             for i, m in enumerate(["first", "second", "third"])]
    chat = guide.RouteChat(iter(notes), timeout=DEADLINE_S)
    got = [n.message for n in chat]
    rows.append(("RouteGuide.RouteChat     (bidi streaming)", _replica(chat), f"{len(got)} notes back"))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo.client")
    p.add_argument("--target", default="127.0.0.1:8080")
    p.add_argument("--authority", help="override :authority (virtual host)")
    args = p.parse_args(argv)
    options = [("grpc.default_authority", args.authority)] if args.authority else []
    with grpc.insecure_channel(args.target, options=options) as channel:
        try:
            rows = run(channel)
        except grpc.RpcError as exc:
            print(f"  FAILED: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    for name, replica, summary in rows:
        print(f"  {name:<45} -> {replica:<14} {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
