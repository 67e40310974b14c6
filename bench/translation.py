"""Translation + serialization cost per change kind, as the controller pays it.

N services, each a ServiceEntry (10 endpoints), a DestinationRule with 2 subsets and a VirtualService,
on one Gateway; plus N/10 Kubernetes Services with EndpointSlices, a TLS Secret and an HTTPS server.
The objects sit in a real :class:`~xds_server.store.ConfigStore`, one origin per object as the Kubernetes
source keeps them.  For each change kind one object is replaced by an edited copy (a new object, as the
sources make it), and the store's merge + ``translate(previous=...)`` + ``SnapshotCache.prepare/install``
for one Envoy node class is timed; then the edit is reverted (timed too).  Medians over ``repeats`` edits
of different services.
"""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import gc
import statistics
import time
from typing import Callable

from bench.config_gen import config, service
from translators.node import NodeInfo
from translators.objects import ConfigObject
from translators.pipeline import translate
from xds_server.cache import SnapshotCache
from xds_server import gc_policy
from xds_server.controller import gc_paused
from xds_server.store import ConfigStore

#: a gateway Envoy on Delta xDS (the default bootstrap): virtual hosts over VHDS
NODE = dataclasses.replace(NodeInfo.of(labels={"istio": "ingressgateway"}), vhds=True)

TLS = """
apiVersion: v1
kind: Secret
metadata: {name: gw-cert, namespace: default}
type: kubernetes.io/tls
"""


def _tls_objects() -> list[ConfigObject]:
    import trustme  # test dependency: a real certificate, as Envoy needs one
    ca = trustme.CA()
    cert = ca.issue_cert("gw.example.com")
    data = {"tls.crt": cert.cert_chain_pems[0].bytes().decode(), "tls.key": cert.private_key_pem.bytes().decode()}
    raw = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gw-cert", "namespace": "default"},
           "type": "kubernetes.io/tls", "stringData": data}
    from translators.objects import ObjectRef
    return [ConfigObject(ref=ObjectRef("Secret", "default", "gw-cert", ""), api_version="v1", spec={}, source="bench",
                         raw=raw)]


def _edited(obj: ConfigObject, mutate) -> ConfigObject:  # noqa: ANN001
    raw = copy.deepcopy(dict(obj.raw)) if obj.raw else None
    spec = copy.deepcopy(dict(obj.spec))
    mutate(spec, raw)
    return ConfigObject(ref=obj.ref, api_version=obj.api_version, spec=(raw or {}).get("spec", spec) if raw else spec,
                        labels=obj.labels, annotations=obj.annotations, source=obj.source, raw=raw or {})


def _vs(spec, raw):  # noqa: ANN001, ANN202
    spec["http"][0]["match"] = [{"uri": {"prefix": "/edited.Service/"}}]


def _dr(spec, raw):  # noqa: ANN001, ANN202
    spec["trafficPolicy"] = {"loadBalancer": {"simple": "RANDOM"}}


def _se(spec, raw):  # noqa: ANN001, ANN202
    spec["endpoints"][0]["address"] = "127.99.99.99"


def _slice(spec, raw):  # noqa: ANN001, ANN202
    raw["endpoints"][0]["addresses"] = ["10.250.250.250"]


def _secret(spec, raw):  # noqa: ANN001, ANN202
    raw["metadata"]["annotations"] = {"rotated": "yes"}
    raw["stringData"] = dict(raw["stringData"])


def _gateway(spec, raw):  # noqa: ANN001, ANN202
    spec["servers"][0]["hosts"] = ["*", "edited.example.com"]


KINDS = {
    "virtual_service_edit": ("VirtualService", "svc-{i}", _vs),
    "destination_rule_edit": ("DestinationRule", "svc-{i}", _dr),
    "service_entry_endpoint_edit": ("ServiceEntry", "svc-{i}", _se),
    "endpoint_slice_edit": ("EndpointSlice", "k8s-{i}-abc", _slice),
    "secret_edit": ("Secret", "gw-cert", _secret),
    "gateway_edit": ("Gateway", "ingress", _gateway),
}


