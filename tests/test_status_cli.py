"""``xds-server status`` exit codes against a fake admin server serving /debug/syncz."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from tests.harness import free_port
from xds_server.cli import main, status_rows


def client(node: str = "gw-1", **types: dict) -> dict:
    return {"node": node, "flavour": "envoy", "namespace": "default", "mode": "delta", "types": types}


SYNCED = {"status": "SYNCED", "sent": "a", "acked": "a"}
NACKED = {"status": "NACKED", "sent": "b", "acked": "a", "nacked": "b",
          "message": "Only unique values for domains are permitted",
          "sources": [{"resource": "http.8080", "file": "/cfg/dup.yaml", "kind": "VirtualService",
                       "namespace": "default", "name": "dup"}]}


def stale(seconds: float) -> dict:
    return {"status": "STALE", "sent": "b", "acked": "a", "stale_seconds": seconds}


@pytest.fixture
def admin():
    """A fake admin server; set ``holder["body"]`` to what /debug/syncz returns."""
    holder: dict = {"body": {"clients": []}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            data = json.dumps(holder["body"]).encode()
            self.send_response(200 if self.path == "/debug/syncz" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", holder
    finally:
        server.shutdown()
        server.server_close()


CASES = {
    "all synced": ([client(CDS=SYNCED, LDS=SYNCED, EDS=SYNCED, RDS=SYNCED)], 0),
    "no clients": ([], 0),
    "nacked": ([client(CDS=SYNCED, LDS=SYNCED, EDS=SYNCED, RDS=NACKED)], 1),
    "stale beyond threshold": ([client(CDS=stale(30.0), LDS=SYNCED)], 1),
    "stale within threshold": ([client(CDS=stale(3.0), LDS=SYNCED)], 0),
    "one of two clients nacked": ([client("a", CDS=SYNCED), client("b", RDS=NACKED)], 1),
}


@pytest.mark.parametrize("clients,code", CASES.values(), ids=CASES.keys())
def test_exit_codes(admin, capsys, clients, code) -> None:
    address, holder = admin
    holder["body"] = {"clients": clients}
    assert main(["status", "--admin-address", address, "--stale-after", "10"]) == code
    out = capsys.readouterr().out
    if clients:
        assert out.splitlines()[0].split() == ["NODE", "FLAVOUR", "NAMESPACE", "CDS", "LDS", "EDS", "RDS", "VHDS", "SDS"]


def test_nacked_row_names_the_message_and_the_source(admin, capsys) -> None:
    address, holder = admin
    holder["body"] = {"clients": [client(CDS=SYNCED, LDS=SYNCED, EDS=SYNCED, RDS=NACKED)]}
    assert main(["status", "--admin-address", address]) == 1
    out = capsys.readouterr().out
    row = out.splitlines()[1].split()
    assert row == ["gw-1", "envoy", "default", "SYNCED", "SYNCED", "SYNCED", "NACKED", "-", "-"]
    assert "Only unique values for domains are permitted" in out
    assert "VirtualService/default/dup (/cfg/dup.yaml)" in out


def test_unreachable_is_exit_2(capsys) -> None:
    assert main(["status", "--admin-address", f"127.0.0.1:{free_port()}", "--timeout", "1"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_stale_threshold_is_configurable() -> None:
    syncz = {"clients": [client(CDS=stale(12.0))]}
    assert status_rows(syncz, stale_after=10)[2] is True
    assert status_rows(syncz, stale_after=20)[2] is False


def test_nacked_objects_get_a_condition_istio_and_emissary_recognise() -> None:
    """Kubernetes mode: an object behind a resource an Envoy rejects gets it on its status (merged with what
    the translation wrote); Gateway API objects keep only the spec's conditions."""
    from k8s_watch.status import StatusWriter
    from translators.objects import ObjectRef

    class Election:
        is_leader = False
    writer = StatusWriter(api=None, election=Election(), versions={})
    vs = ObjectRef("VirtualService", "default", "regex", "networking.istio.io")
    mapping = ObjectRef("Mapping", "default", "m", "getambassador.io")
    route = ObjectRef("HTTPRoute", "default", "r", "gateway.networking.k8s.io")
    writer.set_nacks({vs: "RE2 program size of 30 > 8", mapping: "bad", route: "bad"})
    merged = writer._merged({route: {"parents": []}})
    assert merged[vs]["conditions"][0]["reason"] == "EnvoyRejected"
    assert "RE2 program size" in merged[vs]["validationMessages"][0]["message"]
    assert merged[mapping]["state"] == "Inactive"
    assert merged[route] == {"parents": []}
    gw = ObjectRef("Gateway", "default", "gw", "gateway.networking.k8s.io")
    writer.set_nacks({gw: "bad listener", route: "bad route"})
    merged = writer._merged({gw: {"conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed"}]},
                             route: {"parents": [{"parentRef": {"name": "gw"}, "conditions": []}]}})
    assert merged[gw]["conditions"] == [{"type": "Programmed", "status": "False", "reason": "Invalid",
                                         "message": "Envoy rejected the config built from this object: bad listener"}]
    assert merged[route]["parents"][0]["conditions"][0]["type"] == "xds-server.io/EnvoyRejected"
    writer.set_nacks({})
    assert writer._merged({}) == {}
