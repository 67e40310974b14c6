"""DestinationRule -> traffic policy and subsets for one host.

Supported: ``trafficPolicy.loadBalancer.simple`` (ROUND_ROBIN, LEAST_REQUEST,
RANDOM), ``connectionPool.http`` (http2MaxRequests, maxRequestsPerConnection,
idleTimeout), ``outlierDetection``, ``portLevelSettings`` and per-subset
overrides.  Fields we do not act on are reported as warnings, never dropped
silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import yaml

from translators.diagnostics import Reporter
from translators.ir import OutlierDetection, Subset, TrafficPolicy, UpstreamTls
from translators import fields
from translators.health import parse_health_check
from translators.objects import ConfigObject, ObjectRef

LB_SIMPLE = frozenset({"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "LEAST_CONN", "PASSTHROUGH", "UNSPECIFIED"})


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    ref: ObjectRef
    host: str  # as written; resolved by the dialect
    policy: TrafficPolicy
    port_policies: dict[int, TrafficPolicy] = field(default_factory=dict)
    subsets: tuple[Subset, ...] = ()

    def subset(self, name: str) -> Subset | None:
        for s in self.subsets:
            if s.name == name:
                return s
        return None

    def policy_for(self, *, port: int, subset: str) -> TrafficPolicy:
        """Istio precedence: subset > port-level > top-level."""
        base = self.policy.merged(self.port_policies.get(port))
        s = self.subset(subset) if subset else None
        return base.merged(s.policy) if s is not None else base


_UINT32_MAX = 2**32 - 1


def _sni(value, path: str, rep: Reporter) -> str:
    """Envoy's UpstreamTlsContext.sni: at most 255 bytes, no spaces or control characters."""
    sni = fields.string(value, path, rep) or ""
    if len(sni.encode()) > 255 or any(c.isspace() or not c.isprintable() for c in sni):
        rep.error(path, f"must be a server name of at most 255 bytes without spaces, got {sni[:300]!r}")
        return ""
    return sni


def _upstream_tls(value, path: str, rep: Reporter) -> UpstreamTls | None:
    m = fields.mapping(value, path, rep) or {}
    mode = (fields.string(m.get("mode"), f"{path}.mode", rep) or "DISABLE").upper()
    if mode == "DISABLE":
        return None
    if mode == "ISTIO_MUTUAL":
        rep.warning(f"{path}.mode", "ISTIO_MUTUAL needs Istio's mesh CA; not applied", code="unsupported")
        return None
    if mode not in ("SIMPLE", "MUTUAL"):
        rep.error(f"{path}.mode", f"must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL, got {mode!r}")
        return None
    out = UpstreamTls(
        mode=mode,
        credential_name=fields.string(m.get("credentialName"), f"{path}.credentialName", rep) or "",
        ca_certificates=fields.string(m.get("caCertificates"), f"{path}.caCertificates", rep) or "",
        client_certificate=fields.string(m.get("clientCertificate"), f"{path}.clientCertificate", rep) or "",
        private_key=fields.string(m.get("privateKey"), f"{path}.privateKey", rep) or "",
        sni=_sni(m.get("sni"), f"{path}.sni", rep),
        subject_alt_names=fields.strings(m.get("subjectAltNames"), f"{path}.subjectAltNames", rep),
        insecure_skip_verify=bool(fields.boolean(m.get("insecureSkipVerify"), f"{path}.insecureSkipVerify", rep)),
    )
    if mode == "MUTUAL" and not out.credential_name and not (out.client_certificate and out.private_key):
        rep.error(f"{path}", "MUTUAL needs credentialName, or clientCertificate and privateKey")
    return out


