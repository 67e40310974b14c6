"""Kubernetes objects into the config store, with readiness.

Every object is its own origin in the :class:`~xds_server.store.ConfigStore`
(``k8s:KIND.GROUP/NAMESPACE/NAME``), so an event costs one store update.  A
(re)list replaces the whole set of one kind (and namespace): objects that are
no longer listed are removed, which is how deletions missed during a 410 are
seen.  The source is ready once every kind has listed at least once (or is
not installed); until then ``/readyz`` stays 503, so an Envoy that reconnects
to a fresh replica is never handed a partial config.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Iterable, Sequence

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from k8s_watch.kinds import KINDS, WatchedKind
from k8s_watch.reflector import Reflector
from xds_server.sources.documents import to_config_objects
from xds_server.store import ConfigStore

log = logging.getLogger(__name__)


def api_client(*, kubeconfig: str | None = None) -> k8s_client.ApiClient:
    """In-cluster config when running in a pod, else the kubeconfig (``--kubeconfig`` or the default)."""
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig:
            raise k8s_config.ConfigException("explicit kubeconfig")
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return k8s_client.ApiClient(configuration)


def _origin(kind: WatchedKind, obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"k8s:{kind.label}/{meta.get('namespace') or ''}/{meta.get('name')}"


class KubernetesSource:
    def __init__(self, *, store: ConfigStore, api: k8s_client.ApiClient, namespaces: Sequence[str] = (),
                 kinds: Iterable[WatchedKind] = KINDS, watch_timeout: float = 300.0) -> None:
        self.store = store
        self.api = api
        self.stop_event = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        scopes = list(namespaces) or [None]
        self.reflectors = [Reflector(api=api, kind=k, namespace=ns if k.namespaced else None, sink=self,
                                     stop=self.stop_event, watch_timeout=watch_timeout)
                           for k in kinds for ns in (scopes if k.namespaced else [None])]
        self._pending = {(r.kind, r.namespace) for r in self.reflectors}
        self.installed: dict[str, bool] = {}
        self._threads: list[threading.Thread] = []
        self.ready_event = asyncio.Event()

    @property
    def ready(self) -> bool:
        return not self._pending

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for r in self.reflectors:
            t = threading.Thread(target=r.run, name=f"watch-{r.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()

    # ------------------------------------------------------------------ Sink, called from reflector threads
    def _call(self, fn, *args) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(fn, *args)

    def replace_all(self, kind: WatchedKind, namespace: str | None, objects: list[dict]) -> None:
        self._call(self._replace_all, kind, namespace, objects)

    def upsert(self, kind: WatchedKind, obj: dict) -> None:
        self._call(self._upsert, kind, obj)

    def delete(self, kind: WatchedKind, obj: dict) -> None:
        self._call(self.store.remove, _origin(kind, obj))

    def synced(self, kind: WatchedKind, namespace: str | None, *, installed: bool) -> None:
        self._call(self._synced, kind, namespace, installed)

    # ------------------------------------------------------------------ applied on the event loop
    def _upsert(self, kind: WatchedKind, obj: dict) -> None:
        origin = _origin(kind, obj)
        objects, diags = to_config_objects(obj, source=origin)
        self.store.replace(origin, objects, diags)

    def _replace_all(self, kind: WatchedKind, namespace: str | None, objects: list[dict]) -> None:
        prefix = f"k8s:{kind.label}/" + (f"{namespace}/" if namespace else "")
        keep = set()
        for obj in objects:
            keep.add(_origin(kind, obj))
            self._upsert(kind, obj)
        for origin in self.store.origins():
            if origin.startswith(prefix) and origin not in keep:
                self.store.remove(origin)

    def _synced(self, kind: WatchedKind, namespace: str | None, installed: bool) -> None:
        self.installed[kind.label] = installed
        self._pending.discard((kind, namespace))
        if not self._pending:
            self.ready_event.set()
