"""Kubernetes end to end: ``xds-server serve --kubernetes`` fed by a scripted API server (real list and
watch JSON over HTTP to the official client), a real Envoy serving a Gateway API Gateway, and real
gRPC backends.  Status is written back with server-side apply by the Lease holder.
"""
from __future__ import annotations

import contextlib
import time
from collections import Counter

import grpc
import pytest

from tests.fake_apiserver import FakeApiServer, Script, event, obj
from tests.grpc_calls import say_hello
from tests.harness import Backends, ControlPlane, Envoy, free_port, http_get, wait_until

pytestmark = pytest.mark.e2e

GWAPI = "gateway.networking.k8s.io/v1"
GROUPS = {"gateway.networking.k8s.io": [("v1", ["gateways", "grpcroutes", "gatewayclasses"]),
                                        ("v1beta1", ["referencegrants"])],
          "discovery.k8s.io": [("v1", ["endpointslices"])],
          "getambassador.io": [("v3alpha1", ["mappings", "hosts", "listeners", "tlscontexts", "modules"])]}
EMISSARY = "getambassador.io/v3alpha1"


def service(name: str, ns: str, rv: str) -> dict:
    return obj("Service", name, namespace=ns, rv=rv, api_version="v1", spec={"ports": [{"name": "grpc", "port": 50051}]})


def endpoint_slice(name: str, service_name: str, ns: str, port: int, addresses: list[str], rv: str) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": "grpc", "port": port}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}, "zone": "zone-a"} for a in addresses]}


def grpc_route(name: str, ns: str, rv: str, rules: list[dict]) -> dict:
    return obj("GRPCRoute", name, namespace=ns, rv=rv, api_version=GWAPI,
               spec={"parentRefs": [{"name": "gw", "namespace": "edge"}], "rules": rules})


def method(service: str, name: str, headers: dict | None = None) -> dict:
    m = {"method": {"service": service, "method": name}}
    if headers:
        m["headers"] = [{"name": k, "value": v} for k, v in headers.items()]
    return m


