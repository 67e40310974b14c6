"""Wiring for ``xds-server serve``: file source -> store -> controller -> cache -> ADS + admin."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import grpc
from aiohttp import web

from xds_server.admin import make_app
from xds_server.ads import AdsServer, Limits
from xds_server.auth import Authenticators, MtlsAuthenticator, TokenAuthenticator, kubernetes_review
from xds_server.cache import SnapshotCache
from xds_server.controller import Controller
from xds_server.metrics import XdsMetrics
from xds_server.sources.files import MAX_FILE_BYTES, FileSource
from xds_server.store import ConfigStore

log = logging.getLogger(__name__)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config_dirs: Sequence[Path]
    xds_address: str = "127.0.0.1:18000"
    admin_address: str = "127.0.0.1:19000"
    debounce_quiet: float = 0.1
    debounce_max: float = 1.0
    kubernetes: bool = False
    kubeconfig: str | None = None
    namespaces: Sequence[str] = ()
    gateway_class: str = "xds-server"
    #: the Emissary ambassador_ids this server answers for (Emissary's AMBASSADOR_ID)
    ambassador_ids: Sequence[str] = ("default",)
    #: Gateway API ``status.addresses`` when no Service labelled with the Gateway's name fronts its Envoys
    gateway_addresses: Sequence[str] = ()
    #: xDS over TLS (PEM files), mTLS client CA, Kubernetes token auth (TokenReview audience)
    xds_tls_cert: str | None = None
    xds_tls_key: str | None = None
    xds_client_ca: str | None = None
    xds_auth: str | None = None  # "kubernetes"
    xds_token_audience: str = "xds-server"
    #: service accounts (ns/sa) allowed to act as gateways (empty: any verified identity)
    gateway_service_accounts: Sequence[str] = ()
    #: listen without authentication on a non-loopback address
    insecure_xds: bool = False
    #: a second HTTP listener with only /healthz, /readyz and /metrics (the admin/debug server stays on admin_address)
    probe_address: str | None = None
    lease_namespace: str = "default"
    #: per-client limits of the ADS server
    limits: Limits = Limits()
    max_file_bytes: int = MAX_FILE_BYTES
    #: cap on distinct node classes (flavour, namespace, selected gateways)
    max_node_classes: int = 1000
    #: Envoys on Delta xDS get gateway virtual hosts over VHDS (False: inside the route configuration)
    vhds: bool = True
    #: cap on concurrent xDS connections
    max_connections: int = 10_000
    #: time a new connection has to complete its HTTP/2 handshake
    handshake_timeout_s: float = 10.0


def grpc_server_options(options: ServeOptions) -> list[tuple[str, int]]:
    """Transport limits: no connection may hold resources without doing xDS.

    * a connection must complete its HTTP/2 handshake within ``handshake_timeout_s`` (10 s);
    * at most 16 concurrent streams per connection (ADS needs one);
    * pings from clients at most every 5 s (keepalive enforcement), and none without a call;
    * a connection lives at most 30 min (+ 5 min grace), as istiod's MaxServerConnectionAge, which also
      rebalances clients across replicas;
    * an idle connection (no call) is closed after 5 min;
    * a request message is at most 4 MB (a DiscoveryRequest near the name limit is well under it).
    """
    return [("grpc.max_send_message_length", 256 * 1024 * 1024),
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ("grpc.server_handshake_timeout_ms", int(options.handshake_timeout_s * 1000)),
            ("grpc.max_concurrent_streams", 16),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.max_connection_age_ms", 30 * 60 * 1000),
            ("grpc.max_connection_age_grace_ms", 5 * 60 * 1000),
            ("grpc.max_connection_idle_ms", 5 * 60 * 1000),
            ("grpc.max_allowed_incoming_connections", options.max_connections)]


class InsecureConfig(SystemExit):
    """``serve`` refuses a configuration that would hand out keys without authentication."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_security(options: ServeOptions, *, warn: bool = True) -> None:
    """Secure by default: TLS goes with an authenticator, and no authenticator means loopback only
    unless ``--insecure-xds`` says otherwise (logged at every start)."""
    authenticated = bool(options.xds_client_ca or options.xds_auth)
    if authenticated and not (options.xds_tls_cert and options.xds_tls_key):
        raise InsecureConfig("xds-server: --xds-client-ca and --xds-auth need TLS on the xDS port: give "
                             "--xds-tls-cert FILE and --xds-tls-key FILE")
    if options.xds_auth not in (None, "kubernetes"):
        raise InsecureConfig(f"xds-server: --xds-auth must be 'kubernetes', got {options.xds_auth!r}")
    host, _ = split_address(options.xds_address)
    if not authenticated and not is_loopback(host):
        if not options.insecure_xds:
            raise InsecureConfig(
                f"xds-server: refusing to serve xDS on {options.xds_address} without authentication: any process that "
                "can reach it could download every gateway's TLS private keys. Configure --xds-tls-cert/--xds-tls-key "
                "with --xds-client-ca (mTLS) or --xds-auth kubernetes (service-account tokens), listen on 127.0.0.1, "
                "or pass --insecure-xds to accept the risk")
        if warn:
            log.warning("--insecure-xds: xDS on %s has no authentication; node claims (namespace, labels) are "
                        "trusted and any client that reaches the port can fetch the TLS private keys of the "
                        "namespaces it claims", options.xds_address)


