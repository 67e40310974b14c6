"""Demo gRPC backends: helloworld Greeter and RouteGuide, identified by replica name.

Every RPC sends initial metadata ``x-replica: NAME``, so a client (and the
e2e tests) can tell which replica answered through the gateway.  Tests steer
behaviour with request metadata:

* ``x-delay-ms``: sleep before answering (route timeouts);
* ``x-fail-first: KEY``: the first call with a given key fails UNAVAILABLE (retries);
* ``x-stream-interval-ms`` / ``x-stream-count``: ListFeatures streams that many
  features at that interval (streams longer than Envoy's default 15 s);
* ``x-echo-headers: 1``: Greeter returns the request headers it saw as
  trailing metadata ``x-seen-<name>`` (header rewrites).

``python -m demo.backends --greeter-port P --route-guide-port P2 --replica NAME``
prints ``ready`` once listening and serves until SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import signal
import time

import grpc

from protos import helloworld_pb2, helloworld_pb2_grpc, route_guide_pb2, route_guide_pb2_grpc

FEATURES = [
    ("Patriots Path, Mendham, NJ 07945, USA", 407838351, -746143763),
    ("101 New Jersey 10, Whippany, NJ 07981, USA", 408122808, -743999179),
    ("U.S. 6, Shohola, PA 18458, USA", 413628156, -749015468),
    ("5 Conners Road, Kingston, NY 12401, USA", 419999544, -740371136),
    ("Mid Hudson Psychiatric Center, New Hampton, NY 10958, USA", 414008389, -743951297),
    ("287 Flugertown Road, Livingston Manor, NY 12758, USA", 419611318, -746524769),
    ("4001 Tremley Point Road, Linden, NJ 07036, USA", 406109563, -742186778),
    ("352 South Mountain Road, Wallkill, NY 12589, USA", 416802456, -742370183),
    ("Berkshire Valley Management Area Trail, Jefferson, NJ, USA", 409146138, -746188906),
    ("6 East Emerald Isle Drive, Lake Hopatcong, NJ 07849, USA", 409642566, -746017679),
]
DB = [route_guide_pb2.Feature(name=n, location=route_guide_pb2.Point(latitude=la, longitude=lo)) for n, la, lo in FEATURES]


def _meta(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


class _Behaviour:
    """Shared test-controlled behaviour; ``failed_keys`` makes x-fail-first fail once per key."""

    def __init__(self, replica: str) -> None:
        self.replica = replica
        self.failed_keys: set[str] = set()

    async def before(self, context: grpc.aio.ServicerContext) -> dict[str, str]:
        meta = _meta(context)
        delay = int(meta.get("x-delay-ms", "0") or 0)
        if delay:  # before any header, as a slow backend would be
            await asyncio.sleep(delay / 1000)
        key = meta.get("x-fail-first")
        if key and key not in self.failed_keys:
            self.failed_keys.add(key)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.replica}: failing the first call for {key}")
        await context.send_initial_metadata((("x-replica", self.replica),))
        return meta


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def __init__(self, behaviour: _Behaviour) -> None:
        self.b = behaviour

    async def SayHello(self, request, context):
        meta = await self.b.before(context)
        if meta.get("x-echo-headers") == "1":
            context.set_trailing_metadata(tuple((f"x-seen-{k.lstrip(':')}", v) for k, v in meta.items()
                                                if not k.endswith("-bin")))
        return helloworld_pb2.HelloReply(message=f"Hello {request.name} from {self.b.replica}")


def _in_rect(p: route_guide_pb2.Point, r: route_guide_pb2.Rectangle) -> bool:
    return (min(r.lo.longitude, r.hi.longitude) <= p.longitude <= max(r.lo.longitude, r.hi.longitude)
            and min(r.lo.latitude, r.hi.latitude) <= p.latitude <= max(r.lo.latitude, r.hi.latitude))


def _distance(a: route_guide_pb2.Point, b: route_guide_pb2.Point) -> int:
    lat1, lat2 = math.radians(a.latitude / 1e7), math.radians(b.latitude / 1e7)
    dlat, dlon = lat2 - lat1, math.radians((b.longitude - a.longitude) / 1e7)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return int(6371000 * 2 * math.atan2(math.sqrt(h), math.sqrt(1 - h)))


class RouteGuide(route_guide_pb2_grpc.RouteGuideServicer):
    def __init__(self, behaviour: _Behaviour) -> None:
        self.b = behaviour

    async def GetFeature(self, request, context):
        await self.b.before(context)
        for f in DB:
            if f.location == request:
                return f
        return route_guide_pb2.Feature(name="", location=request)

    async def ListFeatures(self, request, context):
        meta = await self.b.before(context)
        interval = int(meta.get("x-stream-interval-ms", "0") or 0) / 1000
        count = int(meta.get("x-stream-count", "0") or 0)
        if count:
            for i in range(count):
                if i and interval:
                    await asyncio.sleep(interval)
                f = DB[i % len(DB)]
                yield route_guide_pb2.Feature(name=f"{f.name} #{i + 1}", location=f.location)
            return
        for f in DB:
            if _in_rect(f.location, request):
                if interval:
                    await asyncio.sleep(interval)
                yield f

    async def RecordRoute(self, request_iterator, context):
        await self.b.before(context)
        started = time.monotonic()
        count = features = distance = 0
        prev = None
        async for point in request_iterator:
            count += 1
            features += any(f.location == point and f.name for f in DB)
            if prev is not None:
                distance += _distance(prev, point)
            prev = point
        return route_guide_pb2.RouteSummary(point_count=count, feature_count=features, distance=distance,
                                            elapsed_time=int(time.monotonic() - started))

    async def RouteChat(self, request_iterator, context):
        await self.b.before(context)
        notes: list[route_guide_pb2.RouteNote] = []
        async for note in request_iterator:
            for prev in notes:
                if prev.location == note.location:
                    yield prev
            notes.append(note)
            yield route_guide_pb2.RouteNote(location=note.location, message=f"{self.b.replica} got: {note.message}")


async def start_server(*, replica: str, greeter_port: int | None = None, route_guide_port: int | None = None,
                       host: str = "127.0.0.1", tls: tuple[bytes, bytes] | None = None) -> list[grpc.aio.Server]:
    """Start one server per given port (separate ports, like separate deployments).

    ``tls``: (certificate chain PEM, private key PEM) to serve gRPC over TLS instead of h2c.
    """
    behaviour = _Behaviour(replica)
    servers = []
    for port, register in ((greeter_port, lambda s: helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(behaviour), s)),
                           (route_guide_port, lambda s: route_guide_pb2_grpc.add_RouteGuideServicer_to_server(RouteGuide(behaviour), s))):
        if not port:
            continue
        server = grpc.aio.server()
        register(server)
        address = f"{host}:{port}"
        bound = (server.add_secure_port(address, grpc.ssl_server_credentials([(tls[1], tls[0])])) if tls
                 else server.add_insecure_port(address))
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        await server.start()
        servers.append(server)
    return servers


async def _main(args: argparse.Namespace) -> None:
    tls = None
    if args.tls_cert:
        with open(args.tls_cert, "rb") as c, open(args.tls_key, "rb") as k:
            tls = (c.read(), k.read())
    servers = await start_server(replica=args.replica, greeter_port=args.greeter_port,
                                 route_guide_port=args.route_guide_port, host=args.host, tls=tls)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await asyncio.gather(*(s.stop(grace=0.5) for s in servers))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m demo.backends")
    p.add_argument("--greeter-port", type=int)
    p.add_argument("--route-guide-port", type=int)
    p.add_argument("--replica", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls-cert", help="serve TLS with this certificate chain (PEM)")
    p.add_argument("--tls-key", help="private key for --tls-cert (PEM)")
    args = p.parse_args(argv)
    if not args.greeter_port and not args.route_guide_port:
        p.error("give --greeter-port and/or --route-guide-port")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
