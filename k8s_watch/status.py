"""Writing status back: Gateway API conditions and Istio validation results.

* Only the leader writes: a ``coordination.k8s.io/v1`` Lease elects one replica (every replica
  serves xDS; status is the only shared write).
* Server-side apply to the ``/status`` subresource with our own field manager, so we own only
  our conditions; a write happens only when the status we computed changed.
* Conditions get ``lastTransitionTime`` and ``observedGeneration`` here, keeping translation pure.
"""
from __future__ import annotations

import datetime
import json
import logging
import threading
import time
import uuid
from typing import Any, Callable, Mapping

from kubernetes import client as k8s_client

from k8s_watch.kinds import KINDS, WatchedKind
from translators.objects import ConfigObject, ObjectRef

log = logging.getLogger(__name__)

FIELD_MANAGER = "xds-server"


def _now() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElection:
    """A Lease-based lock, renewed in a thread; ``is_leader`` says whether we hold it."""

    def __init__(self, *, api: k8s_client.ApiClient, namespace: str, name: str = "xds-server-status",
                 identity: str | None = None, lease_seconds: int = 15, renew_every: float = 2.0,
                 clock: Callable[[], float] = time.time, on_elected: Callable[[], None] | None = None) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        #: called (in the election thread) when this replica becomes the leader: write what is pending
        self.on_elected = on_elected
        self.identity = identity or f"xds-server-{uuid.uuid4().hex[:8]}"
        self.lease_seconds, self.renew_every, self.clock = lease_seconds, renew_every, clock
        self.is_leader = False
        self.stop = threading.Event()

    def _request(self, method: str, path: str, body: Any = None, content_type: str = "application/json"):
        m, url, headers, body_s, _ = self.api.param_serialize(
            method=method, resource_path=path, body=body,
            header_params={"Accept": "application/json", "Content-Type": content_type}, auth_settings=["BearerToken"])
        resp = self.api.call_api(m, url, header_params=headers, body=body_s, _request_timeout=(5.0, 10.0))
        return resp.status, (json.loads(resp.read() or b"{}") if resp.status < 500 else {})

    def try_acquire(self) -> bool:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        now = self.clock()
        status, lease = self._request("GET", f"{base}/{self.name}")
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": self.lease_seconds,
                "renewTime": _now(), "acquireTime": _now()}
        if status == 404:
            status, _ = self._request("POST", base, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                                     "metadata": {"name": self.name, "namespace": self.namespace},
                                                     "spec": spec})
            self.is_leader = status in (200, 201)
            return self.is_leader
        if status != 200:
            self.is_leader = False
            return False
        held = lease.get("spec") or {}
        renewed = held.get("renewTime")
        expired = True
        if renewed:
            try:
                t = datetime.datetime.strptime(renewed, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
                expired = t.timestamp() + float(held.get("leaseDurationSeconds") or self.lease_seconds) < now
            except ValueError:
                expired = True
        if held.get("holderIdentity") not in (None, self.identity) and not expired:
            self.is_leader = False
            return False
        if held.get("holderIdentity") == self.identity:
            spec["acquireTime"] = held.get("acquireTime") or spec["acquireTime"]
        lease["spec"] = spec
        status, _ = self._request("PUT", f"{base}/{self.name}", lease)  # resourceVersion makes this a CAS
        self.is_leader = status == 200
        return self.is_leader

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                was = self.is_leader
                self.try_acquire()
                if self.is_leader != was:
                    log.info("status leader election: %s", "leader" if self.is_leader else "follower")
                    if self.is_leader and self.on_elected is not None:
                        self.on_elected()
            except Exception as exc:  # noqa: BLE001
                self.is_leader = False
                log.warning("leader election: %s", exc)
            self.stop.wait(self.renew_every)


def _kind_for(ref: ObjectRef) -> WatchedKind | None:
    return next((k for k in KINDS if k.kind == ref.kind and k.group == ref.group), None)


def _stamp(status: dict, generation: int | None) -> dict:
    """Add lastTransitionTime and observedGeneration to every condition, recursively."""
    out = json.loads(json.dumps(status))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for c in node.get("conditions", []) if isinstance(node.get("conditions"), list) else []:
                c.setdefault("lastTransitionTime", _now())
                if generation is not None:
                    c.setdefault("observedGeneration", generation)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(out)
    return out


class StatusWriter:
    def __init__(self, *, api: k8s_client.ApiClient, election: LeaderElection, versions: Mapping[str, str]) -> None:
        """``versions``: the API version each kind is served at, by ``WatchedKind.label``."""
        self.api, self.election, self.versions = api, election, versions
        self._written: dict[ObjectRef, str] = {}
        self.writes = 0
        self._latest: tuple[Mapping[ObjectRef, dict], Mapping[ObjectRef, ConfigObject]] = ({}, {})
        self._lock = threading.Lock()
        #: objects a connected Envoy rejects now, with its message (``set_nacks``)
        self._nacks: dict[ObjectRef, str] = {}

    def flush(self) -> None:
        """Write the latest computed statuses (e.g. right after winning the election)."""
        self.write(*self._latest)

    def write(self, statuses: Mapping[ObjectRef, dict], objects: Mapping[ObjectRef, ConfigObject]) -> None:
        """Apply every status that differs from what we last wrote (leader only)."""
        with self._lock:
            self._latest = (statuses, objects)
            if self.election.is_leader:
                self._write(self._merged(statuses), objects)

    def set_nacks(self, nacks: Mapping[ObjectRef, str]) -> None:
        """Objects whose resources a connected Envoy rejects now, with its message: shown on the object
        (Istio: a validationMessage and ``Reconciled=False, EnvoyRejected``; Emissary: ``Inactive``; a Gateway
        API Gateway: ``Programmed=False``; a route: the implementation-specific parent condition
        ``xds-server.io/EnvoyRejected``) until no client rejects them any more."""
        with self._lock:
            if dict(nacks) == self._nacks:
                return
            self._nacks = dict(nacks)
            if self.election.is_leader:
                self._write(self._merged(self._latest[0]), self._latest[1])

    def _merged(self, statuses: Mapping[ObjectRef, dict]) -> Mapping[ObjectRef, dict]:
        nacks = self._nacks
        if not nacks:
            return statuses
        out = dict(statuses)
        for ref, message in nacks.items():
            text = f"Envoy rejected the config built from this object: {message}"[:1000]
            if ref.group == "networking.istio.io":
                base = out.get(ref) or {}
                out[ref] = {"validationMessages": list(base.get("validationMessages") or []) + [
                    {"level": "ERROR", "type": {"code": "XDS0002", "name": "EnvoyRejected"}, "message": text}],
                    "conditions": [{"type": "Reconciled", "status": "False", "reason": "EnvoyRejected",
                                    "message": text}]}
            elif ref.group == "getambassador.io":
                out[ref] = {"state": "Inactive", "reason": text}
            elif ref.group == "gateway.networking.k8s.io" and ref in out:
                status = json.loads(json.dumps(out[ref]))  # a copy: the translation's statuses stay as they are
                rejected = {"type": "Programmed", "status": "False", "reason": "Invalid", "message": text}
                if ref.kind == "Gateway":
                    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "Programmed"]
                    status["conditions"].append(rejected)
                else:
                    for parent in status.get("parents") or []:
                        parent.setdefault("conditions", []).append(
                            {**rejected, "type": "xds-server.io/EnvoyRejected", "status": "True",
                             "reason": "EnvoyRejected"})
                out[ref] = status
        return out

    def _write(self, statuses: Mapping[ObjectRef, dict], objects: Mapping[ObjectRef, ConfigObject]) -> None:
        for ref, status in statuses.items():
            obj = objects.get(ref)
            kind = _kind_for(ref)
            if obj is None or kind is None or not obj.source.startswith("k8s:"):
                continue
            fingerprint = json.dumps(status, sort_keys=True)
            if self._written.get(ref) == fingerprint:
                continue
            version = self.versions.get(kind.label) or kind.versions[0]
            generation = (obj.raw.get("metadata") or {}).get("generation")
            body = {"apiVersion": f"{kind.group}/{version}" if kind.group else version, "kind": kind.kind,
                    "metadata": {"name": ref.name, "namespace": ref.namespace} if kind.namespaced else {"name": ref.name},
                    "status": _stamp(status, generation)}
            path = kind.path(version, ref.namespace if kind.namespaced else None) + f"/{ref.name}/status"
            m, url, headers, body_s, _ = self.api.param_serialize(
                method="PATCH", resource_path=path, body=body,
                query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                header_params={"Accept": "application/json", "Content-Type": "application/apply-patch+yaml"},
                auth_settings=["BearerToken"])
            resp = self.api.call_api(m, url, header_params=headers, body=body_s, _request_timeout=(5.0, 10.0))
            if resp.status in (200, 201):
                self._written[ref] = fingerprint
                self.writes += 1
            else:
                log.warning("status of %s: HTTP %s", ref, resp.status)
