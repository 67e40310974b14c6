"""The intermediate representation shared by every config dialect.

Dialects (Istio today, Gateway API next) parse their objects into these
frozen dataclasses; builders turn them into xDS.  Nothing here knows about
YAML or protobuf.  Names follow Istio so they round-trip:

* cluster ``outbound|PORT|SUBSET|HOST`` (empty subset when there is none),
* gateway listener ``0.0.0.0_PORT`` (``ADDRESS_PORT`` with ``bind``) and its route
  config ``http.PORT`` (``http.PORT.ADDRESS``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from translators.objects import ObjectRef

DOMAIN_SUFFIX = "svc.cluster.local"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
GATEWAY_API_KEY_PREFIX = "gateway.networking.k8s.io:"
#: the node label that picks a dialect's gateways (``xds-server bootstrap envoy --dialect emissary``)
DIALECT_LABEL = "xds-server.io/dialect"
#: a cluster with no endpoints: where refused backendRefs send their share (callers get UNAVAILABLE)
BLACKHOLE_CLUSTER = "blackhole|refused-backend"

#: upstream protocols that must speak HTTP/2 to the backend
H2_PROTOCOLS = frozenset({"GRPC", "GRPC-WEB", "HTTP2"})
H2_PORT_NAME_PREFIXES = ("grpc", "grpc-web", "http2")


def cluster_name(*, port: int, subset: str = "", host: str) -> str:
    return f"outbound|{port}|{subset}|{host}"


def cluster_host(name: str) -> str | None:
    """The host of an ``outbound|PORT|SUBSET|HOST`` cluster name (None: not such a name)."""
    parts = name.split("|", 3)
    return parts[3] if len(parts) == 4 and parts[0] == "outbound" else None


#: where a gateway listener binds when its server has no ``bind``
DEFAULT_BIND = "0.0.0.0"


def gateway_listener_name(port: int, bind: str = "") -> str:
    """Istio's names: ``0.0.0.0_PORT``, or ``ADDRESS_PORT`` for a server with ``bind``."""
    return f"{bind or DEFAULT_BIND}_{port}"


def gateway_route_name(port: int, bind: str = "") -> str:
    """Istio's names: ``http.PORT``, or ``http.PORT.ADDRESS`` for a server with ``bind``."""
    return f"http.{port}.{bind}" if bind else f"http.{port}"


def is_h2_port(*, protocol: str, name: str) -> bool:
    """Istio's protocol selection: explicit protocol first, then the port name prefix."""
    if protocol.upper() in H2_PROTOCOLS:
        return True
    lowered = name.lower()
    return any(lowered == p or lowered.startswith(p + "-") or lowered.startswith(p) for p in H2_PORT_NAME_PREFIXES)


# --------------------------------------------------------------------------- services


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    port: int
    labels: tuple[tuple[str, str], ...] = ()
    weight: int = 1
    locality: str = ""
    #: the service port this endpoint serves (0: every port)
    service_port: int = 0

    def matches(self, selector: tuple[tuple[str, str], ...]) -> bool:
        labels = self.labels
        return all(pair in labels for pair in selector)  # label keys are unique, so pair membership is exact


@dataclass(frozen=True, slots=True)
class ServicePort:
    number: int
    name: str = ""
    protocol: str = ""
    target_port: int = 0

    @property
    def h2(self) -> bool:
        return is_h2_port(protocol=self.protocol, name=self.name)


@dataclass(frozen=True, slots=True)
class Service:
    """A host that routes may send traffic to (ServiceEntry, Kubernetes Service)."""

    host: str
    namespace: str
    ports: tuple[ServicePort, ...]
    resolution: str = "STATIC"  # STATIC | DNS | NONE
    endpoints: tuple[Endpoint, ...] = ()
    source: ObjectRef | None = None

    def port(self, number: int) -> ServicePort | None:
        for p in self.ports:
            if p.number == number:
                return p
        return None


# --------------------------------------------------------------------------- TLS