def _authenticators(options: ServeOptions) -> Authenticators:
    out = []
    if options.xds_client_ca:
        out.append(MtlsAuthenticator())
    if options.xds_auth == "kubernetes":
        from k8s_watch.source import api_client

        out.append(TokenAuthenticator(kubernetes_review(api_client(kubeconfig=options.kubeconfig)),
                                      audience=options.xds_token_audience))
    return Authenticators(out, gateway_service_accounts=options.gateway_service_accounts)


def _server_credentials(options: ServeOptions) -> grpc.ServerCredentials | None:
    """TLS for the xDS port (gRPC's defaults: TLS 1.2 minimum, 1.3 preferred); with a client CA, a
    verified client certificate is required."""
    if not options.xds_tls_cert:
        return None
    cert = Path(options.xds_tls_cert).read_bytes()
    key = Path(options.xds_tls_key).read_bytes()
    ca = Path(options.xds_client_ca).read_bytes() if options.xds_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


async def serve(options: ServeOptions, *, stop_event: asyncio.Event | None = None) -> None:
    check_security(options)
    stop_event = stop_event or asyncio.Event()
    store = ConfigStore()
    cache = SnapshotCache(max_classes=options.max_node_classes)
    k8s = None
    hook = None
    election = None
    if options.kubernetes:
        from k8s_watch.source import KubernetesSource, api_client
        from k8s_watch.status import LeaderElection, StatusWriter

        api = api_client(kubeconfig=options.kubeconfig)
        k8s = KubernetesSource(store=store, api=api, namespaces=options.namespaces)
        election = LeaderElection(api=api, namespace=options.lease_namespace)
        writer = StatusWriter(api=api, election=election,
                              versions=_ServedVersions(k8s))
        election.on_elected = writer.flush

        def write_statuses(translation, by_ref):  # noqa: ANN001 - runs in a worker thread
            writer.write(translation.statuses, by_ref)
        hook = write_statuses

        async def nack_statuses() -> None:
            """Every 2 s: the objects connected Envoys reject now, as conditions on them."""
            while not stop_event.is_set():
                await asyncio.sleep(2.0)
                try:
                    nacks = {d.object_ref: d.message for d in ads.nack_diagnostics() if d.object_ref is not None}
                    await asyncio.to_thread(writer.set_nacks, nacks)
                except Exception:  # noqa: BLE001 - status is best effort
                    log.exception("writing NACK conditions failed")
    metrics = XdsMetrics()  # this server's own registry, never the process-global one
    controller = Controller(store=store, cache=cache, quiet=options.debounce_quiet, max_delay=options.debounce_max,
                            gateway_class=options.gateway_class, on_translated=hook,
                            ambassador_ids=tuple(options.ambassador_ids),
                            gateway_addresses=tuple(options.gateway_addresses), metrics=metrics)
    ads = AdsServer(cache=cache, limits=options.limits, auth=_authenticators(options), metrics=metrics,
                    sources=controller.sources, changed_at=controller.changed_at, vhds=options.vhds)
    metrics.objects = lambda: controller.object_counts

    def diagnostic_counts() -> dict[str, int]:
        counts = controller.diagnostic_counts()
        for d in (*cache.request_diagnostics, *ads.nack_diagnostics()):
            counts[d.severity.value] = counts.get(d.severity.value, 0) + 1
        return counts
    metrics.diagnostics = diagnostic_counts
    source = FileSource(dirs=options.config_dirs, store=store, max_file_bytes=options.max_file_bytes)

    server = grpc.aio.server(options=grpc_server_options(options))
    server.add_generic_rpc_handlers((ads.handler(),))
    xds_host, xds_port = split_address(options.xds_address)
    credentials = _server_credentials(options)
    bound = server.add_secure_port(f"{xds_host}:{xds_port}", credentials) if credentials is not None else \
        server.add_insecure_port(f"{xds_host}:{xds_port}")
    if bound == 0:
        raise OSError(f"cannot listen for xDS on {options.xds_address}")
    runner = web.AppRunner(make_app(ads=ads, controller=controller,
                                    sources_ready=(lambda: k8s.ready) if k8s is not None else (lambda: True)),
                           access_log=None)
    await runner.setup()
    admin_host, admin_port = split_address(options.admin_address)
    await web.TCPSite(runner, admin_host, admin_port).start()
    probe_runner = None
    if options.probe_address:
        probe_runner = web.AppRunner(make_app(ads=ads, controller=controller, probes_only=True,
                                              sources_ready=(lambda: k8s.ready) if k8s is not None else (lambda: True)),
                                     access_log=None)
        await probe_runner.setup()
        probe_host, probe_port = split_address(options.probe_address)
        await web.TCPSite(probe_runner, probe_host, probe_port).start()
    await server.start()
    log.info("xDS on %s, admin on http://%s", options.xds_address, options.admin_address)

    await source.aload_all()
    if k8s is not None:
        k8s.start()
        await asyncio.wait_for(k8s.ready_event.wait(), timeout=None)  # never translate a partial cluster view
        threading.Thread(target=election.run, name="leader-election", daemon=True).start()
    tasks = [asyncio.create_task(controller.run(stop_event=stop_event), name="controller"),
             asyncio.create_task(source.run(stop_event=stop_event), name="file-source")]
    if k8s is not None:
        tasks.append(asyncio.create_task(nack_statuses(), name="nack-statuses"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop_event.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        stopper = asyncio.create_task(stop_event.wait())
        pending = {stopper, *tasks}
        while stopper in pending:  # a source that finishes (nothing to watch) is fine; one that fails is not
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopper and t.exception() is not None:
                    raise t.exception()
    finally:
        stop_event.set()
        if k8s is not None:
            k8s.stop()
            election.stop.set()
        for t in tasks:
            t.cancel()
        await server.stop(grace=1.0)
        await runner.cleanup()
        if probe_runner is not None:
            await probe_runner.cleanup()


class _ServedVersions(dict):
    """The API version each watched kind is served at, read live from the reflectors."""

    def __init__(self, source) -> None:  # noqa: ANN001
        super().__init__()
        self.source = source

    def get(self, key, default=None):  # noqa: ANN001
        for r in self.source.reflectors:
            if r.kind.label == key and r.version:
                return r.version
        return default
