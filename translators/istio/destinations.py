"""Resolving a route ``destination`` to a cluster name.

This is where a VirtualService meets the service registry and the
DestinationRules.  Structural mistakes (a port the service does not have, a
multi-port service without a port) are errors.  References to things that may
appear later or live elsewhere (an unknown host, a subset no DestinationRule
defines) are warnings: the route still points at a deterministic cluster name,
and the dialect makes that cluster exist with no endpoints, so the call fails
with UNAVAILABLE exactly as in Istio.
"""
from __future__ import annotations

from typing import Any, Mapping

from translators.diagnostics import Reporter
from translators.ir import DOMAIN_SUFFIX, cluster_name
from translators import fields
from translators.istio.destination_rule import DestinationPolicy
from translators.hosts import Registry


class Destinations:
    __slots__ = ("registry", "policies", "referenced", "recording", "looked_up")

    def __init__(self, *, registry: Registry, policies: Mapping[str, DestinationPolicy]) -> None:
        self.registry = registry
        self.policies = policies
        #: (host, port, subset) of every cluster a route points at
        self.referenced: set[tuple[str, int, str]] = set()
        #: what the object being parsed references (for incremental reuse); None when not recording
        self.recording: list[tuple[str, int, str]] | None = None
        #: every host name the object being parsed looked up, found or not (its outcome depends on them)
        self.looked_up: set[str] | None = None

    def _seen(self, *hosts: str) -> None:
        if self.looked_up is not None:
            self.looked_up.update(hosts)

    def policy(self, cluster: str):  # noqa: ANN201 - TrafficPolicy | None
        """The traffic policy of the DestinationRule that governs ``cluster`` (its port and subset), if any."""
        _, port, subset, host = cluster.split("|", 3)
        self._seen(host)
        policy = self.policies.get(host)
        return policy.policy_for(port=int(port), subset=subset) if policy else None

    def is_h2(self, cluster: str) -> bool:
        """Does ``cluster`` speak HTTP/2 (gRPC) to its backend?  Undeclared hosts get h2 placeholders."""
        _, port, _, host = cluster.split("|", 3)
        self._seen(host)
        svc = self.registry.get(host)
        sp = svc.port(int(port)) if svc is not None else None
        return True if sp is None else sp.h2

    def cluster(self, dest: Any, path: str, rep: Reporter, *, namespace: str) -> str | None:
        """The cluster for ``dest``, or ``None`` when it cannot be named (already reported)."""
        if dest is None:
            rep.error(path, "is required")
            return None
        m = fields.mapping(dest, path, rep)
        if m is None:
            return None
        raw_host = fields.string(m.get("host"), f"{path}.host", rep, required=True)
        if raw_host is None:
            return None
        host = self.registry.resolve(raw_host, namespace)
        self._seen(raw_host, host, f"{raw_host}.{DOMAIN_SUFFIX}")
        subset = fields.string(m.get("subset"), f"{path}.subset", rep) or ""
        portm = fields.mapping(m.get("port"), f"{path}.port", rep) or {}
        port = fields.port_number(portm.get("number"), f"{path}.port.number", rep)
        svc = self.registry.get(host)
        if svc is None:
            if port is None:
                rep.warning(f"{path}.host", f"host {host!r} is not declared by any ServiceEntry or Service and no "
                            "port is given; this route answers 503 (gRPC UNAVAILABLE)", code="unknown-host")
                return None
            rep.warning(f"{path}.host", f"host {host!r} is not declared by any ServiceEntry or Service; "
                        "its cluster has no endpoints (gRPC UNAVAILABLE)", code="unknown-host")
        elif port is None:
            if len(svc.ports) != 1:
                rep.error(f"{path}.port", f"service {host!r} has {len(svc.ports)} ports "
                          f"({', '.join(str(p.number) for p in svc.ports) or 'none'}); destination.port is required")
                return None
            port = svc.ports[0].number
        elif svc.port(port) is None:
            rep.error(f"{path}.port.number", f"service {host!r} has no port {port} "
                      f"(ports: {', '.join(str(p.number) for p in svc.ports) or 'none'})")
            return None
        if subset:
            policy = self.policies.get(host)
            if policy is None or policy.subset(subset) is None:
                rep.warning(f"{path}.subset", f"subset {subset!r} of {host!r} is not defined by any "
                            "DestinationRule; its cluster has no endpoints", code="unknown-subset")
        self.referenced.add((host, port, subset))
        if self.recording is not None:
            self.recording.append((host, port, subset))
        return cluster_name(port=port, subset=subset, host=host)