def sds_name(credential: str) -> str:
    """Istio's SDS names: ``kubernetes://NAME`` (and ``kubernetes://NAME-cacert`` for the CA)."""
    return f"kubernetes://{credential}"


@dataclass(frozen=True, slots=True)
class TlsSecret:
    """A Kubernetes TLS Secret.  ``repr`` never shows key material."""

    name: str
    namespace: str
    cert_pem: bytes = field(default=b"", repr=False)
    key_pem: bytes = field(default=b"", repr=False)
    ca_pem: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class ServerTls:
    """Gateway ``servers[].tls`` for a terminating (SIMPLE / MUTUAL) server."""

    mode: str  # SIMPLE | MUTUAL
    credential_name: str
    min_version: str = ""  # TLSV1_2 ...
    max_version: str = ""
    cipher_suites: tuple[str, ...] = ()
    subject_alt_names: tuple[str, ...] = ()
    #: ALPN offered to clients (empty: h2 and http/1.1)
    alpn: tuple[str, ...] = ()
    #: the Secret whose CA validates client certificates (empty: ``ca.crt`` of the credential, or NAME-cacert)
    ca_credential: str = ""
    #: MUTUAL: whether a client certificate is required (False: validated when presented)
    require_client_certificate: bool = True
    #: the Secret's namespace when it is not the Envoy's own: only where a ReferenceGrant permits it
    #: (Gateway API certificateRefs); its SDS name is then ``kubernetes://NAMESPACE/NAME``
    credential_namespace: str = ""

    @property
    def sds_credential(self) -> str:
        return f"{self.credential_namespace}/{self.credential_name}" if self.credential_namespace \
            else self.credential_name


@dataclass(frozen=True, slots=True)
class UpstreamTls:
    """DestinationRule ``trafficPolicy.tls``: TLS origination to the backend."""

    mode: str  # SIMPLE | MUTUAL
    credential_name: str = ""
    ca_certificates: str = ""  # file paths, read by Envoy
    client_certificate: str = ""
    private_key: str = ""
    sni: str = ""
    subject_alt_names: tuple[str, ...] = ()
    insecure_skip_verify: bool = False
    #: the Secret whose CA validates the backend (empty: ``ca.crt`` of the credential, or NAME-cacert)
    ca_credential: str = ""
    #: a CA bundle inline (Gateway API BackendTLSPolicy ConfigMaps: public, sent in the cluster itself)
    ca_pem: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    allow_origins: tuple["StringMatch", ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_s: float | None = None
    allow_credentials: bool | None = None
    #: unmatchedPreflights FORWARD (True) / IGNORE (False); None: Envoy's default (forward).  The Istio
    #: dialect defaults it to False on routes to gRPC (h2) backends, which answer preflights with grpc-status 13
    forward_unmatched_preflights: bool | None = None


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class OutlierDetection:
    consecutive_5xx: int | None = None
    consecutive_gateway_errors: int | None = None
    interval_s: float | None = None
    base_ejection_time_s: float | None = None
    max_ejection_percent: int | None = None


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """One Envoy circuit-breaker threshold set (None: unlimited)."""

    priority: str = "DEFAULT"  # DEFAULT | HIGH
    max_connections: int | None = None
    max_pending_requests: int | None = None
    max_requests: int | None = None
    max_retries: int | None = None


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """An active health check Envoy runs against every endpoint of a cluster."""

    kind: str  # GRPC | HTTP | TCP
    interval_s: float = 3.0
    timeout_s: float = 1.0
    unhealthy_threshold: int = 3
    healthy_threshold: int = 1
    #: GRPC: the ``grpc.health.v1`` service name ("" asks about the server as a whole) and ``:authority``
    grpc_service: str = ""
    authority: str = ""
    #: HTTP: the path, and the accepted status ranges ``[start, end)`` (empty: 200 only)
    http_path: str = "/"
    expected_statuses: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    lb: str | None = None  # ROUND_ROBIN | LEAST_REQUEST | RANDOM | RING_HASH | MAGLEV
    hash_header: str | None = None  # consistentHash.httpHeaderName (with lb RING_HASH)
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    idle_timeout_s: float | None = None
    outlier: OutlierDetection | None = None
    tls: UpstreamTls | None = None
    connect_timeout_s: float | None = None
    #: consistent hashing besides the header: a cookie (generated when absent), the source IP, a query parameter
    hash_cookie: tuple[str, str, float | None] | None = None
    hash_source_ip: bool | None = None
    hash_query: str | None = None
    ring_minimum_size: int | None = None
    maglev_table_size: int | None = None
    #: slow start for new endpoints (DestinationRule ``warmupDurationSecs``)
    warmup_s: float | None = None
    #: explicit circuit breakers (None: unlimited, with ``http2_max_requests``)
    circuit_breakers: tuple[CircuitBreaker, ...] | None = None
    health_checks: tuple[HealthCheck, ...] | None = None

    def merged(self, override: "TrafficPolicy | None") -> "TrafficPolicy":
        """Istio's subset semantics: fields set on the subset win, the rest inherit."""
        if override is None:
            return self
        values = {}
        for name in self.__slots__:
            mine, theirs = getattr(self, name), getattr(override, name)
            values[name] = theirs if theirs is not None else mine
        return TrafficPolicy(**values)


@dataclass(frozen=True, slots=True)
class Subset:
    name: str
    labels: tuple[tuple[str, str], ...]
    policy: TrafficPolicy | None = None


@dataclass(frozen=True, slots=True)
class Cluster:
    """One upstream: a service port, optionally narrowed to a subset."""

    name: str
    host: str
    port: int
    subset: str
    h2: bool
    policy: TrafficPolicy
    discovery: str  # EDS | STRICT_DNS
    endpoints: tuple[Endpoint, ...]


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True, slots=True)
class StringMatch:
    #: ``segment``: a path prefix by whole segments (Gateway API PathPrefix: ``/foo`` matches ``/foo`` and
    #: ``/foo/bar``, not ``/foobar``)
    kind: str  # exact | prefix | segment | regex | present
    value: str = ""
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str
    match: StringMatch
    invert: bool = False


