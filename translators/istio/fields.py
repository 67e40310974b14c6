"""Typed readers for Istio spec fields.

Each reader takes the raw value, the field path it sits at and a
:class:`~translators.diagnostics.Reporter`; it returns a typed value or
``None`` after reporting exactly what is wrong and where.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from translators.diagnostics import Reporter
from translators.ir import HeaderMatch, StringMatch

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

#: constructs Python's ``re`` accepts but Envoy's RE2 rejects
_RE2_UNSUPPORTED = re.compile(r"\(\?[=!<]|\(\?<[=!]|\\[1-9]|\(\?P=|\(\?\(")


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
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        else:
            rep.error(path, f"must be an integer, got {value!r}")
            return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rep.error(path, f"must be between {lo} and {hi}, got {value}")
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
    if not isinstance(value, str) or not _DURATION.match(value.strip()):
        rep.error(path, f"must be a duration such as '1s' or '100ms', got {value!r}")
        return None
    total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    if total < 0.001 and total != 0:
        rep.error(path, f"must be at least 1ms, got {value!r}")
        return None
    return total


def regex(value: str, path: str, rep: Reporter) -> str | None:
    """Check a regex will be accepted by Envoy (RE2 syntax, full match)."""
    if _RE2_UNSUPPORTED.search(value):
        rep.error(path, f"regex {value!r} uses lookaround or backreferences, which RE2 (Envoy) does not support")
        return None
    try:
        re.compile(value)
    except re.error as exc:
        rep.error(path, f"invalid regex {value!r}: {exc}")
        return None
    return value


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
    unknown = sorted(set(m) - {"exact", "prefix", "regex"})
    if unknown:
        rep.error(f"{path}.{unknown[0]}", "unknown string match; use exact, prefix or regex")
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


def header_matches(value: Any, path: str, rep: Reporter, *, invert: bool = False) -> tuple[HeaderMatch, ...]:
    m = mapping(value, path, rep)
    if not m:
        return ()
    out = []
    for name, spec in m.items():
        if not isinstance(name, str) or not name:
            rep.error(path, f"header name must be a non-empty string, got {name!r}")
            continue
        lowered = name.lower()
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
