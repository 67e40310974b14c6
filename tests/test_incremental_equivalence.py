"""The incremental engine is byte-identical to a full build.

After any sequence of random edits, translating incrementally (reusing the
previous translation's parses, clusters, virtual hosts and serialized bytes)
must give exactly the snapshot a full build of the same objects gives: the
same resources, the same bytes, the same versions, the same diagnostics.
This is what makes the fast path safe to trust.

Objects behave as the sources make them: an unchanged object is the very
same Python object in the next translation, an edited one is a new object.
"""
from __future__ import annotations

import dataclasses

import asyncio
import os
import copy

from hypothesis import HealthCheck, given, settings, strategies as st

from bench.config_gen import config, service
from xds_server.sources.documents import parse_text
from translators.node import GRPC, NodeInfo
from translators.objects import ConfigObject
from translators.pipeline import translate
from xds_server.cache import SnapshotCache
from xds_server.snapshot import Snapshot

GATEWAY_NODE = NodeInfo.of(labels={"istio": "ingressgateway"})
PROXYLESS_NODE = NodeInfo.of(flavour=GRPC)
EMISSARY_NODE = NodeInfo.of(labels={"xds-server.io/dialect": "emissary", "xds-server.io/ambassador-id": "default"})
#: a Delta Envoy: virtual hosts over VHDS, patched per host between translations
VHDS_NODE = dataclasses.replace(GATEWAY_NODE, vhds=True)
N = 6
#: names a proxyless client asks for (resolved lazily, so they are compared by name)
PROXYLESS_NAMES = [f"svc-{i}.default.svc.cluster.local:50051" for i in range(N + 2)] + ["svc-1:50051", "svc-2"]


def edited(obj: ConfigObject, mutate) -> ConfigObject:  # noqa: ANN001
    spec = copy.deepcopy(dict(obj.spec))
    mutate(spec)
    return ConfigObject(ref=obj.ref, api_version=obj.api_version, spec=spec, labels=obj.labels,
                        annotations=obj.annotations, source=obj.source)


def _set_port(i: int, port: int):
    def m(spec: dict) -> None:
        spec["endpoints"][i % len(spec["endpoints"])]["ports"] = {"grpc": port}
    return m


def _drop_endpoint(spec: dict) -> None:
    if len(spec["endpoints"]) > 1:
        spec["endpoints"].pop()


def _lb(policy: str):
    def m(spec: dict) -> None:
        spec["trafficPolicy"] = {"loadBalancer": {"simple": policy}}
    return m


def _subsets(names: tuple[str, ...]):
    def m(spec: dict) -> None:
        spec["subsets"] = [{"name": n, "labels": {"version": n}} for n in names]
    return m


def _prefix(prefix: str):
    def m(spec: dict) -> None:
        spec["http"][0]["match"] = [{"uri": {"prefix": prefix}}]
    return m


def _weights(w: int):
    def m(spec: dict) -> None:
        spec["http"][0]["route"][0]["weight"] = w
        spec["http"][0]["route"][1]["weight"] = 100 - w
    return m


def _retarget(host: str):
    def m(spec: dict) -> None:
        for r in spec["http"][0]["route"]:
            r["destination"]["host"] = host
    return m


def _service_port(number: int):
    def m(spec: dict) -> None:
        spec["ports"] = [{"number": number, "name": "grpc", "protocol": "GRPC"}]
    return m


def _gateway_hosts(hosts: list[str]):
    def m(spec: dict) -> None:
        spec["servers"][0]["hosts"] = hosts
    return m


def _redirected(spec: dict) -> None:
    """The server redirects cleartext to https: every host's virtual host requires TLS."""
    spec["servers"] = [dict(spec["servers"][0], tls={"httpsRedirect": True})]


def _second_server(spec: dict) -> None:
    """A second port on the Gateway: two route configurations (the VHDS union of several)."""
    spec["servers"] = [spec["servers"][0], {"port": {"number": 9090, "name": "grpc-b", "protocol": "GRPC"},
                                            "hosts": ["*"]}]