@dataclass(frozen=True, slots=True)
class RouteMatch:
    path: StringMatch | None = None
    headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[HeaderMatch, ...] = ()
    port: int | None = None
    gateways: tuple[str, ...] = ()  # per-match gateway restriction, "ns/name"


@dataclass(frozen=True, slots=True)
class HeaderOps:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


@dataclass(frozen=True, slots=True)
class WeightedCluster:
    cluster: str
    weight: int
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    per_try_timeout_s: float | None = None
    retry_on: str = ""


@dataclass(frozen=True, slots=True)
class FaultPolicy:
    delay_s: float | None = None
    delay_percent: float = 100.0
    abort_http_status: int | None = None
    abort_grpc_status: int | None = None
    abort_percent: float = 100.0


@dataclass(frozen=True, slots=True)
class Redirect:
    uri: str = ""
    authority: str = ""
    scheme: str = ""
    port: int | None = None
    code: int = 301
    #: replace the matched path prefix with this (Gateway API ReplacePrefixMatch)
    prefix: str | None = None
    #: Gateway API: a new hostname without port or scheme keeps the listener's port (Envoy would drop it)
    port_from_listener: bool = False


@dataclass(frozen=True, slots=True)
class DirectResponse:
    status: int
    body: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    match: RouteMatch
    clusters: tuple[WeightedCluster, ...] = ()
    timeout_s: float | None = None  # None: no route timeout (streams live forever, as in Istio)
    retries: RetryPolicy | None = None
    rewrite_uri: str | None = None
    rewrite_authority: str | None = None
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()
    fault: FaultPolicy | None = None
    redirect: Redirect | None = None
    direct_response: DirectResponse | None = None
    mirror_cluster: str | None = None
    mirror_percent: float | None = None
    hash_header: str | None = None  # from the destination's DestinationRule consistentHash
    cors: CorsPolicy | None = None
    source: ObjectRef | None = None
    idle_timeout_s: float | None = None
    #: (RE2 pattern, substitution) applied to the path
    regex_rewrite: tuple[str, str] | None = None
    #: hash on a cookie, generated when absent: (name, path, ttl seconds or None)
    hash_cookie: tuple[str, str, float | None] | None = None
    hash_source_ip: bool = False
    hash_query: str | None = None
    #: Gateway API: the route's place among the routes merged into one virtual host (lower first); None keeps
    #: the merge order (Istio: VirtualService order)
    precedence: tuple | None = None