GRANT = obj("ReferenceGrant", "allow-apps", namespace="backend", rv="40", api_version="gateway.networking.k8s.io/v1beta1",
            spec={"from": [{"group": "gateway.networking.k8s.io", "kind": "GRPCRoute", "namespace": "apps"}],
                  "to": [{"group": "", "kind": "Service"}]})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("k8s")
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(Backends(replica="a", workdir=workdir, route_guide=False)).wait_ready()
        b = stack.enter_context(Backends(replica="b", workdir=workdir, route_guide=False)).wait_ready()
        gateway_port = free_port()
        emissary_port = free_port()
        scripts = {
            "gatewayclasses": Script(lists=[("1", [obj("GatewayClass", "xds-server", namespace="", rv="1", api_version=GWAPI,
                                                       spec={"controllerName": "xds-server.io/gateway-controller"})])]),
            "gateways": Script(lists=[("2", [obj("Gateway", "gw", namespace="edge", rv="2", api_version=GWAPI, spec={
                "gatewayClassName": "xds-server",
                "listeners": [{"name": "grpc", "port": gateway_port, "protocol": "HTTP",
                               "allowedRoutes": {"namespaces": {"from": "All"}}}]})])]),
            "services": Script(lists=[("3", [service("api-v1", "backend", "3"), service("api-v2", "backend", "3"),
                                             service("scaled", "backend", "3")])]),
            "endpointslices": Script(lists=[("4", [
                endpoint_slice("api-v1-x", "api-v1", "backend", a.greeter_port, ["127.0.0.1"], "4"),
                endpoint_slice("api-v2-x", "api-v2", "backend", b.greeter_port, ["127.0.0.1"], "4"),
                endpoint_slice("scaled-x", "scaled", "backend", a.greeter_port, ["127.0.0.1"], "4")])]),
            "grpcroutes": Script(lists=[("5", [
                grpc_route("split", "backend", "5", [
                    {"matches": [method("helloworld.Greeter", "SayHello", {"x-scale": "yes"})],
                     "backendRefs": [{"name": "scaled", "port": 50051}]},
                    {"matches": [method("helloworld.Greeter", "SayHello")],
                     "backendRefs": [{"name": "api-v1", "port": 50051, "weight": 80},
                                     {"name": "api-v2", "port": 50051, "weight": 20}]}]),
                grpc_route("cross", "apps", "5", [
                    {"matches": [method("helloworld.Greeter", "SayHello", {"x-cross": "yes"})],
                     "backendRefs": [{"name": "api-v2", "namespace": "backend", "port": 50051}]}])])]),
            "referencegrants": Script(lists=[("6", [])]),
            "secrets": Script(lists=[("7", [])]),
            "namespaces": Script(lists=[("7", [])]),
            "configmaps": Script(lists=[("7", [])]),
            # Emissary, watched alongside: a Listener, a Host and the gRPC guide's Mapping, plus an invalid one
            "listeners": Script(lists=[("8", [obj("Listener", "http", namespace="ambassador", rv="8", api_version=EMISSARY,
                                                  spec={"port": emissary_port, "protocol": "HTTP", "securityModel": "XFP",
                                                        "hostBinding": {"namespace": {"from": "ALL"}}})])]),
            "hosts": Script(lists=[("9", [obj("Host", "example-host", namespace="backend", rv="9", api_version=EMISSARY,
                                              spec={"hostname": "*",
                                                    "requestPolicy": {"insecure": {"action": "Route"}}})])]),
            "mappings": Script(lists=[("10", [
                obj("Mapping", "grpc-py", namespace="backend", rv="10", api_version=EMISSARY,
                    spec={"hostname": "*", "grpc": True, "prefix": "/helloworld.Greeter/",
                          "rewrite": "/helloworld.Greeter/", "service": "api-v2:50051"}),
                obj("Mapping", "broken", namespace="backend", rv="10", api_version=EMISSARY,
                    spec={"hostname": "*", "prefix": "/broken/", "service": "api-v1",
                          "load_balancer": {"policy": "rr"}})])]),
            "tlscontexts": Script(lists=[("11", [])]),
            "modules": Script(lists=[("12", [])]),
        }
        api = stack.enter_context(FakeApiServer(groups=GROUPS, scripts=scripts))
        kubeconfig = api.kubeconfig(workdir / "kubeconfig")
        cp = stack.enter_context(ControlPlane(workdir=workdir, extra_args=[
            "--kubernetes", "--kubeconfig", str(kubeconfig), "--lease-namespace", "default"])).wait_ready()
        envoy = stack.enter_context(Envoy(control_plane=cp, workdir=workdir, labels={}, namespace="edge", gateway="gw"))
        envoy.wait_ready()
        channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{gateway_port}",
                                                            options=[("grpc.use_local_subchannel_pool", 1)]))
        wait_until(lambda: say_hello(channel, timeout=2)[1] in ("a", "b"), timeout=30, what="GRPCRoute routing")
        yield {"api": api, "cp": cp, "envoy": envoy, "channel": channel, "a": a, "workdir": workdir,
               "emissary_port": emissary_port, "stack": stack}


def test_grpc_route_method_match_with_80_20_weights(cluster) -> None:
    counts = Counter(say_hello(cluster["channel"])[1] for _ in range(500))
    assert abs(counts["a"] - 400) <= 45 and counts["a"] + counts["b"] == 500, counts


def test_istio_crds_missing_is_fine_and_ready(cluster) -> None:
    assert http_get(f"{cluster['cp'].admin_url}/readyz")[0] == 200
    assert not [p for p, _ in cluster["api"].requests if "/networking.istio.io/" in p and "virtualservices" in p]


def _route_conditions(api: FakeApiServer, name: str) -> dict[str, dict]:
    patches = [b for p, _, _, b in api.status_patches if p.endswith(f"/grpcroutes/{name}/status")]
    if not patches:
        return {}
    return {c["type"]: c for c in patches[-1]["status"]["parents"][0]["conditions"]}