def _objects(n: int) -> list[ConfigObject]:
    objects = config(n, kubernetes=max(1, n // 10)) + _tls_objects()
    gw = objects[0]
    spec = copy.deepcopy(dict(gw.spec))
    spec["servers"].append({"port": {"number": 8443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"],
                            "tls": {"mode": "SIMPLE", "credentialName": "gw-cert"}})
    objects[0] = ConfigObject(ref=gw.ref, api_version=gw.api_version, spec=spec, source=gw.source)
    return objects


def _origin(obj: ConfigObject) -> str:
    """One origin per object, named as the Kubernetes source names them."""
    return f"k8s:{obj.kind}/{obj.ref.namespace}/{obj.name}"


class Replay:
    """The objects in a real :class:`ConfigStore` (one origin per object) and one node class's snapshots,
    translated as the controller does: a timed full build, frozen for the GC, then :meth:`step`.  Make it
    inside a running event loop (the cache's events)."""

    def __init__(self, objects: list[ConfigObject]) -> None:
        self.store = ConfigStore()
        for o in objects:
            self.store.replace(_origin(o), [o])
        self.cache = SnapshotCache()
        with gc_paused():
            t0 = time.perf_counter()
            merged = self.store.objects()[0]
            t1 = time.perf_counter()
            self.translation = translate(merged)
            t2 = time.perf_counter()
            self.cache.install(self.cache.prepare(self.translation, generation=1))
            t3 = time.perf_counter()
            self.cache.get(NODE)
            t4 = time.perf_counter()
            gc_policy.freeze_if_big()  # as the controller's build does: no collection over the build after it
        self.full_build_s = time.perf_counter() - t0
        #: where the full build went: the store's merge, ``translate``, ``prepare`` + ``install`` (no node known
        #: yet), and the first node class's snapshot (``cache.get``: what a new class's first stream waits for)
        self.phases = {"store_s": round(t1 - t0, 3), "translate_s": round(t2 - t1, 3), "prepare_s": round(t3 - t2, 3),
                       "first_class_s": round(t4 - t3, 3), "total_s": round(t4 - t0, 3)}
        gc.collect()
        gc.freeze()  # as the controller does after a full build: later collections skip these objects
        self._generation = 2

    def step(self, change: Callable[[], object]) -> float:
        """Apply ``change`` to the store, then translate and prepare; the seconds the latter took."""
        change()
        t0 = time.perf_counter()
        with gc_paused():
            self.translation = translate(self.store.objects()[0], accepted=self.translation.accepted,
                                         previous=self.translation)
            self.cache.install(self.cache.prepare(self.translation, generation=self._generation))
        self._generation += 1
        return time.perf_counter() - t0

    def put(self, *objs: ConfigObject) -> Callable[[], object]:
        return lambda: [self.store.replace(_origin(o), [o]) for o in objs]

    def drop(self, *objs: ConfigObject) -> Callable[[], object]:
        return lambda: [self.store.remove(_origin(o)) for o in objs]


def run(*, sizes: tuple[int, ...], repeats: int) -> dict:
    out: dict = {}
    for n in sizes:
        objects = _objects(n)
        index = {(o.kind, o.name): o for o in objects}
        box: dict = {}

        async def measure() -> None:
            replay = Replay(objects)
            box["full_build_s"] = round(replay.full_build_s, 3)
            step, put, drop = replay.step, replay.put, replay.drop
            box["no_op_ms"] = round(statistics.median(step(lambda: None) for _ in range(repeats)) * 1000, 1)
            for label, (kind, name, mutate) in KINDS.items():
                times = []
                for r in range(repeats):
                    original = index[(kind, name.format(i=(r * 7) % max(1, n // 10)))]
                    times.append(step(put(_edited(original, mutate))))
                    step(put(original))  # revert
                box[f"{label}_ms"] = round(statistics.median(times) * 1000, 1)
            # the scale scenario's edit: a new service (ServiceEntry + VirtualService) added, then removed
            added, removed = [], []
            for r in range(repeats):
                new = [o for o in service(n + r) if o.kind != "DestinationRule"]
                added.append(step(put(*new)))
                removed.append(step(drop(*new)))
            box["service_added_ms"] = round(statistics.median(added) * 1000, 1)
            box["service_removed_ms"] = round(statistics.median(removed) * 1000, 1)
            snap = replay.cache.get(NODE)
            box["resources"] = {k.rsplit(".", 1)[-1]: len(v) for k, v in snap.resources.items()}
        asyncio.run(measure())
        out[str(n)] = dict(box)
    return out


def full_build_phases(n: int) -> dict:
    """A full build at ``n`` services split into its phases (:attr:`Replay.phases`)."""
    box: dict = {}

    async def measure() -> None:
        box.update(Replay(_objects(n)).phases)
    asyncio.run(measure())
    return box
