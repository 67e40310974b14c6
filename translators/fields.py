"""Typed readers for Istio spec fields.

Each reader takes the raw value, the field path it sits at and a
:class:`~translators.diagnostics.Reporter`; it returns a typed value or
``None`` after reporting exactly what is wrong and where.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, Mapping

import re2

from translators.diagnostics import Reporter
from translators.ir import HeaderMatch, StringMatch

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
#: google.protobuf.Duration's range (seconds)
PROTO_DURATION_MAX_S = 315_576_000_000
#: what Envoy accepts for a duration it reads as milliseconds or nanoseconds
#: (``validateDurationAsMilliseconds``: INT64_MAX nanoseconds, about 292 years)
ENVOY_DURATION_MAX_S = (2**63 - 1) // 10**9

#: Envoy's default ``re2.max_program_size.error_level``: larger regexes are rejected
RE2_MAX_PROGRAM_SIZE = 100
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

#: the cipher suite names Envoy (BoringSSL) accepts in ``tls_params.cipher_suites``, checked
#: one by one against ``envoy --mode validate`` (1.40); TLS 1.3 suites are not configurable
CIPHER_SUITES = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-PSK-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-PSK-AES128-CBC-SHA",
    "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-PSK-AES256-CBC-SHA", "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "PSK-AES128-CBC-SHA",
    "AES256-SHA", "PSK-AES256-CBC-SHA", "DES-CBC3-SHA"})

#: RFC 7230 token, optionally a ``:`` pseudo-header
_HEADER_NAME = re.compile(r":?[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: a route host: '*', '*.domain' or a DNS name (Envoy allows a wildcard only at the start of a domain)
HOST = re.compile(r"\*|(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_-]*)(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*))*\.?")
#: Envoy's non-strict HTTP_HEADER_VALUE / HTTP_HEADER_NAME rule: no NUL, CR or LF
_CONTROL = re.compile(r"[\x00\r\n]")


def mapping(value: Any, path: str, rep: Reporter) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        rep.error(path, f"must be a mapping, got {type(value).__name__}")
        return None
    return value


def sequence(value: Any, path: str, rep: Reporter) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        rep.error(path, f"must be a list, got {type(value).__name__}")
        return []
    return value


def string(value: Any, path: str, rep: Reporter, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            rep.error(path, "is required")
        return None
    if not isinstance(value, str):
        rep.error(path, f"must be a string, got {type(value).__name__}")
        return None
    if required and not value:
        rep.error(path, "must not be empty")
        return None
    return value


def integer(value: Any, path: str, rep: Reporter, *, lo: int | None = None, hi: int | None = None,
            required: bool = False) -> int | None:
    if value is None:
        if required:
            rep.error(path, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # a quoted number is a string to the Kubernetes schema (and to Envoy's JSON), so it is refused too
        rep.error(path, f"must be an integer, got {type(value).__name__} {value!r}")
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else \
            (f"at least {lo}" if lo is not None else f"at most {hi}")
        rep.error(path, f"must be {bounds}, got {value}")
        return None
    return value


def port_number(value: Any, path: str, rep: Reporter, *, required: bool = False) -> int | None:
    return integer(value, path, rep, lo=1, hi=65535, required=required)


def boolean(value: Any, path: str, rep: Reporter) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        rep.error(path, f"must be true or false, got {value!r}")
        return None
    return value


def duration(value: Any, path: str, rep: Reporter) -> float | None:
    """A protobuf Duration in its JSON form (``"1.5s"``) or Go form (``"1m30s"``), in seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        rep.error(path, f"must be a duration string such as '1s', got {value!r}")
        return None
    if not isinstance(value, str) or not _DURATION.fullmatch(value.strip()):
        rep.error(path, f"must be a duration such as '1s' or '100ms', got {value!r}")
        return None
    total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    if total < 0.001 and total != 0:
        rep.error(path, f"must be at least 1ms, got {value!r}")
        return None
    if total > PROTO_DURATION_MAX_S:
        rep.error(path, f"{value!r} is out of range: a protobuf Duration is at most {PROTO_DURATION_MAX_S}s")
        return None
    if total > ENVOY_DURATION_MAX_S:
        rep.error(path, f"{value!r} is out of range: Envoy accepts durations up to {ENVOY_DURATION_MAX_S}s")
        return None
    return total


def positive_duration(value: Any, path: str, rep: Reporter) -> float | None:
    """A duration Envoy requires to be greater than zero (``gt: {}``)."""
    out = duration(value, path, rep)
    if out == 0:
        rep.error(path, "must be greater than 0s")
        return None
    return out


