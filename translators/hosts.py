"""Host names as Istio understands them.

* A short name (no dot) is relative to the referring object's namespace:
  ``greeter`` in ``default`` is ``greeter.default.svc.cluster.local``.
* ``name.namespace`` is accepted when it names a known Kubernetes-style host.
* ServiceEntry hosts are used exactly as written.
* ``*.example.com`` matches any host under ``example.com``; ``*`` matches all.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from translators.ir import DOMAIN_SUFFIX, Service


def fqdn(host: str, namespace: str) -> str:
    if "." in host or host == "*" or host.startswith("*"):
        return host
    return f"{host}.{namespace}.{DOMAIN_SUFFIX}"


class Registry:
    """The services that destinations can resolve to, by host."""

    __slots__ = ("by_host",)

    def __init__(self, services: Iterable[Service]) -> None:
        by_host: dict[str, Service] = {}
        for svc in services:
            by_host.setdefault(svc.host, svc)
        self.by_host: Mapping[str, Service] = by_host

    @classmethod
    def of_hosts(cls, by_host: Mapping[str, Service]) -> "Registry":
        """A registry over an already elected ``host -> Service`` map."""
        reg = cls.__new__(cls)
        reg.by_host = by_host
        return reg

    def resolve(self, host: str, namespace: str) -> str:
        """The canonical host for ``host`` as written in ``namespace``."""
        if host in self.by_host:
            return host
        if "." not in host:
            return fqdn(host, namespace)
        if host.count(".") == 1:
            candidate = f"{host}.{DOMAIN_SUFFIX}"
            if candidate in self.by_host:
                return candidate
        return host

    def get(self, host: str) -> Service | None:
        return self.by_host.get(host)


def matches(pattern: str, host: str) -> bool:
    """Does ``pattern`` (which may be a wildcard) cover ``host``?"""
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        if host.startswith("*."):
            return host[1:].endswith(suffix)
        return host.endswith(suffix)
    return False


def intersect(server_host: str, route_host: str) -> str | None:
    """The more specific of two hosts when one covers the other (Istio's gateway host filter)."""
    if matches(server_host, route_host):
        return route_host
    if matches(route_host, server_host):
        return server_host
    return None


def split_namespaced(host: str, *, default_namespace: str) -> tuple[str, str]:
    """Gateway ``servers[].hosts`` entries: ``ns/host``; ``.`` means the gateway's own namespace."""
    if "/" in host:
        ns, _, name = host.partition("/")
        if ns == ".":
            ns = default_namespace
        return ns, name
    return "*", host