def _traffic_policy(value, path: str, rep: Reporter, *, allow_port_level: bool) -> tuple[TrafficPolicy, dict[int, TrafficPolicy]]:
    m = fields.mapping(value, path, rep) or {}
    lb = hash_header = None
    hash_cookie = hash_source_ip = hash_query = ring_min = maglev_size = warmup = None
    lbm = fields.mapping(m.get("loadBalancer"), f"{path}.loadBalancer", rep)
    if lbm:
        simple = fields.string(lbm.get("simple"), f"{path}.loadBalancer.simple", rep)
        if simple is not None:
            simple = simple.upper()
            if simple not in LB_SIMPLE:
                rep.error(f"{path}.loadBalancer.simple", f"must be one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, got {simple!r}")
            else:
                lb = {"LEAST_CONN": "LEAST_REQUEST", "UNSPECIFIED": None, "PASSTHROUGH": None}.get(simple, simple)
                if simple == "PASSTHROUGH":
                    rep.warning(f"{path}.loadBalancer.simple", "PASSTHROUGH sends to the address the client asked "
                                "for, which a gateway does not have; not for gateways: using the default",
                                code="unsupported")
        hash_header = None
        ch = fields.mapping(lbm.get("consistentHash"), f"{path}.loadBalancer.consistentHash", rep)
        if ch is not None:
            hp = f"{path}.loadBalancer.consistentHash"
            hash_header = fields.header_name(ch.get("httpHeaderName"), f"{hp}.httpHeaderName", rep) \
                if ch.get("httpHeaderName") is not None else None
            cookie = fields.mapping(ch.get("httpCookie"), f"{hp}.httpCookie", rep)
            if cookie is not None:
                name = fields.string(cookie.get("name"), f"{hp}.httpCookie.name", rep, required=True)
                ttl = fields.duration(cookie.get("ttl"), f"{hp}.httpCookie.ttl", rep)
                if name:
                    hash_cookie = (name, fields.string(cookie.get("path"), f"{hp}.httpCookie.path", rep) or "/", ttl)
            if fields.boolean(ch.get("useSourceIp"), f"{hp}.useSourceIp", rep):
                hash_source_ip = True
            hash_query = fields.string(ch.get("httpQueryParameterName"), f"{hp}.httpQueryParameterName", rep) or None
            chosen = [k for k in ("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName") if k in ch]
            if len(chosen) > 1:
                rep.error(hp, f"give one hash key, not {', '.join(chosen)} (Istio takes one)")
            if not (hash_header or hash_cookie or hash_source_ip or hash_query):
                rep.warning(hp, "no hash key (httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName): "
                            "load balancing stays as it is", code="unsupported")
            else:
                lb = "RING_HASH"
                hash_header = hash_header.lower() if hash_header else None
            ring = fields.mapping(ch.get("ringHash"), f"{hp}.ringHash", rep)
            if ring is not None:
                ring_min = fields.integer(ring.get("minimumRingSize"), f"{hp}.ringHash.minimumRingSize", rep,
                                          lo=1, hi=8_388_608)
            elif ch.get("minimumRingSize") is not None:
                ring_min = fields.integer(ch.get("minimumRingSize"), f"{hp}.minimumRingSize", rep, lo=1, hi=8_388_608)
            maglev = fields.mapping(ch.get("maglev"), f"{hp}.maglev", rep)
            if maglev is not None:
                lb = "MAGLEV"
                maglev_size = fields.integer(maglev.get("tableSize"), f"{hp}.maglev.tableSize", rep, lo=2,
                                             hi=5_000_011)
                if maglev_size is not None and any(maglev_size % d == 0 for d in range(2, int(maglev_size**0.5) + 1)):
                    rep.error(f"{hp}.maglev.tableSize", f"must be a prime number (Envoy's Maglev needs one), got "
                              f"{maglev_size}; 65537 is the default")
                    maglev_size = None
        warm = lbm.get("warmupDurationSecs")
        if warm is None and isinstance(lbm.get("warmup"), dict):
            warm = lbm["warmup"].get("duration")
        if warm is not None:
            warmup = fields.positive_duration(warm, f"{path}.loadBalancer.warmupDurationSecs", rep)
        if "localityLbSetting" in lbm:
            rep.warning(f"{path}.loadBalancer.localityLbSetting", "localityLbSetting is not supported on gateways yet; "
                        "ignored", code="unsupported")
    http2_max = per_conn = None
    idle = None
    pool = fields.mapping(m.get("connectionPool"), f"{path}.connectionPool", rep)
    if pool:
        http = fields.mapping(pool.get("http"), f"{path}.connectionPool.http", rep) or {}
        hp = f"{path}.connectionPool.http"
        http2_max = fields.integer(http.get("http2MaxRequests"), f"{hp}.http2MaxRequests", rep, lo=1, hi=_UINT32_MAX)
        per_conn = fields.integer(http.get("maxRequestsPerConnection"), f"{hp}.maxRequestsPerConnection", rep, lo=0,
                                  hi=2**31 - 1)
        idle = fields.duration(http.get("idleTimeout"), f"{hp}.idleTimeout", rep)
        if "tcp" in pool:
            rep.warning(f"{path}.connectionPool.tcp", "tcp connection pool settings are not applied yet", code="unsupported")
    outlier = None
    od = fields.mapping(m.get("outlierDetection"), f"{path}.outlierDetection", rep)
    if od:
        op = f"{path}.outlierDetection"
        outlier = OutlierDetection(
            consecutive_5xx=fields.integer(od.get("consecutive5xxErrors", od.get("consecutiveErrors")), f"{op}.consecutive5xxErrors", rep, lo=0, hi=_UINT32_MAX),
            consecutive_gateway_errors=fields.integer(od.get("consecutiveGatewayErrors"), f"{op}.consecutiveGatewayErrors", rep, lo=0, hi=_UINT32_MAX),
            interval_s=fields.positive_duration(od.get("interval"), f"{op}.interval", rep),
            base_ejection_time_s=fields.positive_duration(od.get("baseEjectionTime"), f"{op}.baseEjectionTime", rep),
            max_ejection_percent=fields.integer(od.get("maxEjectionPercent"), f"{op}.maxEjectionPercent", rep, lo=0, hi=100),
        )
    tls = _upstream_tls(m.get("tls"), f"{path}.tls", rep) if m.get("tls") is not None else None
    port_policies: dict[int, TrafficPolicy] = {}
    if allow_port_level:
        for i, pls in enumerate(fields.sequence(m.get("portLevelSettings"), f"{path}.portLevelSettings", rep)):
            pp = f"{path}.portLevelSettings[{i}]"
            pm = fields.mapping(pls, pp, rep) or {}
            portm = fields.mapping(pm.get("port"), f"{pp}.port", rep) or {}
            number = fields.port_number(portm.get("number"), f"{pp}.port.number", rep, required=True)
            sub, _ = _traffic_policy({k: v for k, v in pm.items() if k != "port"}, pp, rep, allow_port_level=False)
            if number is not None:
                port_policies[number] = sub
    elif "portLevelSettings" in m:
        rep.error(f"{path}.portLevelSettings", "portLevelSettings cannot be nested here")
    return TrafficPolicy(lb=lb, hash_header=hash_header, tls=tls, http2_max_requests=http2_max, max_requests_per_connection=per_conn,
                         idle_timeout_s=idle, outlier=outlier, hash_cookie=hash_cookie, hash_source_ip=hash_source_ip,
                         hash_query=hash_query, ring_minimum_size=ring_min, maglev_table_size=maglev_size,
                         warmup_s=warmup), port_policies