@dataclass(frozen=True, slots=True)
class VirtualHost:
    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]
    require_tls: bool = False  # httpsRedirect


@dataclass(frozen=True, slots=True)
class TlsChain:
    """One TLS filter chain of a gateway port: the SNI names it answers and its settings."""

    server_names: tuple[str, ...]
    tls: ServerTls
    namespace: str  # where the credential Secret lives


@dataclass(frozen=True, slots=True)
class HttpListener:
    """A gateway port: one Envoy listener with an HCM fed by RDS.

    ``tls_chains`` empty: plaintext (HTTP/h2c).  Otherwise one filter chain per
    TLS server on the port, selected by SNI.
    """

    name: str
    port: int
    route_config: str
    protocols: frozenset[str] = frozenset()
    virtual_hosts: tuple[VirtualHost, ...] = ()
    grpc_web: bool = False
    cors: bool = False
    tls_chains: tuple[TlsChain, ...] = ()
    https_redirect: bool = False
    address: str = DEFAULT_BIND  # servers[].bind
    #: whether any route injects faults (None: derive it from the virtual hosts)
    fault: bool | None = None
    #: forward ``:authority`` with its port (Gateway API); otherwise the port is stripped before routing
    keep_port: bool = False
    #: gRPC stats: per-method stats for these ``(service, methods)``, or for every method
    grpc_stats_methods: tuple[tuple[str, tuple[str, ...]], ...] = ()
    grpc_stats_all: bool = False
    #: a stdout access log with the gRPC status (Istio Telemetry ``accessLogging``)
    access_log: bool = False


@dataclass(frozen=True, slots=True)
class GatewayServer:
    port: int
    port_name: str
    protocol: str
    hosts: tuple[tuple[str, str], ...]  # (namespace filter, host); namespace "*" for any
    tls: ServerTls | None = None
    https_redirect: bool = False
    passthrough: bool = False  # tls.mode PASSTHROUGH: route on SNI to a TCP proxy
    bind: str = ""  # servers[].bind: the listener's IP address ("" binds 0.0.0.0)
    #: gRPC stats for every method (Emissary Module ``grpc_stats.all_methods``), and named ones
    grpc_stats_all: bool = False
    grpc_stats_methods: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class Gateway:
    """An Istio Gateway (selected by labels) or a Gateway API Gateway (selected by name label + namespace)."""

    ref: ObjectRef
    selector: tuple[tuple[str, str], ...]
    servers: tuple[GatewayServer, ...]
    gateway_api: bool = False
    #: the dialect whose Envoys this gateway serves, by their ``DIALECT_LABEL`` ("" for Istio)
    dialect: str = ""

    @property
    def key(self) -> str:
        if self.gateway_api:
            return f"{GATEWAY_API_KEY_PREFIX}{self.ref.namespace}/{self.ref.name}"
        if self.dialect:
            return f"{self.dialect}:{self.ref.name}"
        return f"{self.ref.namespace}/{self.ref.name}"

    def selects(self, labels: dict[str, str], namespace: str) -> bool:
        if self.gateway_api:  # the label Gateway API implementations put on their proxies, in the Gateway's namespace
            return labels.get(GATEWAY_NAME_LABEL) == self.ref.name and namespace == self.ref.namespace
        if labels.get(DIALECT_LABEL, "") != self.dialect:
            return False  # an Envoy bootstrapped for Emissary never gets Istio's gateways, nor the reverse
        if GATEWAY_NAME_LABEL in labels and not self.selector:
            return False  # an Envoy serving a Gateway API Gateway never gets Istio's catch-all gateways
        return all(labels.get(k) == v for k, v in self.selector)


