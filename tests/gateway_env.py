"""A complete gateway environment for e2e tests: two backend replicas, the control plane on a
config directory the test owns, and a real Envoy bootstrapped by ``xds-server bootstrap envoy``."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import grpc

from tests import e2e_config
from tests.grpc_calls import say_hello
from tests.harness import Backends, ControlPlane, Envoy, free_port, wait_until


class GatewayEnv:
    def __init__(self, workdir: Path, *, ads: str | None = None) -> None:
        self.ads = ads
        self.workdir = workdir
        self.config_dir = workdir / "config"
        self.config_dir.mkdir()
        self.gateway_port = free_port()
        self._stack = contextlib.ExitStack()

    def start(self) -> "GatewayEnv":
        try:
            self.a = self._stack.enter_context(Backends(replica="a", workdir=self.workdir))
            self.b = self._stack.enter_context(Backends(replica="b", workdir=self.workdir))
            self.a.wait_ready()
            self.b.wait_ready()
            self.write("gateway.yaml", e2e_config.render(e2e_config.GATEWAY, gateway_port=self.gateway_port))
            self.write("services.yaml", e2e_config.render(
                e2e_config.SERVICES, a_greeter=self.a.greeter_port, b_greeter=self.b.greeter_port,
                a_route_guide=self.a.route_guide_port, b_route_guide=self.b.route_guide_port))
            self.write_routes()
            self.control_plane = self._stack.enter_context(
                ControlPlane(config_dirs=[self.config_dir], workdir=self.workdir)).wait_ready()
            self.envoy = self._stack.enter_context(Envoy(control_plane=self.control_plane, workdir=self.workdir,
                                                         ads=self.ads))
            self.envoy.wait_ready()
            self.channel = self._stack.enter_context(self.open_channel())
            wait_until(self._routing_works, timeout=20, what="a call through Envoy")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stack.close()

    def write(self, name: str, text: str) -> Path:
        path = self.config_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.rename(path)  # atomic, like editors and kubectl-style tools do
        return path

    def write_routes(self, *, greeter_prefix: str = "/helloworld.Greeter/", greeter_subset: str = "v1") -> Path:
        return self.write("routes.yaml", e2e_config.render(e2e_config.ROUTES, greeter_prefix=greeter_prefix,
                                                           greeter_subset=greeter_subset))

    def open_channel(self, *, authority: str | None = None) -> grpc.Channel:
        options = [("grpc.use_local_subchannel_pool", 1)]
        if authority:
            options.append(("grpc.default_authority", authority))
        return grpc.insecure_channel(f"127.0.0.1:{self.gateway_port}", options=options)

    def _routing_works(self) -> bool:
        say_hello(self.channel, name="probe", timeout=2)
        return True

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(self.workdir.glob("*.log")))


@contextlib.contextmanager
def gateway_env(workdir: Path, *, ads: str | None = None) -> Iterator[GatewayEnv]:
    """``ads``: ``delta`` or ``sotw`` for the Envoy (default: ``$XDS_TEST_ADS`` or delta)."""
    env = GatewayEnv(workdir, ads=ads).start()
    try:
        yield env
    finally:
        env.stop()
