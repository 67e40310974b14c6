"""Synthetic Istio config: N services, each with a ServiceEntry (10 endpoints), a DestinationRule with two
subsets and a VirtualService on one shared gateway."""
from __future__ import annotations

from translators.objects import ConfigObject, ObjectRef

GROUP = "networking.istio.io"


def _obj(kind: str, name: str, spec: dict) -> ConfigObject:
    return ConfigObject(ref=ObjectRef(kind, "default", name, GROUP), api_version=f"{GROUP}/v1", spec=spec,
                        source="bench")


def gateway(port: int = 8080) -> ConfigObject:
    return _obj("Gateway", "ingress", {"selector": {"istio": "ingressgateway"},
                                       "servers": [{"port": {"number": port, "name": "grpc", "protocol": "GRPC"},
                                                    "hosts": ["*"]}]})


def virtual_service(i: int, *, prefix: str = "") -> ConfigObject:
    return _obj("VirtualService", f"svc-{i}", {
        "hosts": [f"svc-{i}.example.com"], "gateways": ["ingress"],
        "http": [{"match": [{"uri": {"prefix": prefix or f"/svc{i}.Service/"}}],
                  "route": [{"destination": {"host": f"svc-{i}", "subset": "v1"}, "weight": 90},
                            {"destination": {"host": f"svc-{i}", "subset": "v2"}, "weight": 10}]}]})


def service(i: int) -> list[ConfigObject]:
    host = f"svc-{i}.default.svc.cluster.local"
    endpoints = [{"address": f"127.0.{(i // 250) % 250}.{e + 1}", "labels": {"version": "v1" if e % 2 == 0 else "v2"}}
                 for e in range(10)]
    return [
        _obj("ServiceEntry", f"svc-{i}", {"hosts": [host], "ports": [{"number": 50051, "name": "grpc", "protocol": "GRPC"}],
                                          "resolution": "STATIC", "endpoints": endpoints}),
        _obj("DestinationRule", f"svc-{i}", {"host": f"svc-{i}", "subsets": [
            {"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}]}),
        virtual_service(i),
    ]


def kubernetes_service(i: int) -> list[ConfigObject]:
    """A core Service with an EndpointSlice of 10 ready endpoints (``kubernetes://`` flavour of :func:`service`)."""
    name = f"k8s-{i}"
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
           "spec": {"ports": [{"name": "grpc", "port": 50051, "appProtocol": "grpc"}]}}
    sl = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": f"{name}-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
          "addressType": "IPv4", "ports": [{"name": "grpc", "port": 9000}],
          "endpoints": [{"addresses": [f"10.{(i // 250) % 250}.{i % 250}.{e + 1}"], "conditions": {"ready": True}}
                        for e in range(10)]}
    return [ConfigObject(ref=ObjectRef("Service", "default", name, ""), api_version="v1", spec=svc["spec"],
                         source="bench", raw=svc),
            ConfigObject(ref=ObjectRef("EndpointSlice", "default", f"{name}-abc", "discovery.k8s.io"),
                         api_version="discovery.k8s.io/v1", spec={}, labels={"kubernetes.io/service-name": name},
                         source="bench", raw=sl)]


def config(n: int, *, kubernetes: int = 0) -> list[ConfigObject]:
    """``n`` Istio services on one Gateway, plus ``kubernetes`` core Services with EndpointSlices."""
    out = [gateway()]
    for i in range(n):
        out.extend(service(i))
    for i in range(kubernetes):
        out.extend(kubernetes_service(i))
    return out


def yaml_text(n: int, *, gateway_port: int = 8080) -> str:
    import yaml
    docs = []
    for obj in [gateway(gateway_port)] + [o for i in range(n) for o in service(i)]:
        docs.append({"apiVersion": obj.api_version, "kind": obj.kind,
                     "metadata": {"name": obj.name, "namespace": obj.namespace}, "spec": obj.spec})
    return yaml.safe_dump_all(docs, sort_keys=False)