#: a Kubernetes Service with an EndpointSlice, and a VirtualService routing to it
KUBERNETES = parse_text("""
apiVersion: v1
kind: Service
metadata: {name: k8s-svc, namespace: default}
spec: {ports: [{name: grpc, port: 50051}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: k8s-svc-abc, namespace: default, labels: {kubernetes.io/service-name: k8s-svc}}
addressType: IPv4
ports: [{name: grpc, port: 9000}]
endpoints: [{addresses: [10.1.0.1]}, {addresses: [10.1.0.2], conditions: {ready: false}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: k8s-route, namespace: default}
spec:
  hosts: [k8s.example.com]
  gateways: [ingress]
  http: [{route: [{destination: {host: k8s-svc}}]}]
---
apiVersion: getambassador.io/v3alpha1
kind: Host
metadata: {name: em-host, namespace: default}
spec: {hostname: "*", requestPolicy: {insecure: {action: Route}}}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {name: em-grpc, namespace: default}
spec: {hostname: "*", grpc: true, prefix: /helloworld.Greeter/, rewrite: "", service: "k8s-svc:50051"}
---
apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {name: em-canary, namespace: default}
spec: {hostname: "*", grpc: true, prefix: /helloworld.Greeter/, rewrite: "", service: "svc-1.default:50051", weight: 10}
""", file="k8s.yaml")[0]


def _raw(mutate):
    """A mutation of the whole document (EndpointSlices and Services keep their payload outside ``spec``)."""
    def m(obj: ConfigObject) -> ConfigObject:
        raw = copy.deepcopy(dict(obj.raw))
        mutate(raw)
        spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
        return ConfigObject(ref=obj.ref, api_version=obj.api_version, spec=spec, labels=obj.labels,
                            annotations=obj.annotations, source=obj.source, raw=raw)
    return m


def _slice_address(raw: dict) -> None:
    raw["endpoints"][0]["addresses"] = ["10.1.0.9"]


def _slice_ready(raw: dict) -> None:
    raw["endpoints"][1]["conditions"] = {"ready": True}


def _k8s_port(raw: dict) -> None:
    raw["spec"]["ports"] = [{"name": "grpc", "port": 50052}]


def _mapping_weight(raw: dict) -> None:
    raw["spec"]["weight"] = 40


def _vs_hosts(hosts: list[str]):
    """VirtualService hosts a Gateway host edit may or may not intersect (wildcards, other names)."""
    def m(spec: dict) -> None:
        spec["hosts"] = hosts
    return m


def _mapping_lb(raw: dict) -> None:
    raw["spec"]["load_balancer"] = {"policy": "ring_hash", "header": "x-user"}


def _mapping_prefix(raw: dict) -> None:
    raw["spec"]["prefix"] = "/other.Service/"


#: an edit: (kind, index of the service, mutation); drawn at random
EDITS = st.one_of(
    st.tuples(st.just("ServiceEntry"), st.integers(0, N - 1), st.sampled_from(
        [_set_port(0, 41000), _set_port(3, 41001), _drop_endpoint, _service_port(50052), _service_port(50051)])),
    st.tuples(st.just("DestinationRule"), st.integers(0, N - 1), st.sampled_from(
        [_lb("RANDOM"), _lb("LEAST_REQUEST"), _subsets(("v1",)), _subsets(("v1", "v2", "v3"))])),
    st.tuples(st.just("VirtualService"), st.integers(0, N - 1), st.sampled_from(
        [_prefix("/changed.Service/"), _prefix("/"), _weights(50), _weights(100), _retarget("svc-0"),
         _retarget("unknown-host"), _vs_hosts(["*.example.com"]), _vs_hosts(["edited.example.com"]),
         _vs_hosts(["svc-1.example.com", "*"])])),
    st.tuples(st.just("Gateway"), st.just(-1), st.sampled_from(
        [_gateway_hosts(["svc-1.example.com", "svc-2.example.com"]), _gateway_hosts(["*"]), _second_server,
         _redirected, _gateway_hosts(["*", "svc-1.example.com"]), _gateway_hosts(["*.example.com"]),
         _gateway_hosts(["svc-2.example.com", "*.example.com", "edited.example.com"])])),
    st.tuples(st.just("delete"), st.integers(0, N - 1), st.sampled_from(["ServiceEntry", "VirtualService",
                                                                         "DestinationRule"])),
    st.tuples(st.just("restore"), st.integers(0, N - 1), st.just(None)),
    st.tuples(st.just("new"), st.integers(N, N + 3), st.just(None)),
    st.sampled_from([("kubernetes", "EndpointSlice", _raw(_slice_address)),
                     ("kubernetes", "EndpointSlice", _raw(_slice_ready)),
                     ("kubernetes", "Service", _raw(_k8s_port)),
                     ("kubernetes", "EndpointSlice", "delete"), ("kubernetes", "EndpointSlice", "restore"),
                     ("kubernetes", "Service", "delete"), ("kubernetes", "Service", "restore"),
                     ("kubernetes", "Mapping", _raw(_mapping_weight)), ("kubernetes", "Mapping", _raw(_mapping_lb)),
                     ("kubernetes", "Mapping", _raw(_mapping_prefix)), ("kubernetes", "Mapping", "delete"),
                     ("kubernetes", "Mapping", "restore"), ("kubernetes", "Host", "delete"),
                     ("kubernetes", "Host", "restore")]),
)