def test_cross_namespace_backend_refused_without_grant_then_accepted(cluster) -> None:
    api, channel = cluster["api"], cluster["channel"]
    with pytest.raises(grpc.RpcError) as exc:
        say_hello(channel, metadata=[("x-cross", "yes")])
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    wait_until(lambda: _route_conditions(api, "cross").get("ResolvedRefs", {}).get("reason") == "RefNotPermitted",
               timeout=10, what="RefNotPermitted status")
    [(path, ctype, query, body)] = [p for p in api.status_patches if p[0].endswith("/grpcroutes/cross/status")][-1:]
    assert ctype == "application/apply-patch+yaml" and query == {"fieldManager": "xds-server", "force": "true"}
    assert body["status"]["parents"][0]["controllerName"] == "xds-server.io/gateway-controller"
    assert "lastTransitionTime" in body["status"]["parents"][0]["conditions"][0]

    api.push("referencegrants", event("ADDED", GRANT))
    wait_until(lambda: say_hello(channel, metadata=[("x-cross", "yes")], timeout=2)[1] == "b", timeout=10,
               what="the grant to take effect")
    wait_until(lambda: _route_conditions(api, "cross").get("ResolvedRefs", {}).get("status") == "True",
               timeout=10, what="ResolvedRefs=True status")
    gw = [b for p, _, _, b in api.status_patches if p.endswith("/gateways/gw/status")]
    assert gw and gw[-1]["status"]["conditions"][0]["type"] == "Accepted"
    # status is written only when it changes
    before = len(api.status_patches)
    api.push("services", event("MODIFIED", service("api-v1", "backend", "50")))
    time.sleep(1.0)
    assert len([p for p in api.status_patches[before:] if "/grpcroutes/" in p[0]]) == 0


def test_endpoint_slice_scale_up_used_within_2s(cluster) -> None:
    api, channel, workdir = cluster["api"], cluster["channel"], cluster["workdir"]
    with Backends(replica="c", workdir=workdir, route_guide=False, host="127.0.0.2",
                  greeter_port=cluster["a"].greeter_port) as c:
        c.wait_ready()
        assert {say_hello(channel, metadata=[("x-scale", "yes")])[1] for _ in range(10)} == {"a"}
        started = time.monotonic()
        api.push("endpointslices", event("MODIFIED", endpoint_slice("scaled-x", "scaled", "backend",
                                                                    cluster["a"].greeter_port,
                                                                    ["127.0.0.1", "127.0.0.2"], "60")))
        wait_until(lambda: say_hello(channel, metadata=[("x-scale", "yes")], timeout=2)[1] == "c", timeout=5,
                   interval=0.01, what="the new endpoint")
        assert time.monotonic() - started < 2.0


def test_emissary_mapping_from_the_api_server_routes_and_invalid_mapping_gets_status(cluster) -> None:
    """``--kubernetes`` also watches getambassador.io: an Envoy bootstrapped for Emissary gets the Mapping's
    route (to api-v2, replica b), and the invalid Mapping gets Emissary's status shape (Inactive, with why)."""
    envoy = cluster["stack"].enter_context(Envoy(control_plane=cluster["cp"], workdir=cluster["workdir"], labels={
        "xds-server.io/dialect": "emissary", "xds-server.io/ambassador-id": "default"}, namespace="backend"))
    envoy.wait_ready()
    with grpc.insecure_channel(f"127.0.0.1:{cluster['emissary_port']}") as channel:
        wait_until(lambda: say_hello(channel, timeout=2)[1] == "b", timeout=30, what="Emissary Mapping routing")
        assert {say_hello(channel, timeout=2)[1] for _ in range(10)} == {"b"}
    api = cluster["api"]
    wait_until(lambda: any(p.endswith("/mappings/broken/status") for p, _, _, _ in api.status_patches), timeout=15,
               what="status of the invalid Mapping")
    [body] = [b for p, _, _, b in api.status_patches if p.endswith("/mappings/broken/status")][-1:]
    assert body["status"]["state"] == "Inactive"
    assert "spec.load_balancer.policy" in body["status"]["reason"] and "rr" in body["status"]["reason"]
