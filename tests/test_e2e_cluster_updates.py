"""End to end: a DestinationRule edit reaches a connected Envoy at once, with traffic flowing.

Envoy keeps an updated EDS cluster warming until it receives a
``ClusterLoadAssignment`` for it, so every CDS push that changes an EDS
cluster must be followed by EDS for it, even when its endpoints did not
change.  Without that, the change waits for Envoy's 15 s initial-fetch
timeout, and edits closer together than that never land.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests import e2e_config
from tests.gateway_env import GatewayEnv, gateway_env
from tests.harness import http_get, wait_until
from tests.traffic import Traffic

pytestmark = pytest.mark.e2e

CLUSTER = "outbound|50052||route-guide.default.svc.cluster.local"


@pytest.fixture(scope="module", params=["delta", "sotw"])
def env(request, tmp_path_factory: pytest.TempPathFactory):
    """Both ADS flavours: Delta (the default bootstrap) and SotW."""
    with gateway_env(tmp_path_factory.mktemp(f"cluster-updates-{request.param}"), ads=request.param) as e:
        assert e.control_plane.debug("clients")["clients"][0]["mode"] == request.param
        yield e


def set_lb(env: GatewayEnv, policy: str) -> None:
    text = e2e_config.render(e2e_config.SERVICES, a_greeter=env.a.greeter_port, b_greeter=env.b.greeter_port,
                             a_route_guide=env.a.route_guide_port, b_route_guide=env.b.route_guide_port)
    env.write("services.yaml", text.replace("simple: ROUND_ROBIN", f"simple: {policy}"))


def clusters(env: GatewayEnv, resource: str) -> dict[str, dict]:
    body = json.loads(http_get(f"{env.envoy.admin_url}/config_dump?resource={resource}")[1] or "{}")
    return {c["cluster"]["name"]: c["cluster"] for c in body.get("configs", [])}


def active_lb(env: GatewayEnv) -> str:
    return clusters(env, "dynamic_active_clusters")[CLUSTER].get("lb_policy", "ROUND_ROBIN")


def wait_for_lb(env: GatewayEnv, policy: str, *, timeout: float) -> float:
    started = time.monotonic()
    wait_until(lambda: active_lb(env) == policy and not clusters(env, "dynamic_warming_clusters"),
               timeout=timeout, interval=0.05, what=f"lb_policy {policy} active with nothing warming")
    return time.monotonic() - started


def test_destination_rule_edit_is_active_within_2s_with_traffic_flowing(env: GatewayEnv) -> None:
    assert active_lb(env) == "ROUND_ROBIN"
    with Traffic(env) as traffic:
        time.sleep(0.3)
        set_lb(env, "RANDOM")
        wait_for_lb(env, "RANDOM", timeout=2.0)
        time.sleep(0.3)
    assert traffic.failures == [] and traffic.ok > 5, traffic.failures[:3]
    assert env.control_plane.debug("nacks")["nacks"] == []


def test_five_edits_half_a_second_apart_the_last_one_wins_within_2s(env: GatewayEnv) -> None:
    sequence = ["LEAST_REQUEST", "RANDOM", "ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"]
    if active_lb(env) == "RANDOM":
        sequence = sequence[1:] + ["LEAST_REQUEST"]
    with Traffic(env) as traffic:
        for policy in sequence:
            set_lb(env, policy)
            time.sleep(0.5)
        wait_for_lb(env, sequence[-1], timeout=2.0)
    assert traffic.failures == [] and traffic.ok > 5, traffic.failures[:3]
    [client] = env.control_plane.debug("clients")["clients"]
    for type_name in ("CDS", "EDS"):
        state = client["types"][type_name]
        assert state["acked"] == state["sent"] and state["nacked"] == "", (type_name, state)