@dataclass(frozen=True, slots=True)
class GrpcWebSelector:
    """An EnvoyFilter adding the gRPC-Web filter: which workloads' gateways get it on every HTTP listener."""

    ref: ObjectRef
    #: "" = every namespace (an EnvoyFilter in the root namespace)
    namespace: str
    #: the workloadSelector labels; empty selects every workload in scope
    labels: tuple[tuple[str, str], ...] = ()

    def selects(self, labels: dict[str, str], namespace: str) -> bool:
        return self.namespace in ("", namespace) and all(labels.get(k) == v for k, v in self.labels)


@dataclass(frozen=True, slots=True)
class AccessLogSelector:
    """An Istio Telemetry ``accessLogging`` (provider ``envoy``): which gateways log every request to stdout."""

    ref: ObjectRef
    #: "" = every namespace (a Telemetry in the root namespace ``istio-system``)
    namespace: str
    labels: tuple[tuple[str, str], ...] = ()
    #: ``disabled: true``: turns logging off for what it selects (the most specific Telemetry wins)
    disabled: bool = False

    def selects(self, labels: dict[str, str], namespace: str) -> bool:
        return self.namespace in ("", namespace) and all(labels.get(k) == v for k, v in self.labels)

    @property
    def rank(self) -> int:
        """Istio's precedence: a workload selector over a namespace over the root namespace."""
        return 2 if self.labels else (1 if self.namespace else 0)


@dataclass(frozen=True, slots=True)
class TlsRoute:
    """A VirtualService ``tls[]`` entry: SNI-matched TCP proxying for PASSTHROUGH servers."""

    sni_hosts: tuple[str, ...]
    port: int | None
    gateways: tuple[str, ...]
    clusters: tuple[WeightedCluster, ...]


@dataclass(frozen=True, slots=True)
class TcpListener:
    """A PASSTHROUGH gateway port: one filter chain per SNI set, each a TCP proxy."""

    name: str
    port: int
    chains: tuple[tuple[tuple[str, ...], tuple[WeightedCluster, ...]], ...]
    address: str = DEFAULT_BIND  # servers[].bind


@dataclass(frozen=True, slots=True)
class HttpRoutes:
    """A VirtualService's http (and tls) routes, with the hosts and gateways they bind to."""

    ref: ObjectRef
    hosts: tuple[str, ...]
    #: "ns/name", or "mesh"; or "KEY|LISTENER": only that listener (server ``port_name``) of gateway KEY
    gateways: tuple[str, ...]
    routes: tuple[Route, ...]
    tls_routes: tuple[TlsRoute, ...] = ()


@dataclass(frozen=True, slots=True)
class Model:
    """The whole translated config, independent of any node."""

    gateways: tuple[Gateway, ...] = ()
    http_routes: tuple[HttpRoutes, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    services: tuple[Service, ...] = field(default=(), repr=False)
    secrets: tuple[TlsSecret, ...] = field(default=(), repr=False)
    #: gRPC-Web EnvoyFilters (translators.istio.envoy_filter)
    grpc_web: tuple[GrpcWebSelector, ...] = ()
    #: access logging (Istio Telemetry)
    access_logs: tuple[AccessLogSelector, ...] = ()

    def access_log(self, labels: dict[str, str], namespace: str) -> bool:
        """Whether a gateway with these labels logs requests: the most specific selecting Telemetry decides."""
        chosen = [a for a in self.access_logs if a.selects(labels, namespace)]
        return bool(chosen) and not max(chosen, key=lambda a: a.rank).disabled
