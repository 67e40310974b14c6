"""Proxyless gRPC processes for the e2e tests; each reads ``GRPC_XDS_BOOTSTRAP``.

``client``: calls ``SayHello`` on an ``xds:///`` target in a loop and prints one
JSON line per call: ``{"t": seconds, "replica": NAME}`` or ``{"t":..., "error": CODE}``.
``server``: an xDS-enabled gRPC server (gRFC A36) serving the demo Greeter; it
prints ``serving`` once its listener config arrived.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent import futures

import grpc

from protos import helloworld_pb2, helloworld_pb2_grpc


def run_client(args: argparse.Namespace) -> int:
    metadata = tuple(tuple(m.split("=", 1)) for m in args.metadata)
    started = time.monotonic()
    with grpc.insecure_channel(args.target) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        n = 0
        while (args.calls and n < args.calls) or (args.seconds and time.monotonic() - started < args.seconds):
            n += 1
            md = metadata + ((("x-fail-first", f"{args.fail_first}-{n}"),) if args.fail_first else ())
            try:
                _, call = stub.SayHello.with_call(helloworld_pb2.HelloRequest(name="proxyless"), metadata=md,
                                                  timeout=args.timeout)
                line = {"t": time.monotonic() - started, "replica": dict(call.initial_metadata()).get("x-replica", "")}
            except grpc.RpcError as exc:
                line = {"t": time.monotonic() - started, "error": exc.code().name, "details": exc.details()}
            print(json.dumps(line), flush=True)
            if args.interval:
                time.sleep(args.interval)
    return 0


class SyncGreeter(helloworld_pb2_grpc.GreeterServicer):
    """grpcio's xDS-enabled server is the synchronous one (``grpc.server(..., xds=True)``)."""

    def __init__(self, replica: str) -> None:
        self.replica = replica

    def SayHello(self, request, context):
        context.send_initial_metadata((("x-replica", self.replica),))
        return helloworld_pb2.HelloReply(message=f"Hello {request.name} from {self.replica}")


def run_server(args: argparse.Namespace) -> int:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), xds=True)
    helloworld_pb2_grpc.add_GreeterServicer_to_server(SyncGreeter(args.replica), server)
    server.add_secure_port(f"{args.host}:{args.port}", grpc.xds_server_credentials(grpc.insecure_server_credentials()))
    server.start()
    print("serving", flush=True)
    server.wait_for_termination()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.proxyless_apps")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--calls", type=int, default=0)
    c.add_argument("--seconds", type=float, default=0)
    c.add_argument("--interval", type=float, default=0)
    c.add_argument("--timeout", type=float, default=10)
    c.add_argument("--metadata", action="append", default=[], metavar="K=V")
    c.add_argument("--fail-first", default="", help="send x-fail-first with a fresh key per call")
    s = sub.add_parser("server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--replica", default="xds-server-app")
    args = p.parse_args(argv)
    if args.cmd == "client":
        return run_client(args)
    return run_server(args)


if __name__ == "__main__":
    sys.exit(main())
