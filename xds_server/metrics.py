"""Prometheus metrics of one server instance (``GET /metrics``).

Every server has its own :class:`~prometheus_client.CollectorRegistry` (never the process-global one), so
tests can run several servers in one process.  Counters and histograms move where things happen (the ADS
send paths, the controller); gauges are computed when scraped, from the live state:

=============================================  =========  ===============================================
``xds_server_connected_clients{flavour}``      gauge      connected ADS streams, by flavour (envoy, grpc)
``xds_server_pushes_total{type}``              counter    responses sent, by type (CDS, EDS, LDS, RDS, SDS)
``xds_server_push_errors_total{type}``         counter    responses that could not be written
``xds_server_nacks_total{type}``               counter    NACKs received
``xds_server_translation_seconds``             histogram  time to translate and serialize one config
``xds_server_convergence_seconds``             histogram  config change seen -> a client ACKed it
``xds_server_config_objects{kind}``            gauge      config objects in the current translation
``xds_server_config_diagnostics{severity}``    gauge      current diagnostics, by severity
``xds_server_response_bytes{type}``            histogram  size of each response sent
=============================================  =========  ===============================================
"""
from __future__ import annotations

from collections import Counter as _Tally
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from translators import type_urls

PREFIX = "xds_server"
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: seconds: translation of a small config takes milliseconds, 10,000 services seconds
TRANSLATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: seconds: as Istio's pilot_proxy_convergence_time
CONVERGENCE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
#: bytes: one small RDS to a full CDS at 10,000 services (~15 MB)
RESPONSE_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20, 64 << 20)


def short(type_url: str) -> str:
    """The type label: CDS, EDS, LDS, RDS, SDS (the type URL's tail for anything else)."""
    return type_urls.SHORT_NAMES.get(type_url) or type_url.rsplit(".", 1)[-1][:40]


class _LiveGauges:
    """Gauges computed at scrape time from callables the server wires in."""

    def __init__(self, metrics: "XdsMetrics") -> None:
        self.metrics = metrics

    def describe(self) -> Iterable:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterable[GaugeMetricFamily]:
        m = self.metrics
        clients = GaugeMetricFamily(f"{PREFIX}_connected_clients", "Connected ADS streams, by client flavour",
                                    labels=["flavour"])
        for flavour, n in sorted(_safe(m.clients).items()):
            clients.add_metric([flavour], n)
        yield clients
        objects = GaugeMetricFamily(f"{PREFIX}_config_objects", "Config objects in the last translation, by kind",
                                    labels=["kind"])
        for kind, n in sorted(_safe(m.objects).items()):
            objects.add_metric([kind], n)
        yield objects
        diags = GaugeMetricFamily(f"{PREFIX}_config_diagnostics", "Current config diagnostics, by severity",
                                  labels=["severity"])
        counts = _safe(m.diagnostics)
        for severity in sorted({"error", "warning", "info", *counts}):
            diags.add_metric([severity], counts.get(severity, 0))
        yield diags


def _safe(fn: Callable[[], dict[str, int]] | None) -> dict[str, int]:
    if fn is None:
        return {}
    try:
        return dict(fn())
    except Exception:  # noqa: BLE001 - a scrape must not fail because a view is mid-update
        return {}


class XdsMetrics:
    """The metrics of one server: a dedicated registry and the instruments the ADS server and the
    controller update.  ``clients``, ``objects`` and ``diagnostics`` are callables returning
    ``label -> count``, read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.pushes = Counter(f"{PREFIX}_pushes", "xDS responses sent, by type", ["type"], registry=r)
        self.push_errors = Counter(f"{PREFIX}_push_errors", "xDS responses that could not be written, by type",
                                   ["type"], registry=r)
        self.nacks = Counter(f"{PREFIX}_nacks", "NACKs received from clients, by type", ["type"], registry=r)
        self.translation = Histogram(f"{PREFIX}_translation_seconds",
                                     "Time to translate the config and serialize the snapshots",
                                     buckets=TRANSLATION_BUCKETS, registry=r)
        self.convergence = Histogram(f"{PREFIX}_convergence_seconds",
                                     "From the controller seeing a config change to a client ACKing the version "
                                     "built from it (per client and type)", buckets=CONVERGENCE_BUCKETS, registry=r)
        self.response_bytes = Histogram(f"{PREFIX}_response_bytes", "Size of each xDS response sent, by type",
                                        ["type"], buckets=RESPONSE_BUCKETS, registry=r)
        self.clients: Callable[[], dict[str, int]] | None = None
        self.objects: Callable[[], dict[str, int]] | None = None
        self.diagnostics: Callable[[], dict[str, int]] | None = None
        r.register(_LiveGauges(self))

    # ---- updates (cheap: one dict lookup and an add under a lock)
    def pushed(self, type_url: str, size: int) -> None:
        label = short(type_url)
        self.pushes.labels(label).inc()
        self.response_bytes.labels(label).observe(size)

    def push_failed(self, type_url: str) -> None:
        self.push_errors.labels(short(type_url)).inc()

    def nacked(self, type_url: str) -> None:
        self.nacks.labels(short(type_url)).inc()

    def translated(self, seconds: float) -> None:
        self.translation.observe(seconds)

    def converged(self, seconds: float) -> None:
        self.convergence.observe(max(0.0, seconds))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def tally(items: Iterable[str]) -> dict[str, int]:
    return dict(_Tally(items))
