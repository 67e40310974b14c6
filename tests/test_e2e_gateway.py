"""End to end: the control plane, a real Envoy and real gRPC backends on 127.0.0.1.

Every assertion is on a call that went through Envoy, and on which backend
replica answered it (the ``x-replica`` response header).
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import grpc
import pytest

from tests.gateway_env import GatewayEnv, gateway_env
from tests.grpc_calls import (call_unknown, get_feature, list_features, record_route, route_chat, say_hello)
from tests.harness import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    with gateway_env(tmp_path_factory.mktemp("gateway")) as e:
        yield e


def test_routes_by_grpc_service_prefix(env: GatewayEnv) -> None:
    message, replica = say_hello(env.channel, name="world")
    assert (message, replica) == ("Hello world from a", "a")  # greeter-default -> subset v1 = replica a
    name, replica = get_feature(env.channel)
    assert replica in {"a", "b"} and name


def test_exact_method_and_header_match(env: GatewayEnv) -> None:
    assert say_hello(env.channel, metadata=[("x-route", "to-b")])[1] == "b"
    assert say_hello(env.channel, metadata=[("x-route", "something-else")])[1] == "a"


def test_weighted_split_80_20_over_500_calls(env: GatewayEnv) -> None:
    counts = Counter(say_hello(env.channel, metadata=[("x-split", "80-20")])[1] for _ in range(500))
    assert set(counts) <= {"a", "b"}
    # binomial(500, 0.8): sd ~ 9 calls; +-45 is five sigma
    assert abs(counts["a"] - 400) <= 45, counts


@pytest.mark.parametrize("authority", ["pinned.example.com", "pinned.example.com:8443", "pinned.example.com:80"])
def test_authority_with_and_without_port_routes_the_same(env: GatewayEnv, authority: str) -> None:
    with env.open_channel(authority=authority) as channel:
        assert say_hello(channel)[1] == "b"


def test_unknown_service_gets_unimplemented(env: GatewayEnv) -> None:
    assert call_unknown(env.channel) == grpc.StatusCode.UNIMPLEMENTED


def test_all_four_rpc_kinds(env: GatewayEnv) -> None:
    name, r1 = get_feature(env.channel)
    features, r2 = list_features(env.channel)
    count, r3 = record_route(env.channel, points=7)
    notes, r4 = route_chat(env.channel, notes=3)
    assert name and len(features) >= 2 and count == 7 and len(notes) >= 3
    assert {r1, r2, r3, r4} <= {"a", "b"}


def test_route_guide_replicas_both_serve(env: GatewayEnv) -> None:
    seen = Counter(get_feature(env.channel)[1] for _ in range(20))
    assert set(seen) == {"a", "b"}, seen  # ROUND_ROBIN across both replicas


def test_route_timeout_fires(env: GatewayEnv) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as exc:
        say_hello(env.channel, metadata=[("x-timeout-test", "1"), ("x-delay-ms", "3000")], timeout=10)
    elapsed = time.monotonic() - started
    assert exc.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE), exc.value
    assert 0.4 <= elapsed < 2.0, elapsed


def test_retry_on_unavailable_hides_a_failing_first_attempt(env: GatewayEnv) -> None:
    message, replica = say_hello(env.channel, name="retry", metadata=[("x-fail-first", f"key-{time.time_ns()}")])
    assert message == "Hello retry from a"


def test_server_stream_outlives_envoy_default_15s_timeout(env: GatewayEnv) -> None:
    started = time.monotonic()
    features, _ = list_features(env.channel, metadata=[("x-stream-interval-ms", "1000"), ("x-stream-count", "17")],
                                timeout=40)
    assert len(features) == 17
    assert time.monotonic() - started >= 15.5


def test_envoy_accepted_every_resource(env: GatewayEnv) -> None:
    assert env.control_plane.debug("nacks")["nacks"] == []
    [client] = env.control_plane.debug("clients")["clients"]
    for type_name in ("CDS", "EDS", "LDS", "RDS"):
        state = client["types"][type_name]
        assert state["acked"] == state["sent"] and state["nacked"] == "", (type_name, state)


# --------------------------------------------------------------------------- live changes


@pytest.fixture
def fresh_env(tmp_path: Path):
    with gateway_env(tmp_path) as e:
        yield e


def test_file_edit_reroutes_live_traffic_without_restart(fresh_env: GatewayEnv) -> None:
    env = fresh_env
    envoy_pid = env.envoy.proc.pid
    assert say_hello(env.channel)[1] == "a"
    env.write_routes(greeter_subset="v2")
    wait_until(lambda: say_hello(env.channel)[1] == "b", timeout=10, what="re-routing to v2")
    assert env.envoy.proc.pid == envoy_pid and env.envoy.proc.poll() is None
    assert env.envoy.stats("server.hot_restart_epoch").get("server.hot_restart_epoch", 0) == 0


def test_broken_files_are_reported_and_previous_routing_keeps_working(fresh_env: GatewayEnv) -> None:
    env = fresh_env
    before = env.control_plane.translations()

    # 1. not YAML at all: the file's previous objects keep serving
    env.write("routes.yaml", "http: [unclosed\n  - {")
    wait_until(lambda: any(d["file"].endswith("routes.yaml") and "invalid YAML" in d["message"]
                           for d in env.control_plane.debug("diagnostics")["diagnostics"]),
               timeout=10, what="the YAML error to be reported")
    assert say_hello(env.channel)[1] == "a"
    assert get_feature(env.channel)[0]

    # 2. valid YAML, invalid object (a port the service does not have): last accepted version keeps serving
    env.write_routes(greeter_prefix="/helloworld.Greeter/")
    bad = (env.config_dir / "routes.yaml").read_text().replace("subset: v1}}", "subset: v2, port: {number: 9999}}}", 1)
    env.write("routes.yaml", bad)
    wait_until(lambda: any("has no port 9999" in d["message"] and d["object"] == "VirtualService/default/grpc-routes"
                           for d in env.control_plane.debug("diagnostics")["diagnostics"]),
               timeout=10, what="the bad port to be reported")
    assert say_hello(env.channel)[1] == "a"

    # 3. an unknown destination host: a warning names it; every other route keeps working
    env.write("extra.yaml", """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: typo, namespace: default}
spec:
  hosts: [typo.example.com]
  gateways: [grpc-gateway]
  http: [{route: [{destination: {host: greter, port: {number: 50051}}}]}]
""")
    wait_until(lambda: any("greter.default.svc.cluster.local" in d["message"]
                           for d in env.control_plane.debug("diagnostics")["diagnostics"]),
               timeout=10, what="the unknown host to be reported")
    with env.open_channel(authority="typo.example.com") as channel:
        with pytest.raises(grpc.RpcError) as exc:
            say_hello(channel)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert say_hello(env.channel)[1] == "a"
    assert env.control_plane.translations() > before
    assert env.control_plane.debug("nacks")["nacks"] == []