def snapshot_bytes(objects: list[ConfigObject], translation, cache: SnapshotCache | None = None,  # noqa: ANN001
                   generation: int = 1) -> dict:
    """Every resource's bytes for a gateway node and a proxyless node, plus the diagnostics.  With ``cache``
    (long-lived, as the server's), the snapshots come from its incremental path: patched wrappers and
    consistency checked since the previous snapshot; they must pass a full ``consistent()`` too."""
    out: dict = {"diagnostics": sorted(d.format() for d in translation.diagnostics)}

    async def build() -> None:
        c = cache if cache is not None else SnapshotCache()
        c.publish(translation, generation=generation)
        for node in (GATEWAY_NODE, PROXYLESS_NODE, EMISSARY_NODE, VHDS_NODE):
            snap = c.get(node)
            assert snap is not None, f"no consistent snapshot for {node}"
            assert snap.consistent(secrets=False) == []
            assert snap.missing_secrets() == Snapshot.build(snap.resources).missing_secrets()
            out[node] = {t: {n: (r.body, r.version) for n, r in rs.items()} for t, rs in snap.resources.items()}
            out[(node, "resolved")] = {
                (t, n): (r.body if (r := snap.lookup(t, n)) is not None else None)
                for t in ("type.googleapis.com/envoy.config.listener.v3.Listener",) for n in PROXYLESS_NAMES}
    loop.run_until_complete(build())
    return out


loop = asyncio.new_event_loop()


@settings(max_examples=int(os.environ.get("EQUIVALENCE_EXAMPLES", "40")), deadline=None, derandomize="EQUIVALENCE_EXAMPLES" not in os.environ, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(EDITS, min_size=1, max_size=12))
def test_incremental_snapshots_equal_full_builds(edits) -> None:  # noqa: ANN001
    original = {o.ref: o for o in config(N) + KUBERNETES}
    current = dict(original)
    previous = translate(list(current.values()))
    cache = SnapshotCache()
    snapshot_bytes(list(current.values()), previous, cache)
    for step, (kind, i, change) in enumerate(edits):
        if kind == "new":
            current.update({o.ref: o for o in service(i) if o.ref not in current})
        elif kind == "kubernetes":
            ref = next(r for r in original if r.kind == i)
            if change == "delete":
                current.pop(ref, None)
            elif change == "restore":
                current[ref] = original[ref]
            elif ref in current:
                current[ref] = change(current[ref])
        elif kind == "delete":
            current = {r: o for r, o in current.items() if not (r.kind == change and r.name == f"svc-{i}")}
        elif kind == "restore":
            current.update({r: o for r, o in original.items() if r.name == f"svc-{i}" and r not in current})
        else:
            name = "ingress" if kind == "Gateway" else f"svc-{i}"
            ref = next((r for r in current if r.kind == kind and r.name == name), None)
            if ref is None:
                continue
            current[ref] = edited(current[ref], change)
        objects = list(current.values())
        incremental = translate(objects, accepted=previous.accepted, previous=previous)
        full = translate(objects, accepted=previous.accepted)
        expected = snapshot_bytes(objects, full)
        assert snapshot_bytes(objects, incremental) == expected, (kind, i)
        assert snapshot_bytes(objects, incremental, cache, generation=step + 2) == expected, ("cache", kind, i)
        previous = incremental


def test_full_builds_sorted_once_equal_builds_sorted_by_insertion(monkeypatch) -> None:  # noqa: ANN001
    """Over ``_RESORT`` changed objects (a full build) the engine sorts its object and cluster lists once
    instead of by insertion: the same snapshots either way, and incremental steps on that path still equal
    full builds."""
    from translators import engine
    objects = config(N) + KUBERNETES
    monkeypatch.setattr(engine, "_RESORT", 10 ** 9)
    by_insertion = snapshot_bytes(objects, translate(objects))
    monkeypatch.setattr(engine, "_RESORT", 0)
    assert snapshot_bytes(objects, translate(objects)) == by_insertion
    test_incremental_snapshots_equal_full_builds()
