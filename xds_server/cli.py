"""The ``xds-server`` command line.

Stable contract (scripts and docs outside this repo depend on it)::

    xds-server serve --config DIR [--config DIR ...] --xds-address H:P --admin-address H:P
    xds-server serve --kubernetes [--kubeconfig PATH] [--namespace NS ...] [--gateway-class NAME]
    xds-server validate DIR...
    xds-server render DIR... --node-id ID [--label k=v ...] [--namespace NS]
    xds-server bootstrap envoy --node-id ID --label k=v [--xds-address H:P] [--gateway NAME --namespace NS] [--ads delta|sotw]
    xds-server bootstrap envoy --node-id ID --dialect emissary [--ambassador-id ID] [--namespace NS]
    xds-server bootstrap grpc --node-id ID [--namespace NS] [--xds-address H:P] [-o FILE]
    xds-server status [--admin-address H:P] [--stale-after SECONDS]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from translators.diagnostics import Severity, has_errors
from translators.node import ENVOY, GRPC, NodeInfo
from translators.pipeline import translate
from translators.render import render
from xds_server.redact import redact
from xds_server.sources.files import load_dirs


def _labels(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--label must be key=value, got {item!r}")
        out[key] = value
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    from xds_server.ads import Limits
    from xds_server.server import ServeOptions, serve

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.config and not args.kubernetes:
        raise SystemExit("give --config DIR and/or --kubernetes")
    options = ServeOptions(config_dirs=[Path(d) for d in args.config or []], xds_address=args.xds_address,
                           admin_address=args.admin_address, debounce_quiet=args.debounce_quiet,
                           debounce_max=args.debounce_max, kubernetes=args.kubernetes, kubeconfig=args.kubeconfig,
                           namespaces=args.namespace, gateway_class=args.gateway_class,
                           ambassador_ids=tuple(args.ambassador_id or ["default"]),
                           gateway_addresses=tuple(args.gateway_address or ()),
                           xds_tls_cert=args.xds_tls_cert, xds_tls_key=args.xds_tls_key,
                           xds_client_ca=args.xds_client_ca, xds_auth=args.xds_auth,
                           xds_token_audience=args.xds_token_audience,
                           gateway_service_accounts=tuple(args.gateway_service_account or ()),
                           insecure_xds=args.insecure_xds, probe_address=args.probe_address,
                           lease_namespace=args.lease_namespace, max_file_bytes=args.max_file_bytes,
                           max_node_classes=args.max_node_classes, vhds=args.vhds,
                           limits=Limits(names_per_request=args.max_names_per_request,
                                         lookup_names_per_request=args.max_lookup_names_per_request,
                                         names_per_stream=args.max_names_per_stream))
    from xds_server.server import check_security

    check_security(options, warn=False)  # a clear message and exit 1 before anything starts; serve warns
    try:
        asyncio.run(serve(options))
    except KeyboardInterrupt:
        pass
    return 0


def _translate_or_exit(objects, ambassador_ids=("default",)):  # noqa: ANN001, ANN202
    """Translation for the one-shot commands: a bug is one clear line and exit 2, never a traceback."""
    try:
        return translate(objects, ambassador_ids=tuple(ambassador_ids))
    except Exception as exc:  # noqa: BLE001
        print(redact(f"xds-server: internal error while translating: {type(exc).__name__}: {exc}")[:2000],
              file=sys.stderr)
        raise SystemExit(2) from None


def cmd_validate(args: argparse.Namespace) -> int:
    objects, diags = load_dirs([Path(d) for d in args.dirs], max_file_bytes=args.max_file_bytes)
    translation = _translate_or_exit(objects, args.ambassador_id or ["default"])
    diags = diags + translation.diagnostics
    shown = [d for d in diags if d.severity is not Severity.INFO or args.verbose]
    for d in sorted(shown, key=lambda d: (d.file, str(d.object_ref or ""), d.field_path)):
        print(redact(d.format()))
    errors = sum(d.severity is Severity.ERROR for d in diags)
    warnings = sum(d.severity is Severity.WARNING for d in diags)
    print(f"{len(objects)} objects, {errors} errors, {warnings} warnings", file=sys.stderr)
    return 1 if has_errors(diags) else 0


def cmd_render(args: argparse.Namespace) -> int:
    objects, diags = load_dirs([Path(d) for d in args.dirs], max_file_bytes=args.max_file_bytes)
    translation = _translate_or_exit(objects, args.ambassador_id or ["default"])
    node = NodeInfo.of(flavour=args.flavour, namespace=args.namespace, labels=_labels(args.label))
    out = {"node": {"id": args.node_id, "flavour": node.flavour, "namespace": node.namespace, "labels": dict(node.labels)}}
    out.update(render(translation, node))
    print(redact(json.dumps(out, indent=2, sort_keys=False)))
    for d in diags + translation.diagnostics:
        if d.severity is Severity.ERROR:
            print(redact(d.format()), file=sys.stderr)
    return 0


def cmd_bootstrap_grpc(args: argparse.Namespace) -> int:
    from xds_server.bootstrap import grpc_bootstrap

    doc = grpc_bootstrap(node_id=args.node_id, namespace=args.namespace, xds_address=args.xds_address,
                         labels=_labels(args.label), xds_ca=args.xds_ca, xds_client_cert=args.xds_client_cert,
                         xds_client_key=args.xds_client_key, xds_token_file=args.xds_token_file)
    text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from xds_server.bootstrap import dump_yaml, envoy_bootstrap

    labels = _labels(args.label)
    if args.gateway:
        labels["gateway.networking.k8s.io/gateway-name"] = args.gateway
    if args.dialect == "emissary":
        labels["xds-server.io/dialect"] = "emissary"
        labels["xds-server.io/ambassador-id"] = args.ambassador_id or "default"
    elif args.ambassador_id:
        raise SystemExit("--ambassador-id goes with --dialect emissary")
    if bool(args.xds_client_cert) != bool(args.xds_client_key):
        raise SystemExit("--xds-client-cert and --xds-client-key go together")
    if (args.xds_client_cert or args.xds_token_file) and not args.xds_ca:
        raise SystemExit("--xds-client-cert and --xds-token-file need TLS to the control plane: add --xds-ca FILE")
    token = Path(args.xds_token_file).read_text().strip() if args.xds_token_file else None
    doc = envoy_bootstrap(node_id=args.node_id, labels=labels, namespace=args.namespace,
                          xds_address=args.xds_address, admin_address=args.envoy_admin_address, ads=args.ads,
                          xds_ca=args.xds_ca, xds_client_cert=args.xds_client_cert, xds_client_key=args.xds_client_key,
                          xds_token=token, xds_server_name=args.xds_server_name, service_account=args.service_account,
                          stats_flush_interval=args.stats_flush_interval)
    if args.output:
        Path(args.output).write_text(dump_yaml(doc))
    else:
        sys.stdout.write(dump_yaml(doc))
    return 0


STATUS_TYPES = ("CDS", "LDS", "EDS", "RDS", "VHDS", "SDS")


def status_rows(syncz: dict, *, stale_after: float) -> tuple[list[list[str]], list[str], bool]:
    """The ``status`` table from ``/debug/syncz``: rows, NACK notes, and whether anything is wrong (a
    NACK, or a type STALE for more than ``stale_after`` seconds)."""
    rows: list[list[str]] = []
    notes: list[str] = []
    bad = False
    for c in syncz.get("clients", []):
        types = c.get("types") or {}
        cells = []
        for t in STATUS_TYPES:
            e = types.get(t)
            status = (e or {}).get("status", "-")
            if status == "STALE":
                age = float(e.get("stale_seconds") or 0.0)
                if age > stale_after:
                    bad = True
                cell = f"STALE ({age:.0f}s)"
            else:
                cell = status
            if status == "NACKED":
                bad = True
                where = "; ".join(f"{s.get('kind')}/{s.get('namespace')}/{s.get('name')} ({s.get('file') or '?'})"
                                  for s in e.get("sources") or [])
                notes.append(f"{c.get('node')} {t} NACKED: {e.get('message', '')}"
                             + (f"\n    from: {where}" if where else ""))
            cells.append(cell)
        rows.append([str(c.get("node", "")), str(c.get("flavour", "")), str(c.get("namespace", "")), *cells])
    return rows, notes, bad


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in (header, *rows))


def cmd_status(args: argparse.Namespace) -> int:
    """``istioctl proxy-status`` in our terms: exit 0 all in sync, 1 NACKED or STALE too long, 2 unreachable."""
    import urllib.error
    import urllib.request

    address = args.admin_address
    url = address if address.startswith(("http://", "https://")) else f"http://{address}"
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/debug/syncz", timeout=args.timeout) as resp:
            syncz = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"xds-server status: cannot reach the admin server at {address}: {exc}", file=sys.stderr)
        return 2
    rows, notes, bad = status_rows(syncz, stale_after=args.stale_after)
    if args.json:
        print(json.dumps(syncz, indent=2))
    else:
        print(format_table(["NODE", "FLAVOUR", "NAMESPACE", *STATUS_TYPES], rows) if rows else "no connected clients")
        for n in notes:
            print(n)
    return 1 if bad else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xds-server", description="xDS control plane for Envoy gateways and proxyless gRPC")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve ADS from config directories")
    s.add_argument("--config", action="append", metavar="DIR", help="config directory (repeatable)")
    s.add_argument("--kubernetes", action="store_true", help="watch the Kubernetes API (in-cluster or kubeconfig)")
    s.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then ~/.kube/config)")
    s.add_argument("--namespace", action="append", default=[], metavar="NS", help="watch only these namespaces")
    s.add_argument("--gateway-class", default="xds-server", help="serve Gateway API Gateways of this class")
    sec = s.add_argument_group("xDS security (see README: Security)")
    sec.add_argument("--xds-tls-cert", metavar="FILE", help="PEM certificate chain for TLS on the xDS port")
    sec.add_argument("--xds-tls-key", metavar="FILE", help="PEM private key for TLS on the xDS port")
    sec.add_argument("--xds-client-ca", metavar="FILE",
                     help="require client certificates from this CA; the SPIFFE URI SAN spiffe://TD/ns/NS/sa/SA is "
                     "the client's identity")
    sec.add_argument("--xds-auth", choices=["kubernetes"],
                     help="verify Kubernetes service-account tokens (authorization: Bearer) with TokenReview")
    sec.add_argument("--xds-token-audience", default="xds-server", metavar="AUD",
                     help="the audience tokens must be issued for (default: xds-server)")
    sec.add_argument("--gateway-service-account", action="append", metavar="NS/SA",
                     help="only these service accounts may act as gateways (repeatable)")
    sec.add_argument("--insecure-xds", action="store_true",
                     help="serve xDS without authentication on a non-loopback address (node claims are trusted)")
    s.add_argument("--vhds", action=argparse.BooleanOptionalAction, default=True,
                   help="send Envoys on Delta xDS their gateway virtual hosts over VHDS, one resource per host, so "
                   "a route edit re-sends one host (default; --no-vhds: whole route configurations over RDS)")
    s.add_argument("--probe-address", metavar="H:P",
                   help="also serve only /healthz and /readyz here (kubelet probes; debug stays on --admin-address)")
    s.add_argument("--gateway-address", action="append", metavar="ADDRESS",
                   help="Gateway API status.addresses (IP or hostname; repeatable) when no Service labelled "
                   "gateway.networking.k8s.io/gateway-name fronts the Gateway's Envoys")
    s.add_argument("--ambassador-id", action="append", metavar="ID",
                   help="serve Emissary objects of this ambassador_id (repeatable; default: default)")
    s.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "default"),
                   help="namespace of the status-writer Lease")
    s.add_argument("--xds-address", default="127.0.0.1:18000")
    s.add_argument("--admin-address", default="127.0.0.1:19000")
    s.add_argument("--debounce-quiet", type=float, default=0.1, metavar="SECONDS")
    s.add_argument("--debounce-max", type=float, default=1.0, metavar="SECONDS")
    s.add_argument("--log-level", default="info")
    s.add_argument("--max-file-bytes", type=int, default=16 * 1024 * 1024, metavar="BYTES",
                   help="largest config file loaded (default 16 MiB)")
    s.add_argument("--max-names-per-request", type=int, default=10_000, metavar="N",
                   help="listener/route names one request may carry (resolved one by one; default 10000)")
    s.add_argument("--max-lookup-names-per-request", type=int, default=100_000, metavar="N",
                   help="cluster/endpoint/secret names one request may carry (default 100000)")
    s.add_argument("--max-names-per-stream", type=int, default=200_000, metavar="N",
                   help="resource names one stream may subscribe to, over all types (default 200000)")
    s.add_argument("--max-node-classes", type=int, default=1000, metavar="N",
                   help="distinct node classes (flavour, namespace, selected gateways) served (default 1000)")
    s.set_defaults(func=cmd_serve)

    v = sub.add_parser("validate", help="lint config; exit 1 on any error")
    v.add_argument("dirs", nargs="+", metavar="DIR")
    v.add_argument("--verbose", action="store_true", help="also print info diagnostics")
    v.add_argument("--ambassador-id", action="append", metavar="ID", help="Emissary ambassador_id (default: default)")
    v.add_argument("--max-file-bytes", type=int, default=16 * 1024 * 1024, metavar="BYTES")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("render", help="print the resources a node would get, as JSON (dry run)")
    r.add_argument("dirs", nargs="+", metavar="DIR")
    r.add_argument("--node-id", required=True)
    r.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--namespace", default="default")
    r.add_argument("--flavour", choices=[ENVOY, GRPC], default=ENVOY)
    r.add_argument("--ambassador-id", action="append", metavar="ID", help="Emissary ambassador_id (default: default)")
    r.add_argument("--max-file-bytes", type=int, default=16 * 1024 * 1024, metavar="BYTES")
    r.set_defaults(func=cmd_render)

    b = sub.add_parser("bootstrap", help="print a client bootstrap")
    bsub = b.add_subparsers(dest="kind", required=True)
    be = bsub.add_parser("envoy", help="Envoy bootstrap YAML")
    be.add_argument("--node-id", required=True)
    be.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    be.add_argument("--namespace", default="default")
    be.add_argument("--xds-address", default="127.0.0.1:18000")
    be.add_argument("--envoy-admin-address", default="127.0.0.1:9901")
    be.add_argument("--gateway", metavar="NAME", help="serve the Gateway API Gateway NAME (in --namespace)")
    be.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    be.add_argument("--dialect", choices=["istio", "emissary"], default="istio",
                    help="whose gateways this Envoy serves: Istio Gateways (selected by --label) and Gateway API "
                    "(--gateway), or Emissary's Listeners/Hosts/Mappings")
    be.add_argument("--ambassador-id", metavar="ID", help="with --dialect emissary: the ambassador_id (default: default)")
    be.add_argument("--stats-flush-interval", metavar="DURATION",
                    help="flush stats to sinks on this timer (e.g. 5s); default: only when the admin interface is "
                    "asked, since the timed flush walks every cluster's stats on the thread that applies config")
    for parser_ in (be,):
        parser_.add_argument("--xds-ca", metavar="FILE", help="TLS to the control plane, verified against this CA")
        parser_.add_argument("--xds-client-cert", metavar="FILE", help="client certificate for mTLS (with --xds-ca)")
        parser_.add_argument("--xds-client-key", metavar="FILE", help="client private key for mTLS")
        parser_.add_argument("--xds-token-file", metavar="FILE", help="send this service-account token "
                             "(authorization: Bearer; read now: regenerate the bootstrap when it rotates)")
        parser_.add_argument("--xds-server-name", default="", metavar="DNS",
                             help="the control plane certificate's DNS name (SNI and SAN check)")
        parser_.add_argument("--service-account", default="", metavar="SA", help="SERVICE_ACCOUNT node metadata")
    be.add_argument("--ads", choices=["delta", "sotw"], default="delta",
                    help="ADS flavour: incremental (default; Envoy applies only what changed) or state of the world")
    be.set_defaults(func=cmd_bootstrap)
    bg = bsub.add_parser("grpc", help="GRPC_XDS_BOOTSTRAP JSON for proxyless gRPC clients and servers")
    bg.add_argument("--node-id", required=True)
    bg.add_argument("--namespace", default="default")
    bg.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    bg.add_argument("--xds-address", default="127.0.0.1:18000")
    bg.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    bg.add_argument("--xds-ca", metavar="FILE", help="channel_creds tls with this CA (gRFC A65)")
    bg.add_argument("--xds-client-cert", metavar="FILE", help="client certificate for mTLS")
    bg.add_argument("--xds-client-key", metavar="FILE", help="client private key for mTLS")
    bg.add_argument("--xds-token-file", metavar="FILE", help="call_creds jwt_token_file (gRFC A97)")
    bg.set_defaults(func=cmd_bootstrap_grpc)

    st = sub.add_parser("status", help="sync status of every connected client (exit 1 on NACKED or long STALE)")
    st.add_argument("--admin-address", default="127.0.0.1:19000", metavar="H:P", help="the server's admin address")
    st.add_argument("--stale-after", type=float, default=10.0, metavar="SECONDS",
                    help="a type sent but not ACKed for longer than this fails the check (default 10)")
    st.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="HTTP timeout (default 5)")
    st.add_argument("--json", action="store_true", help="print /debug/syncz as JSON instead of the table")
    st.set_defaults(func=cmd_status)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
