"""Echo "pods" for the Gateway API conformance runner, answering like upstream's echo-basic image
(kubernetes-sigs/gateway-api-conformance-images, echo-basic/).

* HTTP pods answer every request with echo-basic's ``RequestAssertions`` JSON: ``path`` (the request
  URI, query included), ``host``, ``method``, ``proto``, ``headers`` (canonical name -> values),
  ``httpPort``, ``namespace``, ``ingress``, ``service``, ``pod``.  ``/status/NNN`` answers NNN,
  ``?delay=1s`` waits first, and ``X-Echo-Set-Header: name:value,...`` sets response headers, as
  echo-basic does.
* gRPC pods serve ``gateway_api_conformance.echo_basic.grpcecho.GrpcEcho`` (protos/grpcecho.proto,
  upstream's proto verbatim): ``Echo`` and ``EchoTwo`` answer the ``Assertions`` (method, request
  metadata, authority, pod context); ``EchoThree`` is unimplemented, as upstream.

Each pod is its own server (an HTTP server thread or a grpcio server) on a free 127.0.0.1 port, with
its own pod name and namespace.  Run::

    python -m tests.conformance_echo --pod http:infra-backend-v1-abc-0:gateway-conformance-infra:infra-backend-v1 ...

``--pod-tls POD=CERT,KEY`` makes gRPC pod POD also serve ``GrpcEcho`` over TLS with that PEM certificate and
key on a second port, as echo-basic does with ``GRPC_ECHO_SERVER`` and ``TLS_SERVER_CERT`` (upstream's
grpc-infra-backend-v1 with the Secret ``tls-checks-certificate``: plaintext on 3000, TLS on 8443).

It prints one line ``{"ready": {"<pod>": <port>, ...}, "tls": {"<pod>": <TLS port>, ...}}`` once every pod
listens, then serves until stdin closes or SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import grpc

from protos import grpcecho_pb2, grpcecho_pb2_grpc

GRPC_SERVICE = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"


def _canonical(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: x-header-set -> X-Header-Set."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def _go_duration(text: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|us|ns|s|m|h)", text):
        total += float(number) * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def http_handler(pod: str, namespace: str, service: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            uri = self.path.replace("//", "/")
            parsed = urlsplit(uri)
            status = re.fullmatch(r"/status/(\d\d\d)", uri)
            if parsed.path.startswith("/status/"):
                self.send_response(int(status.group(1)) if status else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            delay = parse_qs(parsed.query).get("delay")
            if delay:
                time.sleep(min(_go_duration(delay[0]), 30.0))
            headers: dict[str, list[str]] = {}
            for k, v in self.headers.items():
                headers.setdefault(_canonical(k), []).append(v)
            host = headers.pop("Host", [""])[0]
            body = json.dumps({"path": uri, "host": host, "method": self.command, "proto": self.request_version,
                               "headers": headers, "httpPort": str(self.server.server_address[1]),
                               "namespace": namespace, "ingress": "", "service": service, "pod": pod},
                              indent=1).encode()
            self.send_response(200)
            for spec in headers.get("X-Echo-Set-Header", []):
                for kv in spec.split(","):
                    name, _, value = kv.strip().partition(":")
                    self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_CONNECT = do_TRACE = _serve

    return Handler


class GrpcEcho(grpcecho_pb2_grpc.GrpcEchoServicer):
    def __init__(self, pod: str, namespace: str, service: str) -> None:
        self.context = grpcecho_pb2.Context(namespace=namespace, ingress="", service_name=service, pod=pod)

    def _echo(self, method: str, context: grpc.ServicerContext) -> grpcecho_pb2.EchoResponse:
        headers = [grpcecho_pb2.Header(key=k, value=v if isinstance(v, str) else v.decode("latin-1"))
                   for k, v in context.invocation_metadata()]
        authority = next((h.value for h in headers if h.key in (":authority", "host")), "")
        return grpcecho_pb2.EchoResponse(assertions=grpcecho_pb2.Assertions(
            fully_qualified_method=f"/{GRPC_SERVICE}/{method}", headers=headers, authority=authority,
            context=self.context))

    def Echo(self, request, context):  # noqa: N802 - gRPC method name
        return self._echo("Echo", context)

    def EchoTwo(self, request, context):  # noqa: N802
        return self._echo("EchoTwo", context)
    # EchoThree: left to the generated servicer, which answers UNIMPLEMENTED (as upstream).


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pod", action="append", default=[],
                    help="protocol:pod-name:namespace[:service], protocol http or grpc")
    ap.add_argument("--pod-tls", action="append", default=[],
                    help="POD=CERT,KEY: that gRPC pod also serves TLS (PEM files) on a second port")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    tls = {pod: paths.split(",", 1) for pod, _, paths in (t.partition("=") for t in args.pod_tls)}
    ports: dict[str, int] = {}
    tls_ports: dict[str, int] = {}
    stoppers = []
    for spec in args.pod:
        protocol, pod, namespace, *rest = spec.split(":")
        service = rest[0] if rest else ""
        if protocol == "http":
            server = ThreadingHTTPServer((args.host, 0), http_handler(pod, namespace, service))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            ports[pod] = server.server_address[1]
            stoppers.append(server.shutdown)
        elif protocol == "grpc":
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
            grpcecho_pb2_grpc.add_GrpcEchoServicer_to_server(GrpcEcho(pod, namespace, service), server)
            ports[pod] = server.add_insecure_port(f"{args.host}:0")
            if pod in tls:
                with open(tls[pod][0], "rb") as crt, open(tls[pod][1], "rb") as key:
                    creds = grpc.ssl_server_credentials([(key.read(), crt.read())])
                tls_ports[pod] = server.add_secure_port(f"{args.host}:0", creds)
            server.start()
            stoppers.append(lambda s=server: s.stop(0))
        else:
            raise SystemExit(f"unknown protocol {protocol!r}")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    unknown = set(tls) - set(tls_ports)
    if unknown:
        raise SystemExit(f"--pod-tls for pods that are not gRPC pods: {sorted(unknown)}")
    print(json.dumps({"ready": ports, "tls": tls_ports}), flush=True)
    done.wait()
    for stop in stoppers:
        stop()


if __name__ == "__main__":
    main()