def regex(value: str, path: str, rep: Reporter) -> str | None:
    """Check a regex will be accepted by Envoy: RE2 syntax (matched in full), at most Envoy's default program size."""
    if not value:
        rep.error(path, "regex must not be empty")
        return None
    try:
        compiled = re2.compile(value, options=_RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        rep.error(path, f"invalid RE2 regex {value!r} (Envoy has no lookaround or backreferences): {detail}")
        return None
    size = compiled.programsize
    if size > RE2_MAX_PROGRAM_SIZE:
        rep.error(path, f"regex {value!r} has RE2 program size {size}, over Envoy's default limit of "
                  f"{RE2_MAX_PROGRAM_SIZE}; simplify it (fewer repetitions or alternatives)")
        return None
    return value


def ip_address(value: str, path: str, rep: Reporter, *, what: str = "an IP address") -> str | None:
    """An IPv4 or IPv6 address, exactly (no surrounding spaces or newlines, no zone index)."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        rep.error(path, f"must be {what} (IPv4 or IPv6), got {value!r}")
        return None
    if getattr(ip, "scope_id", None):
        rep.error(path, f"an IPv6 zone index is not supported, got {value!r}")
        return None
    return value


def _canonical_ipv4(value: str) -> bool:
    """Whether ``value`` is an IPv4 address in its one canonical dotted-quad form: libc's ``inet_pton``
    parses it and ``inet_ntop`` prints it back unchanged.  Such a string is one ``ipaddress`` accepts; it is
    the common case (endpoint addresses), checked at C speed.  Anything else goes to ``ipaddress``."""
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value)) == value
    except (OSError, ValueError):  # not IPv4 (OSError), or an embedded NUL (ValueError)
        return False


def is_ip(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if _canonical_ipv4(value):
        return True
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not getattr(ip, "scope_id", None)


def header_name(value: Any, path: str, rep: Reporter) -> str | None:
    """An HTTP header name (an RFC 7230 token)."""
    text = string(value, path, rep, required=True)
    if text is None:
        return None
    if not _HEADER_NAME.fullmatch(text):
        rep.error(path, f"invalid header name {text!r}")
        return None
    return text


def header_value(value: Any, path: str, rep: Reporter) -> str | None:
    """A string Envoy puts in a header (no NUL, CR or LF); numbers and booleans are not strings."""
    text = string(value, path, rep)
    if text is not None and _CONTROL.search(text):
        rep.error(path, "must not contain NUL, CR or LF characters")
        return None
    return text


def strings(value: Any, path: str, rep: Reporter) -> tuple[str, ...]:
    """A list of non-empty strings; each bad item is reported at its index."""
    out = []
    for i, item in enumerate(sequence(value, path, rep)):
        text = string(item, f"{path}[{i}]", rep, required=True)
        if text is not None:
            out.append(text)
    return tuple(out)


def cipher_suites(value: Any, path: str, rep: Reporter) -> tuple[str, ...]:
    out = []
    for i, name in enumerate(strings(value, path, rep)):
        if name not in CIPHER_SUITES:
            rep.error(f"{path}[{i}]", f"unknown cipher suite {name!r}; Envoy (BoringSSL) accepts "
                      f"{', '.join(sorted(CIPHER_SUITES))}")
        elif name in out:
            rep.warning(f"{path}[{i}]", f"duplicate cipher suite {name!r}")
        else:
            out.append(name)
    return tuple(out)


def labels(value: Any, path: str, rep: Reporter) -> tuple[tuple[str, str], ...]:
    if not value:
        return ()
    if type(value) is dict and all(type(k) is str and type(v) is str for k, v in value.items()):
        return tuple(sorted(value.items()))  # the common case, without per-item checks
    m = mapping(value, path, rep)
    if not m:
        return ()
    out = []
    for k, v in m.items():
        if not isinstance(v, (str, int, float, bool)) or isinstance(v, bool):
            rep.error(f"{path}.{k}", f"label value must be a string, got {v!r}")
            continue
        out.append((str(k), str(v)))
    return tuple(sorted(out))


def string_match(value: Any, path: str, rep: Reporter, *, ignore_case: bool = False) -> StringMatch | None:
    """Istio StringMatch: exactly one of ``exact``, ``prefix``, ``regex``."""
    m = mapping(value, path, rep)
    if m is None:
        return None
    kinds = [k for k in ("exact", "prefix", "regex") if k in m]
    # unknown keys are warnings (translators.known_fields); a match made only of them is malformed,
    # since reading it as "present" would widen the route
    if not kinds and any(k not in ("exact", "prefix", "regex") for k in m):
        rep.error(path, "must set one of exact, prefix or regex (unknown keys: "
                        f"{', '.join(sorted(map(str, m)))})")
        return None
    if len(kinds) != 1:
        if not kinds:
            # Istio treats an empty StringMatch on headers as "present"
            return StringMatch("present")
        rep.error(path, f"must set exactly one of exact, prefix, regex (got {', '.join(kinds)})")
        return None
    kind = kinds[0]
    text = string(m[kind], f"{path}.{kind}", rep)
    if text is None:
        return None
    if kind == "regex" and regex(text, f"{path}.regex", rep) is None:
        return None
    return StringMatch(kind, text, ignore_case)


def header_matches(value: Any, path: str, rep: Reporter, *, invert: bool = False,
                   query: bool = False) -> tuple[HeaderMatch, ...]:
    """Header matches (names lowercased, RFC 7230 tokens), or with ``query`` query parameter matches
    (names kept as written: Envoy compares them case-sensitively; any characters but NUL, CR, LF)."""
    m = mapping(value, path, rep)
    if not m:
        return ()
    out = []
    what = "query parameter" if query else "header"
    for name, spec in m.items():
        if not isinstance(name, str) or not name:
            rep.error(path, f"{what} name must be a non-empty string, got {name!r}")
            continue
        if (_CONTROL.search(name) or len(name.encode()) > 1024) if query else not _HEADER_NAME.fullmatch(name):
            rep.error(f"{path}.{name}", f"invalid {what} name {name!r}")
            continue
        lowered = name if query else name.lower()
        sm = string_match(spec if spec is not None else {}, f"{path}.{name}", rep)
        if sm is not None:
            out.append(HeaderMatch(lowered, sm, invert))
    return tuple(out)


def percent(value: Any, path: str, rep: Reporter) -> float | None:
    """Istio Percent ``{value: 12.5}``; also the deprecated integer ``percent`` field handled by callers."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("value", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        rep.error(path, f"must be a percentage between 0 and 100, got {value!r}")
        return None
    return float(value)
