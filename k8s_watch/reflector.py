"""One list+watch loop for one kind (and namespace), like client-go's reflector.

1. Discover which of the kind's API versions the server serves (``GET /apis/GROUP``);
   a 404 means the CRD is not installed: one log line, reported as synced, done.
2. List; hand the complete set to the sink (which diffs it, so deletions that
   happened while we were away are seen); remember the list's resourceVersion.
3. Watch from that resourceVersion with ``allowWatchBookmarks``.  Bookmarks and
   events advance the resourceVersion.  ``410 Gone`` (as the watch's HTTP status
   or as an ERROR event) means our version is too old: go back to 2.
4. A stream that ends, drops or stays silent past the read timeout is re-opened
   from the last resourceVersion after a jittered exponential backoff.

The loop is synchronous (the official client is) and runs in a thread; ``stop``
ends it.  ``sleep`` is the test seam for the backoff.
"""
from __future__ import annotations

import json
import logging
import random
import threading
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import urlencode

from kubernetes import client as k8s_client

from k8s_watch.kinds import WatchedKind

log = logging.getLogger(__name__)


class Gone(Exception):
    """The resourceVersion we hold is too old (HTTP 410): relist."""


class Sink(Protocol):
    def replace_all(self, kind: WatchedKind, namespace: str | None, objects: list[dict]) -> None: ...
    def upsert(self, kind: WatchedKind, obj: dict) -> None: ...
    def delete(self, kind: WatchedKind, obj: dict) -> None: ...
    def synced(self, kind: WatchedKind, namespace: str | None, *, installed: bool) -> None: ...


class Backoff:
    """Jittered exponential backoff: base * 2^n, capped, times a random factor in [0.5, 1.5)."""

    def __init__(self, *, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.attempt = base, cap, 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * (2 ** self.attempt)) * self.rng.uniform(0.5, 1.5)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class Reflector:
    def __init__(self, *, api: k8s_client.ApiClient, kind: WatchedKind, namespace: str | None, sink: Sink,
                 stop: threading.Event, watch_timeout: float = 300.0, backoff: Backoff | None = None,
                 sleep: Callable[[float], Any] | None = None) -> None:
        self.api, self.kind, self.namespace, self.sink, self.stop = api, kind, namespace, sink, stop
        self.watch_timeout = watch_timeout
        self.backoff = backoff or Backoff()
        self.sleep = sleep or stop.wait
        self.version: str | None = None
        self.resource_version: str | None = None
        self.relists = 0
        self.reconnects = 0

    @property
    def name(self) -> str:
        return f"{self.kind.label}" + (f"@{self.namespace}" if self.namespace else "")

    # ------------------------------------------------------------------ HTTP
    def _get(self, path: str, params: dict[str, Any], *, read_timeout: float):
        method, url, headers, _, _ = self.api.param_serialize(
            method="GET", resource_path=path, query_params=list(params.items()),
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        return self.api.call_api(method, url, header_params=headers, _request_timeout=(5.0, read_timeout))

    def _discover(self) -> str | None:
        if not self.kind.group:
            return self.kind.versions[0]
        resp = self._get(f"/apis/{self.kind.group}", {}, read_timeout=30)
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RuntimeError(f"discovery of {self.kind.group}: HTTP {resp.status}")
        served = {v.get("version") for v in json.loads(resp.read()).get("versions", [])}
        for version in self.kind.versions:
            if version in served:
                # the CRD's group exists; is this kind's resource served at that version?
                found = self._get(f"/apis/{self.kind.group}/{version}", {}, read_timeout=30)
                if found.status == 200:
                    names = {r.get("name") for r in json.loads(found.read()).get("resources", [])}
                    if self.kind.plural in names:
                        return version
        return None

    def _params(self) -> dict[str, Any]:
        return {"fieldSelector": self.kind.field_selector} if self.kind.field_selector else {}

    def _list(self) -> None:
        resp = self._get(self.kind.path(self.version, self.namespace), self._params(), read_timeout=60)
        if resp.status != 200:
            raise RuntimeError(f"list {self.name}: HTTP {resp.status}")
        body = json.loads(resp.read())
        items = [self._complete(o) for o in body.get("items", [])]
        self.resource_version = (body.get("metadata") or {}).get("resourceVersion") or None
        self.sink.replace_all(self.kind, self.namespace, items)

    def _complete(self, obj: dict) -> dict:
        """List items carry no apiVersion/kind; add them."""
        obj.setdefault("apiVersion", f"{self.kind.group}/{self.version}" if self.kind.group else self.version)
        obj.setdefault("kind", self.kind.kind)
        return obj

    def _events(self) -> Iterator[dict]:
        params = {**self._params(), "watch": "true", "allowWatchBookmarks": "true",
                  "timeoutSeconds": int(self.watch_timeout)}
        if self.resource_version:
            params["resourceVersion"] = self.resource_version
        resp = self._get(self.kind.path(self.version, self.namespace), params, read_timeout=self.watch_timeout + 30)
        if resp.status == 410:
            raise Gone()
        if resp.status != 200:
            raise RuntimeError(f"watch {self.name}: HTTP {resp.status}")
        buffer = b""
        try:
            for chunk in resp.response.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
                if self.stop.is_set():
                    return
        finally:
            resp.response.release_conn()

    def _watch(self) -> None:
        for event in self._events():
            etype, obj = event.get("type"), event.get("object") or {}
            if etype == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise RuntimeError(f"watch {self.name}: {obj.get('message', obj)}")
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = rv
            if etype == "BOOKMARK":
                continue
            self.backoff.reset()
            if etype in ("ADDED", "MODIFIED"):
                self.sink.upsert(self.kind, self._complete(obj))
            elif etype == "DELETED":
                self.sink.delete(self.kind, self._complete(obj))

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if self.version is None:
                    self.version = self._discover()
                    if self.version is None:
                        log.info("%s: not served by the API server (CRD not installed); skipped", self.name)
                        self.sink.synced(self.kind, self.namespace, installed=False)
                        return
                if self.resource_version is None:
                    self._list()
                    self.sink.synced(self.kind, self.namespace, installed=True)
                self._watch()
                self.reconnects += 1  # the stream ended (server timeout or dropped): re-watch from where we are
                self.sleep(self.backoff.next())
            except Gone:
                log.info("%s: resourceVersion %s is gone (410); relisting", self.name, self.resource_version)
                self.resource_version = None
                self.relists += 1
            except Exception as exc:  # noqa: BLE001 - keep watching whatever happens
                self.reconnects += 1
                delay = self.backoff.next()
                log.warning("%s: %s; retrying in %.1fs", self.name, exc, delay)
                self.sleep(delay)
