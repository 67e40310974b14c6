"""A scripted Kubernetes API server for watch tests: real list and watch JSON over HTTP.

kmock (PyPI) emulates objects but not resourceVersions, 410s or bookmarks, which
are exactly what the reflector must handle, so the watch tests use this small
scripted equivalent.  Per resource (plural) a test gives:

* ``lists``: successive list responses ``(resourceVersion, items)`` (the last repeats);
* ``watches``: successive watch connections, each a list of steps: an event dict
  (``{"type": "ADDED", "object": {...}}``), ``"drop"`` (close abruptly),
  ``410`` (answer the watch request with HTTP 410), or ``("sleep", seconds)``.
  After its steps a connection stays open and delivers :meth:`push`-ed events.

Every request is recorded, so tests can assert which resourceVersion a watch used.
"""
from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.harness import free_port


@dataclass
class Script:
    lists: list[tuple[str, list[dict]]] = field(default_factory=lambda: [("1", [])])
    watches: list[list[Any]] = field(default_factory=list)
    list_calls: int = 0
    watch_calls: int = 0


class FakeApiServer:
    def __init__(self, *, groups: dict[str, list[tuple[str, list[str]]]], scripts: dict[str, Script],
                 token_reviews: dict[str, dict] | None = None) -> None:
        """``groups``: group -> [(version, [plurals])] that the server serves (core is always served).
        ``token_reviews``: token -> the TokenReview ``status`` to answer (unknown tokens: not authenticated)."""
        self.groups = groups
        self.scripts = scripts
        self.token_reviews = token_reviews or {}
        self.reviews: list[dict] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.status_patches: list[tuple[str, str, dict, dict]] = []
        self.stored: dict[str, dict] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._live: dict[str, list[asyncio.Queue]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "FakeApiServer":
        self._thread.start()
        assert self._started.wait(10), "fake API server did not start"
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._write)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._started.set()
        await self._stop.wait()
        await runner.cleanup()

    # ------------------------------------------------------------------ test API
    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig for this server at ``path`` (no credentials) and return the path."""
        path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{self.url}"}}}}]
users: [{{name: fake, user: {{}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]
current-context: fake
""")
        return path

    def push(self, plural: str, event: dict) -> None:
        """Deliver an event to every open watch on ``plural``."""
        assert self._loop is not None
        def put() -> None:
            for q in self._live.get(plural, []):
                q.put_nowait(event)
        self._loop.call_soon_threadsafe(put)

    def watch_requests(self, plural: str) -> list[dict[str, str]]:
        return [q for p, q in self.requests if p.endswith("/" + plural) and q.get("watch") == "true"]

    # ------------------------------------------------------------------ HTTP
    async def _write(self, request: web.Request) -> web.StreamResponse:
        """POST/PUT/PATCH: a tiny object store (Leases) and a log of status patches."""
        body = await request.json()
        self.requests.append((request.path, {"method": request.method, **dict(request.query)}))
        if request.path.endswith("/tokenreviews"):  # TokenReview: the scripted answer for this token
            token = (body.get("spec") or {}).get("token", "")
            status = self.token_reviews.get(token, {"authenticated": False, "error": "token not found"})
            audiences = (body.get("spec") or {}).get("audiences") or []
            status = dict(status)
            if status.get("authenticated") and "audiences" not in status:
                status["audiences"] = audiences  # a token issued for what was asked
            self.reviews.append(body)
            return web.json_response({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                      "spec": body.get("spec"), "status": status}, status=201)
        if request.path.endswith("/status"):
            self.status_patches.append((request.path, request.headers.get("Content-Type", ""), dict(request.query), body))
            return web.json_response(body)
        path = request.path if request.method == "PUT" else f"{request.path}/{body['metadata']['name']}"
        if request.method == "POST" and path in self.stored:
            return web.json_response({"kind": "Status", "code": 409}, status=409)
        body.setdefault("metadata", {})["resourceVersion"] = str(len(self.requests))
        self.stored[path] = body
        return web.json_response(body, status=201 if request.method == "POST" else 200)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        query = dict(request.query)
        self.requests.append((path, query))
        if path in self.stored:
            return web.json_response(self.stored[path])
        if "/leases/" in path:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            versions = self.groups.get(parts[1])
            if versions is None:
                return web.json_response({"kind": "Status", "code": 404}, status=404)
            return web.json_response({"name": parts[1], "versions": [{"version": v} for v, _ in versions]})
        if parts[0] == "apis" and len(parts) == 3:
            for v, plurals in self.groups.get(parts[1], []):
                if v == parts[2]:
                    return web.json_response({"resources": [{"name": p} for p in plurals]})
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        plural = parts[-1]
        script = self.scripts.get(plural)
        if script is None:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        if query.get("watch") == "true":
            return await self._watch(request, plural, script)
        rv, items = script.lists[min(script.list_calls, len(script.lists) - 1)]
        script.list_calls += 1
        return web.json_response({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": rv},
                                  "items": items})

    async def _watch(self, request: web.Request, plural: str, script: Script) -> web.StreamResponse:
        steps = script.watches[script.watch_calls] if script.watch_calls < len(script.watches) else []
        script.watch_calls += 1
        if steps and steps[0] == 410:
            return web.json_response({"kind": "Status", "code": 410, "reason": "Expired"}, status=410)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        queue: asyncio.Queue = asyncio.Queue()
        self._live.setdefault(plural, []).append(queue)
        try:
            for step in steps:
                if step == "drop":
                    request.transport.close()  # abrupt: no chunked terminator
                    return resp
                if isinstance(step, tuple) and step[0] == "sleep":
                    await asyncio.sleep(step[1])
                    continue
                await resp.write(json.dumps(step).encode() + b"\n")
            timeout = float(request.query.get("timeoutSeconds", "300"))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                try:
                    event = await asyncio.wait_for(queue.get(), 0.2)
                except asyncio.TimeoutError:
                    continue
                await resp.write(json.dumps(event).encode() + b"\n")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._live[plural].remove(queue)
        return resp


def obj(kind: str, name: str, *, rv: str, namespace: str = "default", api_version: str = "networking.istio.io/v1",
        spec: dict | None = None, **extra: Any) -> dict:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}, "spec": spec or {}, **extra}


def event(etype: str, o: dict) -> dict:
    return {"type": etype, "object": o}


def bookmark(rv: str) -> dict:
    return {"type": "BOOKMARK", "object": {"kind": "VirtualService", "apiVersion": "networking.istio.io/v1",
                                           "metadata": {"resourceVersion": rv}}}
