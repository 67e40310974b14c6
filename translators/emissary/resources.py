"""One Emissary object at a time: Mapping, Host, TLSContext, Module, Listener -> typed specs.

Each parser reads only its object, so the compile step caches the outcome per object; defaults that
come from other objects (the ``ambassador`` Module, TLSContexts named by Hosts and Mappings) are
applied by the join (:mod:`translators.emissary.dialect`).  Field paths are ``spec.FIELD`` for both the
CRD form and the flat form (the loader turns flat documents into the CRD form).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from translators import fields, known_fields
from translators.diagnostics import Reporter
from translators.emissary import DEFAULT_AMBASSADOR_ID
from translators.ir import CircuitBreaker, CorsPolicy, HeaderMatch, HeaderOps, HealthCheck, RetryPolicy, StringMatch
from translators.objects import ConfigObject, ObjectRef

#: Mapping fields read; any other known Emissary field is a warning naming it (``unsupported-field``)
MAPPING_FIELDS = frozenset({
    "ambassador_id", "prefix", "prefix_regex", "prefix_exact", "case_sensitive", "rewrite", "regex_rewrite",
    "service", "grpc", "hostname", "host", "host_regex", "headers", "regex_headers", "query_parameters",
    "regex_query_parameters", "method", "method_regex", "weight", "precedence", "timeout_ms", "idle_timeout_ms",
    "connect_timeout_ms", "retry_policy", "cors", "add_request_headers", "add_response_headers",
    "remove_request_headers", "remove_response_headers", "host_rewrite", "circuit_breakers", "load_balancer", "tls",
    "shadow", "resolver", "docs", "labels", "stats_name", "health_checks", "v3health_checks"})
#: read but without effect here, with the reason
MAPPING_NO_EFFECT = {
    "resolver": "endpoints always come from EDS (the Kubernetes Service's EndpointSlices, or a ServiceEntry)",
    "docs": "the developer portal is not part of xds-server",
    "labels": "rate-limit labels need a rate-limit service, which xds-server does not configure",
    "stats_name": "Envoy's stats use the cluster's own name",
}
MODULE_FIELDS = frozenset({
    "strip_matching_host_port", "enable_grpc_web", "grpc_stats", "cors", "retry_policy", "cluster_request_timeout_ms",
    "load_balancer", "circuit_breakers", "use_remote_address", "xff_num_trusted_hops"})
HOST_FIELDS = frozenset({"ambassador_id", "hostname", "tlsSecret", "tlsContext", "tls", "requestPolicy", "mappingSelector",
                         "selector", "acmeProvider"})
TLS_CONTEXT_FIELDS = frozenset({"ambassador_id", "hosts", "secret", "alpn_protocols", "min_tls_version", "max_tls_version",
                                "cipher_suites", "ca_secret", "cert_required", "sni", "secret_namespacing",
                                "redirect_cleartext_from"})
LISTENER_FIELDS = frozenset({"ambassador_id", "port", "protocol", "protocolStack", "securityModel", "hostBinding",
                             "l7Depth"})

LB_POLICIES = {"round_robin": "ROUND_ROBIN", "least_request": "LEAST_REQUEST", "ring_hash": "RING_HASH",
               "maglev": "MAGLEV"}
TLS_VERSIONS = {"v1.0": "TLSV1_0", "v1.1": "TLSV1_1", "v1.2": "TLSV1_2", "v1.3": "TLSV1_3"}
INSECURE_ACTIONS = ("Redirect", "Route", "Reject")


def ambassador_ids(spec: Mapping[str, Any], rep: Reporter) -> tuple[str, ...]:
    """``ambassador_id``: a string or a list; absent means ``default`` (Emissary's ``Matches``)."""
    value = spec.get("ambassador_id")
    if value is None or value == [] or value == "":
        return (DEFAULT_AMBASSADOR_ID,)
    if isinstance(value, str):
        return (value,)
    return fields.strings(value, "spec.ambassador_id", rep) or (DEFAULT_AMBASSADOR_ID,)


def _unsupported(spec: Mapping[str, Any], read: frozenset[str], rep: Reporter, kind: str) -> None:
    """Fields of Emissary's API that are not read here (fields of no API at all are ``unknown-field``
    warnings already, from :mod:`translators.known_fields`)."""
    known = known_fields.fields_of(f"emissary.{kind}Spec")
    for key in sorted(spec):
        if key not in read and key in known:
            rep.warning(f"spec.{key}", f"{kind} field {key!r} is not supported by xds-server and is ignored",
                        code="unsupported-field")


def _ms(value: Any, path: str, rep: Reporter) -> int | None:
    return fields.integer(value, path, rep, lo=0, hi=fields.ENVOY_DURATION_MAX_S * 1000)


# --------------------------------------------------------------------------------------------- Mapping


@dataclass(frozen=True, slots=True)
class Service:
    """A Mapping's ``service``: where its cluster points."""

    scheme: str  # "" | http | https
    host: str  # as written, namespace-qualified when it was a bare name
    port: int | None
    ip: bool


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    policy: str  # ROUND_ROBIN | LEAST_REQUEST | RING_HASH | MAGLEV
    header: str | None = None
    cookie: tuple[str, str, float | None] | None = None
    source_ip: bool = False


@dataclass(frozen=True, slots=True)
class MappingSpec:
    ref: ObjectRef
    labels: tuple[tuple[str, str], ...]
    ids: tuple[str, ...]
    prefix: str
    prefix_regex: bool
    prefix_exact: bool
    case_sensitive: bool | None
    rewrite: str | None  # None: not written
    regex_rewrite: tuple[str, str] | None
    service: Service
    grpc: bool
    #: the ``hostname`` glob ("*" when absent), or the deprecated exact ``host``; ``host_regex``: a regex
    hostname: str
    host_regex: str | None
    headers: tuple[HeaderMatch, ...]
    query: tuple[HeaderMatch, ...]
    method: HeaderMatch | None
    weight: int | None
    precedence: int
    timeout_ms: int | None
    idle_timeout_ms: int | None
    connect_timeout_ms: int | None
    retry: RetryPolicy | None
    cors: CorsPolicy | None
    request_headers: HeaderOps
    response_headers: HeaderOps
    host_rewrite: str | None
    circuit_breakers: tuple[CircuitBreaker, ...] | None
    load_balancer: LoadBalancer | None
    #: a TLSContext name; True: originate TLS without certificates (v2 ``tls: true``)
    tls: str | bool | None
    shadow: bool
    health_checks: tuple[HealthCheck, ...] | None = None


def parse_service(value: Any, path: str, rep: Reporter, *, namespace: str) -> Service | None:
    """``name``, ``name.ns``, ``name:port``, ``scheme://host:port``, ``[v6]:port`` (Emissary's
    ``normalize_service_name``): an unqualified name resolves in the Mapping's namespace."""
    text = fields.string(value, path, rep, required=True)
    if text is None:
        return None
    scheme = ""
    rest = text.strip()
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            rep.warning(path, f"scheme {scheme!r} is not http or https; HTTP is used, as Emissary does")
            scheme = "http"
    for sep in ("/", "?", "#"):
        if sep in rest:
            rep.warning(path, f"a path, query or fragment in service {text!r} is ignored, as Emissary does")
            rest = rest.split(sep, 1)[0]
    port: int | None = None
    host = rest
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            rep.error(path, f"unterminated IPv6 address in {text!r}")
            return None
        host, tail = rest[1:end], rest[end + 1:]
        if tail.startswith(":"):
            port = _port(tail[1:], path, rep, text)
    elif rest.count(":") == 1:
        host, _, p = rest.partition(":")
        port = _port(p, path, rep, text)
    if port is None and rep.failed:
        return None
    if not host:
        rep.error(path, f"service {text!r} has no host")
        return None
    ip = fields.is_ip(host)
    if not ip and "." not in host and host != "localhost":
        host = f"{host}.{namespace}"
    return Service(scheme, host.lower() if not ip else host, port, ip)


def _port(text: str, path: str, rep: Reporter, whole: str) -> int | None:
    if not text.isdigit() or not 0 < int(text) < 65536:
        rep.error(path, f"port {text!r} in service {whole!r} is not a port number")
        return None
    return int(text)


def _header_map(value: Any, path: str, rep: Reporter, *, regex: bool) -> list[HeaderMatch]:
    """``headers``/``query_parameters``: name -> value (``true``: present); the regex_ forms: name -> RE2."""
    m = fields.mapping(value, path, rep)
    out = []
    for name, v in (m or {}).items():
        p = f"{path}.{name}"
        if not isinstance(name, str) or not name:
            rep.error(path, f"header names must be non-empty strings, got {name!r}")
            continue
        if v is True:
            out.append(HeaderMatch(name.lower() if not name.startswith(":") else name, StringMatch("present")))
            continue
        if not isinstance(v, str):
            rep.error(p, f"must be a string{'' if regex else ' or true'}, got {v!r}")
            continue
        if regex:
            pattern = fields.regex(v, p, rep)
            if pattern is not None:
                out.append(HeaderMatch(name.lower(), StringMatch("regex", pattern)))
        else:
            out.append(HeaderMatch(name.lower() if not name.startswith(":") else name, StringMatch("exact", v)))
    return out


def _added_headers(value: Any, path: str, rep: Reporter) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``add_*_headers``: name -> value, or ``{value, append}`` (append defaults to true): (set, add)."""
    m = fields.mapping(value, path, rep)
    set_, add = [], []
    for name, v in (m or {}).items():
        p = f"{path}.{name}"
        header = fields.header_name(name, p, rep)
        if header is None:
            continue
        append = True
        if isinstance(v, dict):
            append = v.get("append", True) is not False
            v = v.get("value")
        if isinstance(v, bool) or isinstance(v, (int, float)):
            v = str(v).lower() if isinstance(v, bool) else str(v)
        text = fields.header_value(v, p, rep)
        if text is not None:
            (add if append else set_).append((header, text))
    return tuple(set_), tuple(add)


def _removed(value: Any, path: str, rep: Reporter) -> tuple[str, ...]:
    if isinstance(value, str):  # v2: a single name
        value = [value]
    return tuple(h for i, x in enumerate(fields.sequence(value, path, rep))
                 if (h := fields.header_name(x, f"{path}[{i}]", rep)) is not None)


def parse_retry(value: Any, path: str, rep: Reporter) -> RetryPolicy | None:
    m = fields.mapping(value, path, rep)
    if m is None:
        return None
    retry_on = fields.string(m.get("retry_on"), f"{path}.retry_on", rep) or ""
    allowed = {"5xx", "gateway-error", "connect-failure", "retriable-4xx", "refused-stream", "retriable-status-codes",
               "reset", "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}
    for token in filter(None, (t.strip() for t in retry_on.split(","))):
        if token not in allowed:
            rep.error(f"{path}.retry_on", f"unknown retry condition {token!r}; Emissary accepts "
                      f"{', '.join(sorted(allowed))}")
    n = fields.integer(m.get("num_retries"), f"{path}.num_retries", rep, lo=0, hi=2**31 - 1)
    per_try = fields.duration(m.get("per_try_timeout"), f"{path}.per_try_timeout", rep)
    for key in m:
        if key not in ("retry_on", "num_retries", "per_try_timeout"):
            rep.warning(f"{path}.{key}", f"retry_policy field {key!r} is not supported and is ignored",
                        code="unsupported-field")
    return RetryPolicy(attempts=1 if n is None else n, per_try_timeout_s=per_try, retry_on=retry_on)


def _list_or_csv(value: Any, path: str, rep: Reporter) -> tuple[str, ...]:
    if isinstance(value, str):  # v2 (and Emissary's loader): a comma-separated string
        return tuple(x.strip() for x in value.split(",") if x.strip())
    return fields.strings(value, path, rep)


def parse_cors(value: Any, path: str, rep: Reporter) -> CorsPolicy | None:
    m = fields.mapping(value, path, rep)
    if m is None:
        return None
    origins = []
    for o in _list_or_csv(m.get("origins"), f"{path}.origins", rep):
        origins.append(StringMatch("regex", ".*") if o == "*" else StringMatch("exact", o))
    max_age = m.get("max_age")
    age = None
    if max_age is not None:
        text = str(max_age).strip().rstrip("s")
        if not text.isdigit():
            rep.error(f"{path}.max_age", f"must be a number of seconds, got {max_age!r}")
        else:
            age = float(text)
    for key in m:
        if key not in ("origins", "methods", "headers", "exposed_headers", "credentials", "max_age"):
            rep.warning(f"{path}.{key}", f"cors field {key!r} is not supported and is ignored", code="unsupported-field")
    return CorsPolicy(allow_origins=tuple(origins), allow_methods=_list_or_csv(m.get("methods"), f"{path}.methods", rep),
                      allow_headers=_list_or_csv(m.get("headers"), f"{path}.headers", rep),
                      expose_headers=_list_or_csv(m.get("exposed_headers"), f"{path}.exposed_headers", rep),
                      max_age_s=age, allow_credentials=fields.boolean(m.get("credentials"), f"{path}.credentials", rep))


def parse_circuit_breakers(value: Any, path: str, rep: Reporter) -> tuple[CircuitBreaker, ...] | None:
    if value is None:
        return None
    out = []
    for i, cb in enumerate(fields.sequence(value, path, rep)):
        p = f"{path}[{i}]"
        m = fields.mapping(cb, p, rep)
        if m is None:
            continue
        priority = (fields.string(m.get("priority"), f"{p}.priority", rep) or "default").lower()
        if priority not in ("default", "high"):
            rep.error(f"{p}.priority", f"must be default or high, got {priority!r}")
        limits = {k: fields.integer(m.get(k), f"{p}.{k}", rep, lo=0, hi=2**32 - 1)
                  for k in ("max_connections", "max_pending_requests", "max_requests", "max_retries")}
        out.append(CircuitBreaker(priority.upper(), **limits))
    return tuple(out)


def parse_load_balancer(value: Any, path: str, rep: Reporter) -> LoadBalancer | None:
    """Emissary's ``validate_load_balancer``: round_robin and least_request take no other key; ring_hash
    and maglev take exactly one of cookie (with a name), header or source_ip.  Anything else invalidates
    the Mapping, as in Emissary."""
    m = fields.mapping(value, path, rep)
    if m is None:
        return None
    policy = m.get("policy")
    if policy not in LB_POLICIES:
        rep.error(f"{path}.policy", f"must be one of {', '.join(LB_POLICIES)}, got {policy!r} (invalid "
                  "load_balancer: the Mapping is not served, as in Emissary)")
        return None
    others = sorted(k for k in m if k != "policy")
    if policy in ("round_robin", "least_request"):
        if others:
            rep.error(f"{path}.{others[0]}", f"{policy} takes no {', '.join(others)} (invalid load_balancer: the "
                      "Mapping is not served, as in Emissary)")
            return None
        return LoadBalancer(LB_POLICIES[policy])
    if len(others) != 1 or others[0] not in ("cookie", "header", "source_ip"):
        rep.error(path, f"{policy} takes exactly one of cookie, header or source_ip, got "
                  f"{', '.join(others) or 'none'} (invalid load_balancer: the Mapping is not served, as in Emissary)")
        return None
    key = others[0]
    if key == "header":
        header = fields.header_name(m["header"], f"{path}.header", rep)
        return LoadBalancer(LB_POLICIES[policy], header=header) if header else None
    if key == "source_ip":
        if m["source_ip"] is not True:
            rep.error(f"{path}.source_ip", f"must be true, got {m['source_ip']!r}")
            return None
        return LoadBalancer(LB_POLICIES[policy], source_ip=True)
    c = fields.mapping(m["cookie"], f"{path}.cookie", rep)
    name = fields.string((c or {}).get("name"), f"{path}.cookie.name", rep, required=True)
    if name is None:
        return None
    ttl = fields.duration(c.get("ttl"), f"{path}.cookie.ttl", rep)
    return LoadBalancer(LB_POLICIES[policy], cookie=(name, fields.string(c.get("path"), f"{path}.cookie.path", rep)
                                                     or "/", ttl))


def parse_health_checks(value: Any, path: str, rep: Reporter) -> tuple[HealthCheck, ...] | None:
    """``health_checks``: ``[{health_check: {grpc: {upstream_name, authority}} | {http: {path, hostname,
    expected_statuses: [{min, max}]}}, timeout (3s), interval (5s), healthy_threshold (1),
    unhealthy_threshold (2)}]`` (Emissary's irhealthchecks.py; ``max`` is inclusive)."""
    if value is None:
        return None
    out = []
    for i, item in enumerate(fields.sequence(value, path, rep)):
        p = f"{path}[{i}]"
        m = fields.mapping(item, p, rep)
        if m is None:
            continue
        spec = fields.mapping(m.get("health_check"), f"{p}.health_check", rep)
        if spec is None:
            rep.error(f"{p}.health_check", "is required: {grpc: {upstream_name}} or {http: {path}}")
            continue
        timeout = fields.positive_duration(m.get("timeout", "3s"), f"{p}.timeout", rep) or 3.0
        interval = fields.positive_duration(m.get("interval", "5s"), f"{p}.interval", rep) or 5.0
        healthy = fields.integer(m.get("healthy_threshold", 1), f"{p}.healthy_threshold", rep, lo=1, hi=2**32 - 1) or 1
        unhealthy = fields.integer(m.get("unhealthy_threshold", 2), f"{p}.unhealthy_threshold", rep,
                                   lo=1, hi=2**32 - 1) or 2
        common = dict(interval_s=interval, timeout_s=timeout, unhealthy_threshold=unhealthy, healthy_threshold=healthy)
        if "grpc" in spec:
            g = fields.mapping(spec["grpc"], f"{p}.health_check.grpc", rep) or {}
            name = fields.string(g.get("upstream_name"), f"{p}.health_check.grpc.upstream_name", rep, required=True)
            if name is not None:
                out.append(HealthCheck("GRPC", grpc_service=name,
                                       authority=fields.string(g.get("authority"), f"{p}.health_check.grpc.authority",
                                                               rep) or "", **common))
        elif "http" in spec:
            h = fields.mapping(spec["http"], f"{p}.health_check.http", rep) or {}
            ranges = []
            for j, r in enumerate(fields.sequence(h.get("expected_statuses"), f"{p}.health_check.http.expected_statuses",
                                                  rep)):
                rp = f"{p}.health_check.http.expected_statuses[{j}]"
                rm = fields.mapping(r, rp, rep) or {}
                lo = fields.integer(rm.get("min"), f"{rp}.min", rep, lo=100, hi=599, required=True)
                hi = fields.integer(rm.get("max"), f"{rp}.max", rep, lo=100, hi=599, required=True)
                if lo is not None and hi is not None:
                    if lo > hi:
                        rep.error(rp, f"min {lo} is greater than max {hi}")
                    else:
                        ranges.append((lo, hi + 1))
            out.append(HealthCheck("HTTP", http_path=fields.string(h.get("path"), f"{p}.health_check.http.path", rep,
                                                                   required=True) or "/",
                                   authority=fields.string(h.get("hostname"), f"{p}.health_check.http.hostname", rep)
                                   or "", expected_statuses=tuple(ranges), **common))
        else:
            rep.error(f"{p}.health_check", "must hold grpc or http")
    return tuple(out)


def _glob_ok(value: str, path: str, rep: Reporter) -> bool:
    if "*" in value[1:] or (value.startswith("*") and value not in ("*",) and not value.startswith("*.")):
        rep.error(path, f"a hostname glob may only start with '*.' (or be '*'), got {value!r}")
        return False
    return True


def parse_mapping(obj: ConfigObject, rep: Reporter) -> MappingSpec | None:
    s = obj.spec
    ids = ambassador_ids(s, rep)
    prefix = fields.string(s.get("prefix"), "spec.prefix", rep, required=True)
    prefix_regex = bool(fields.boolean(s.get("prefix_regex"), "spec.prefix_regex", rep))
    prefix_exact = bool(fields.boolean(s.get("prefix_exact"), "spec.prefix_exact", rep))
    if prefix is not None and prefix_regex:
        prefix = fields.regex(prefix, "spec.prefix", rep)
    elif prefix is not None and not prefix.startswith("/"):
        rep.error("spec.prefix", f"must start with '/', got {prefix!r}")
    service = parse_service(s.get("service"), "spec.service", rep, namespace=obj.namespace)
    rewrite = s.get("rewrite")
    if rewrite is not None and not isinstance(rewrite, str):
        rep.error("spec.rewrite", f"must be a string, got {rewrite!r}")
        rewrite = None
    regex_rewrite = None
    if s.get("regex_rewrite") is not None:
        rr = fields.mapping(s.get("regex_rewrite"), "spec.regex_rewrite", rep) or {}
        pattern = fields.string(rr.get("pattern"), "spec.regex_rewrite.pattern", rep, required=True)
        sub = fields.string(rr.get("substitution"), "spec.regex_rewrite.substitution", rep)
        if pattern is not None and fields.regex(pattern, "spec.regex_rewrite.pattern", rep) is not None:
            regex_rewrite = (pattern, sub or "")
            if rewrite:
                rep.info("spec.rewrite", "regex_rewrite is set: rewrite is ignored, as in Emissary")
            rewrite = ""
    hostname = fields.string(s.get("hostname"), "spec.hostname", rep)
    host = fields.string(s.get("host"), "spec.host", rep)
    host_regex_flag = bool(fields.boolean(s.get("host_regex"), "spec.host_regex", rep))
    host_regex = None
    if hostname is not None:
        if host is not None:
            rep.info("spec.host", "hostname is set: the deprecated host is ignored, as in Emissary")
        if not _glob_ok(hostname, "spec.hostname", rep):
            hostname = None
    elif host is not None and host_regex_flag:
        host_regex = fields.regex(host, "spec.host", rep)
    elif host is not None:
        if "*" in host:
            rep.error("spec.host", f"host is an exact name (use hostname for a glob), got {host!r}")
        hostname = host
    headers = _header_map(s.get("headers"), "spec.headers", rep, regex=False)
    headers += _header_map(s.get("regex_headers"), "spec.regex_headers", rep, regex=True)
    authority = [h for h in headers if h.name == ":authority" and h.match.kind == "exact"]
    if authority and hostname is None and host_regex is None:
        hostname = authority[0].match.value  # Emissary lifts an exact :authority header into the host
        headers = [h for h in headers if h is not authority[0]]
    query = _header_map(s.get("query_parameters"), "spec.query_parameters", rep, regex=False)
    query += _header_map(s.get("regex_query_parameters"), "spec.regex_query_parameters", rep, regex=True)
    method = None
    m = fields.string(s.get("method"), "spec.method", rep)
    if m:
        if fields.boolean(s.get("method_regex"), "spec.method_regex", rep):
            pattern = fields.regex(m, "spec.method", rep)
            method = HeaderMatch(":method", StringMatch("regex", pattern)) if pattern else None
        else:
            method = HeaderMatch(":method", StringMatch("exact", m.upper()))
    weight = fields.integer(s.get("weight"), "spec.weight", rep, lo=0, hi=100)
    precedence = fields.integer(s.get("precedence"), "spec.precedence", rep) or 0
    req_set, req_add = _added_headers(s.get("add_request_headers"), "spec.add_request_headers", rep)
    resp_set, resp_add = _added_headers(s.get("add_response_headers"), "spec.add_response_headers", rep)
    tls = s.get("tls")
    if tls is not None and not isinstance(tls, (str, bool)):
        rep.error("spec.tls", f"must be the name of a TLSContext, got {tls!r}")
        tls = None
    if tls is False or tls == "":
        tls = None
    for key, why in MAPPING_NO_EFFECT.items():
        if key in s:
            rep.info(f"spec.{key}", f"{key} has no effect here: {why}")
    hc_key = "health_checks" if "health_checks" in s else "v3health_checks"
    health_checks = parse_health_checks(s.get(hc_key), f"spec.{hc_key}", rep)
    _unsupported(s, MAPPING_FIELDS, rep, "Mapping")
    if rep.failed or prefix is None or service is None:
        return None
    return MappingSpec(
        ref=obj.ref, labels=tuple(sorted(obj.labels.items())), ids=ids, prefix=prefix, prefix_regex=prefix_regex,
        prefix_exact=prefix_exact, case_sensitive=fields.boolean(s.get("case_sensitive"), "spec.case_sensitive", rep),
        rewrite=rewrite, regex_rewrite=regex_rewrite, service=service,
        grpc=bool(fields.boolean(s.get("grpc"), "spec.grpc", rep)), hostname=hostname or "*", host_regex=host_regex,
        headers=tuple(headers), query=tuple(query), method=method, weight=weight, precedence=precedence,
        timeout_ms=_ms(s.get("timeout_ms"), "spec.timeout_ms", rep),
        idle_timeout_ms=_ms(s.get("idle_timeout_ms"), "spec.idle_timeout_ms", rep),
        connect_timeout_ms=_ms(s.get("connect_timeout_ms"), "spec.connect_timeout_ms", rep),
        retry=parse_retry(s.get("retry_policy"), "spec.retry_policy", rep),
        cors=parse_cors(s.get("cors"), "spec.cors", rep),
        request_headers=HeaderOps(set=req_set, add=req_add,
                                  remove=_removed(s.get("remove_request_headers"), "spec.remove_request_headers", rep)),
        response_headers=HeaderOps(set=resp_set, add=resp_add, remove=_removed(
            s.get("remove_response_headers"), "spec.remove_response_headers", rep)),
        host_rewrite=fields.string(s.get("host_rewrite"), "spec.host_rewrite", rep) or None,
        circuit_breakers=parse_circuit_breakers(s.get("circuit_breakers"), "spec.circuit_breakers", rep),
        load_balancer=parse_load_balancer(s.get("load_balancer"), "spec.load_balancer", rep) if
        s.get("load_balancer") is not None else None,
        tls=tls, shadow=bool(fields.boolean(s.get("shadow"), "spec.shadow", rep)), health_checks=health_checks)


# --------------------------------------------------------------------------------------------- TLSContext


@dataclass(frozen=True, slots=True)
class TLSContextSpec:
    ref: ObjectRef
    ids: tuple[str, ...]
    hosts: tuple[str, ...]
    #: (name, namespace) of the certificate Secret, and of the CA Secret
    secret: tuple[str, str] | None
    ca_secret: tuple[str, str] | None
    cert_required: bool
    alpn: tuple[str, ...]
    min_version: str
    max_version: str
    cipher_suites: tuple[str, ...]
    sni: str


def _secret_ref(value: Any, path: str, rep: Reporter, *, namespace: str, namespacing: bool) -> tuple[str, str] | None:
    name = fields.string(value, path, rep)
    if not name:
        return None
    if namespacing and "." in name:
        n, _, ns = name.partition(".")
        return (n, ns)
    return (name, namespace)


def parse_tls_context(obj: ConfigObject, rep: Reporter) -> TLSContextSpec | None:
    s = obj.spec
    namespacing = fields.boolean(s.get("secret_namespacing"), "spec.secret_namespacing", rep) is not False
    versions = {}
    for key in ("min_tls_version", "max_tls_version"):
        v = s.get(key)
        if v is not None and v not in TLS_VERSIONS:
            rep.error(f"spec.{key}", f"must be one of {', '.join(TLS_VERSIONS)}, got {v!r}")
        versions[key] = TLS_VERSIONS.get(v, "") if isinstance(v, str) else ""
    alpn = _list_or_csv(s.get("alpn_protocols"), "spec.alpn_protocols", rep)
    for i, a in enumerate(alpn):
        if a not in ("h2", "http/1.1", "http/1.0"):
            rep.warning("spec.alpn_protocols", f"ALPN protocol {a!r} is not one Envoy's HTTP listener speaks")
    if "redirect_cleartext_from" in s:
        rep.info("spec.redirect_cleartext_from", "redirects from cleartext follow the Host's requestPolicy.insecure "
                 "(Redirect by default), not this field")
    _unsupported(s, TLS_CONTEXT_FIELDS, rep, "TLSContext")
    if rep.failed:
        return None
    return TLSContextSpec(
        ref=obj.ref, ids=ambassador_ids(s, rep), hosts=fields.strings(s.get("hosts"), "spec.hosts", rep),
        secret=_secret_ref(s.get("secret"), "spec.secret", rep, namespace=obj.namespace, namespacing=namespacing),
        ca_secret=_secret_ref(s.get("ca_secret"), "spec.ca_secret", rep, namespace=obj.namespace,
                              namespacing=namespacing),
        cert_required=bool(fields.boolean(s.get("cert_required"), "spec.cert_required", rep)), alpn=alpn,
        min_version=versions["min_tls_version"], max_version=versions["max_tls_version"],
        cipher_suites=fields.cipher_suites(s.get("cipher_suites"), "spec.cipher_suites", rep),
        sni=fields.string(s.get("sni"), "spec.sni", rep) or "")


# --------------------------------------------------------------------------------------------- Host


@dataclass(frozen=True, slots=True)
class HostSpec:
    ref: ObjectRef
    labels: tuple[tuple[str, str], ...]
    ids: tuple[str, ...]
    hostname: str
    tls_secret: tuple[str, str] | None
    tls_context: str | None
    #: an inline ``tls`` block, read like a TLSContext
    tls: TLSContextSpec | None
    insecure_action: str
    mapping_selector: tuple[tuple[str, str], ...] | None


def parse_host(obj: ConfigObject, rep: Reporter) -> HostSpec | None:
    s = obj.spec
    hostname = fields.string(s.get("hostname"), "spec.hostname", rep) or "*"
    _glob_ok(hostname, "spec.hostname", rep)
    secret = None
    ts = fields.mapping(s.get("tlsSecret"), "spec.tlsSecret", rep)
    if ts is not None:
        name = fields.string(ts.get("name"), "spec.tlsSecret.name", rep, required=True)
        ns = fields.string(ts.get("namespace"), "spec.tlsSecret.namespace", rep) or obj.namespace
        secret = (name, ns) if name else None
    ctx = fields.mapping(s.get("tlsContext"), "spec.tlsContext", rep)
    ctx_name = fields.string((ctx or {}).get("name"), "spec.tlsContext.name", rep, required=ctx is not None)
    inline = None
    if s.get("tls") is not None:
        if ctx_name:
            rep.error("spec.tls", "a Host takes tlsContext or tls, not both (as in Emissary)")
        t = fields.mapping(s.get("tls"), "spec.tls", rep)
        if t is not None:
            sub = Reporter(file=rep.file, ref=rep.ref)
            inline = parse_tls_context(ConfigObject(ref=obj.ref, api_version=obj.api_version, spec=t), sub)
            for d in sub.items:
                rep.items.append(type(d)(d.severity, d.code, d.message, d.file, d.object_ref,
                                         d.field_path.replace("spec.", "spec.tls.", 1)))
    action = "Redirect"
    rp = fields.mapping(s.get("requestPolicy"), "spec.requestPolicy", rep)
    insecure = fields.mapping((rp or {}).get("insecure"), "spec.requestPolicy.insecure", rep)
    if insecure is not None:
        a = insecure.get("action", "Redirect")
        if a not in INSECURE_ACTIONS:
            rep.error("spec.requestPolicy.insecure.action", f"must be one of {', '.join(INSECURE_ACTIONS)}, got {a!r}")
        else:
            action = a
        if insecure.get("additionalPort") not in (None, -1):
            rep.info("spec.requestPolicy.insecure.additionalPort", "cleartext ports come from Listeners; "
                     "additionalPort is not used")
    selector = None
    sel = s.get("mappingSelector") if s.get("mappingSelector") is not None else s.get("selector")
    if sel is not None:
        m = fields.mapping(sel, "spec.mappingSelector", rep) or {}
        selector = fields.labels(m.get("matchLabels"), "spec.mappingSelector.matchLabels", rep)
        if m.get("matchExpressions"):
            rep.warning("spec.mappingSelector.matchExpressions", "matchExpressions are not supported; only "
                        "matchLabels select Mappings", code="unsupported-field")
    acme = fields.mapping(s.get("acmeProvider"), "spec.acmeProvider", rep)
    if acme is not None and acme.get("authority") not in (None, "none") and secret is None:
        rep.warning("spec.acmeProvider", "ACME is not supported: give the Host a tlsSecret", code="unsupported-field")
    _unsupported(s, HOST_FIELDS, rep, "Host")
    if rep.failed:
        return None
    return HostSpec(obj.ref, tuple(sorted(obj.labels.items())), ambassador_ids(s, rep), hostname, secret, ctx_name,
                    inline, action, selector)


# --------------------------------------------------------------------------------------------- Module, Listener


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    ref: ObjectRef
    ids: tuple[str, ...]
    grpc_web: bool
    cors: CorsPolicy | None
    retry: RetryPolicy | None
    cluster_request_timeout_ms: int | None
    load_balancer: LoadBalancer | None
    circuit_breakers: tuple[CircuitBreaker, ...] | None
    #: ``grpc_stats``: per-method stats for every method, or for these (service, methods)
    grpc_stats_all: bool = False
    grpc_stats_methods: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _grpc_stats(value: Any, path: str, rep: Reporter) -> tuple[bool, tuple[tuple[str, tuple[str, ...]], ...]]:
    """Emissary's ``grpc_stats``: ``services`` ([{name, method_names}]) lists methods, else ``all_methods``;
    ``upstream_stats`` is always on here."""
    m = fields.mapping(value, path, rep)
    if m is None:
        return False, ()
    services = []
    for i, s in enumerate(fields.sequence(m.get("services"), f"{path}.services", rep)):
        sm = fields.mapping(s, f"{path}.services[{i}]", rep) or {}
        name = fields.string(sm.get("name"), f"{path}.services[{i}].name", rep, required=True)
        if name:
            services.append((name, fields.strings(sm.get("method_names"), f"{path}.services[{i}].method_names", rep)))
    return (not services and bool(fields.boolean(m.get("all_methods"), f"{path}.all_methods", rep))), tuple(services)


def parse_module(obj: ConfigObject, rep: Reporter) -> ModuleSpec | None:
    s = obj.spec
    if obj.name != "ambassador":
        rep.warning("metadata.name", f"only the Module named 'ambassador' is read; Module {obj.name!r} is ignored",
                    code="unsupported-kind")
        return None
    c = fields.mapping(s.get("config"), "spec.config", rep) or {}
    for key in sorted(c):
        if key not in MODULE_FIELDS:
            rep.warning(f"spec.config.{key}", f"Module field {key!r} is not supported by xds-server and is ignored",
                        code="unsupported-field")
    if "strip_matching_host_port" in c:
        rep.info("spec.config.strip_matching_host_port", "xds-server always strips the port from :authority before "
                 "routing (strip_any_host_port), which includes the matching port")
    module = ModuleSpec(
        obj.ref, ambassador_ids(s, rep), "enable_grpc_web" in c,  # Emissary: its presence enables the filter
        parse_cors(c.get("cors"), "spec.config.cors", rep), parse_retry(c.get("retry_policy"),
                                                                        "spec.config.retry_policy", rep),
        _ms(c.get("cluster_request_timeout_ms"), "spec.config.cluster_request_timeout_ms", rep),
        parse_load_balancer(c.get("load_balancer"), "spec.config.load_balancer", rep)
        if c.get("load_balancer") is not None else None,
        parse_circuit_breakers(c.get("circuit_breakers"), "spec.config.circuit_breakers", rep),
        *_grpc_stats(c.get("grpc_stats"), "spec.config.grpc_stats", rep))
    return None if rep.failed else module


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    ref: ObjectRef
    ids: tuple[str, ...]
    port: int
    tls: bool  # protocol HTTPS (or a TLS protocolStack)
    security_model: str  # XFP | SECURE | INSECURE
    #: hostBinding: "ALL" or "SELF", and the label selector on Hosts
    namespace_from: str
    selector: tuple[tuple[str, str], ...] | None


def parse_listener(obj: ConfigObject, rep: Reporter) -> ListenerSpec | None:
    s = obj.spec
    port = fields.port_number(s.get("port"), "spec.port", rep, required=True)
    protocol = s.get("protocol")
    stack = s.get("protocolStack")
    tls = False
    if protocol is not None and stack is not None:
        rep.error("spec.protocolStack", "give protocol or protocolStack, not both (as in Emissary)")
    elif stack is not None:
        layers = fields.strings(stack, "spec.protocolStack", rep)
        if "HTTP" not in layers:
            rep.warning("spec.protocolStack", f"only HTTP listeners are translated; {'/'.join(layers)} is ignored",
                        code="unsupported-field")
            return None
        tls = "TLS" in layers
    elif protocol in ("HTTP", "HTTPS", "HTTPPROXY", "HTTPSPROXY"):
        tls = protocol in ("HTTPS", "HTTPSPROXY")
        if "PROXY" in protocol:
            rep.warning("spec.protocol", "the PROXY protocol is not supported; the listener speaks plain "
                        f"{'HTTPS' if tls else 'HTTP'}", code="unsupported-field")
    elif protocol in ("TCP", "TLS", "UDP"):
        rep.warning("spec.protocol", f"only HTTP and HTTPS listeners are translated; {protocol} is ignored",
                    code="unsupported-field")
        return None
    else:
        rep.error("spec.protocol", f"must be HTTP or HTTPS (or HTTPPROXY, HTTPSPROXY, TCP, TLS, UDP), got {protocol!r}")
    model = s.get("securityModel", "XFP")
    if model not in ("XFP", "SECURE", "INSECURE"):
        rep.error("spec.securityModel", f"must be XFP, SECURE or INSECURE, got {model!r}")
    hb = fields.mapping(s.get("hostBinding"), "spec.hostBinding", rep) or {}
    ns = fields.mapping(hb.get("namespace"), "spec.hostBinding.namespace", rep) or {}
    from_ = ns.get("from", "SELF")
    if from_ not in ("SELF", "ALL"):
        rep.error("spec.hostBinding.namespace.from", f"must be SELF or ALL, got {from_!r}")
    selector = None
    if hb.get("selector") is not None:
        sel = fields.mapping(hb.get("selector"), "spec.hostBinding.selector", rep) or {}
        selector = fields.labels(sel.get("matchLabels"), "spec.hostBinding.selector.matchLabels", rep)
    if "l7Depth" in s:
        rep.info("spec.l7Depth", "l7Depth is not used: Envoy trusts no X-Forwarded-For hops")
    _unsupported(s, LISTENER_FIELDS, rep, "Listener")
    if rep.failed or port is None:
        return None
    return ListenerSpec(obj.ref, ambassador_ids(s, rep), port, tls, model, from_, selector)