#: the annotation that carries Envoy Gateway's healthCheck form (YAML or JSON), as Istio has no API for it
HEALTH_CHECK_ANNOTATION = "xds-server.io/health-check"


def _health_annotation(obj: ConfigObject, rep: Reporter) -> tuple[tuple, OutlierDetection | None]:
    text = obj.annotations.get(HEALTH_CHECK_ANNOTATION)
    if text is None:
        return (), None
    where = f"metadata.annotations[{HEALTH_CHECK_ANNOTATION}]"
    try:
        value = yaml.safe_load(text) if len(text) <= 64 * 1024 else None
    except yaml.YAMLError as exc:
        rep.error(where, f"not valid YAML or JSON: {str(exc).splitlines()[0][:200]}")
        return (), None
    if value is None:
        rep.error(where, "must be a healthCheck block (active, passive), at most 64 KiB")
        return (), None
    checks, outlier = parse_health_check(value, where, rep)
    if checks:
        rep.info(where, "proxyless gRPC clients do not run health checks: only Envoy gateways get them",
                 code="proxyless-health-checks")
    return checks, outlier


def parse_destination_rule(obj: ConfigObject, rep: Reporter) -> DestinationPolicy | None:
    spec = obj.spec
    host = fields.string(spec.get("host"), "spec.host", rep, required=True)
    policy, port_policies = _traffic_policy(spec.get("trafficPolicy"), "spec.trafficPolicy", rep, allow_port_level=True)
    checks, passive = _health_annotation(obj, rep)
    if checks or passive:
        policy = replace(policy, health_checks=checks or policy.health_checks,
                         outlier=policy.outlier if policy.outlier is not None else passive)
    subsets = []
    seen: set[str] = set()
    for i, s in enumerate(fields.sequence(spec.get("subsets"), "spec.subsets", rep)):
        sp = f"spec.subsets[{i}]"
        m = fields.mapping(s, sp, rep)
        if m is None:
            continue
        name = fields.string(m.get("name"), f"{sp}.name", rep, required=True)
        if name is None:
            continue
        if name in seen:
            rep.error(f"{sp}.name", f"duplicate subset name {name!r}")
            continue
        seen.add(name)
        labels = fields.labels(m.get("labels"), f"{sp}.labels", rep)
        sub_policy = None
        if m.get("trafficPolicy") is not None:
            sub_policy, sub_ports = _traffic_policy(m.get("trafficPolicy"), f"{sp}.trafficPolicy", rep, allow_port_level=True)
            if sub_ports:
                rep.warning(f"{sp}.trafficPolicy.portLevelSettings", "port-level settings inside a subset are not applied", code="unsupported")
        subsets.append(Subset(name, labels, sub_policy))
    if "workloadSelector" in spec:
        rep.warning("spec.workloadSelector", "workloadSelector is ignored by gateways", code="unsupported")
    if rep.failed or host is None:
        return None
    return DestinationPolicy(obj.ref, host, policy, port_policies, tuple(subsets))
