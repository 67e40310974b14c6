"""The ``xds-server`` command line.

Stable contract (scripts and docs outside this repo depend on it)::

    xds-server serve --config DIR [--config DIR ...] --xds-address H:P --admin-address H:P
    xds-server serve --kubernetes [--kubeconfig PATH] [--namespace NS ...] [--gateway-class NAME]
    xds-server validate DIR...
    xds-server render DIR... --node-id ID [--label k=v ...] [--namespace NS]
    xds-server bootstrap envoy --node-id ID --label k=v [--xds-address H:P] [--gateway NAME --namespace NS] [--ads delta|sotw]
    xds-server bootstrap envoy --node-id ID --dialect emissary [--ambassador-id ID] [--namespace NS]
    xds-server bootstrap grpc --node-id ID [--namespace NS] [--xds-address H:P] [-o FILE]
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
                           lease_namespace=args.lease_namespace, max_file_bytes=args.max_file_bytes,
                           max_node_classes=args.max_node_classes,
                           limits=Limits(names_per_request=args.max_names_per_request,
                                         lookup_names_per_request=args.max_lookup_names_per_request,
                                         names_per_stream=args.max_names_per_stream))
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
                         labels=_labels(args.label))
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
    doc = envoy_bootstrap(node_id=args.node_id, labels=labels, namespace=args.namespace,
                          xds_address=args.xds_address, admin_address=args.envoy_admin_address, ads=args.ads)
    sys.stdout.write(dump_yaml(doc))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xds-server", description="xDS control plane for Envoy gateways and proxyless gRPC")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve ADS from config directories")
    s.add_argument("--config", action="append", metavar="DIR", help="config directory (repeatable)")
    s.add_argument("--kubernetes", action="store_true", help="watch the Kubernetes API (in-cluster or kubeconfig)")
    s.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then ~/.kube/config)")
    s.add_argument("--namespace", action="append", default=[], metavar="NS", help="watch only these namespaces")
    s.add_argument("--gateway-class", default="xds-server", help="serve Gateway API Gateways of this class")
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
    be.add_argument("--dialect", choices=["istio", "emissary"], default="istio",
                    help="whose gateways this Envoy serves: Istio Gateways (selected by --label) and Gateway API "
                    "(--gateway), or Emissary's Listeners/Hosts/Mappings")
    be.add_argument("--ambassador-id", metavar="ID", help="with --dialect emissary: the ambassador_id (default: default)")
    be.add_argument("--ads", choices=["delta", "sotw"], default="delta",
                    help="ADS flavour: incremental (default; Envoy applies only what changed) or state of the world")
    be.set_defaults(func=cmd_bootstrap)
    bg = bsub.add_parser("grpc", help="GRPC_XDS_BOOTSTRAP JSON for proxyless gRPC clients and servers")
    bg.add_argument("--node-id", required=True)
    bg.add_argument("--namespace", default="default")
    bg.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    bg.add_argument("--xds-address", default="127.0.0.1:18000")
    bg.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    bg.set_defaults(func=cmd_bootstrap_grpc)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
