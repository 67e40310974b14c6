"""Values Envoy would reject never pass ``validate``: every field of the Istio dialect is type- and
range-checked at parse time, and a bad value is an error (or, where Envoy would accept the config
but it cannot work, a warning) naming the exact field path; never an exception, never Envoy's job.

The table below is (what, objects, field path, severity); ``None`` severity means "no diagnostic
at that path" (the value is fine).  Every case also checks that translation did not raise and that
no ``internal`` diagnostic (an exception caught by the dialect) was produced.
"""
from __future__ import annotations

import copy
import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import re2
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from translators.diagnostics import Severity
from translators import fields
from translators.node import NodeInfo
from translators.pipeline import translate
from translators.render import render
from xds_server.sources.documents import parse_text

ENVOY = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "envoy"
NODE = NodeInfo.of(labels={"istio": "ingressgateway"})
DELETE = object()


def _cert(key, cn: str = "svc.example.com") -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()) \
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key(key, password: bytes | None = None) -> str:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
SMALL_RSA = rsa.generate_private_key(65537, 1024)
CERT, KEY_PEM = _cert(KEY), _key(KEY)
SENTINEL_KEY = _key(OTHER_KEY)

BASE: dict[str, dict[str, Any]] = {
    "ServiceEntry": {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"hosts": ["svc.example.com"], "resolution": "STATIC",
                 "ports": [{"number": 50051, "name": "grpc", "protocol": "GRPC"}],
                 "endpoints": [{"address": "10.0.0.1", "ports": {"grpc": 50051}}, {"address": "10.0.0.2"}]}},
    "Gateway": {
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "default"},
        "spec": {"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]},
                             {"port": {"number": 8443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"],
                              "tls": {"mode": "SIMPLE", "credentialName": "gw-cert",
                                      "cipherSuites": ["ECDHE-ECDSA-AES128-GCM-SHA256"]}}]}},
    "VirtualService": {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": "default"},
        "spec": {"hosts": ["svc.example.com"], "gateways": ["gw"],
                 "http": [{"match": [{"uri": {"prefix": "/"}}], "timeout": "5s",
                           "route": [{"destination": {"host": "svc.example.com", "port": {"number": 50051}}}]}]}},
    "DestinationRule": {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "dr", "namespace": "default"},
        "spec": {"host": "svc.example.com",
                 "trafficPolicy": {"connectionPool": {"http": {"http2MaxRequests": 100}},
                                   "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s",
                                                        "baseEjectionTime": "30s", "maxEjectionPercent": 50}}}},
    "Secret": {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gw-cert", "namespace": "default"},
        "type": "kubernetes.io/tls", "stringData": {"tls.crt": CERT, "tls.key": KEY_PEM}},
}


def config(kind: str | None = None, where: tuple = (), value: Any = None, *, extra: list[dict] = ()) -> str:
    """The base config with ``BASE[kind]`` at ``where`` set to ``value`` (or deleted)."""
    objs = copy.deepcopy(BASE)
    if kind is not None:
        node = objs[kind]
        for key in where[:-1]:
            node = node[key]
        if value is DELETE:
            del node[where[-1]]
        else:
            node[where[-1]] = value
    return yaml.safe_dump_all(list(objs.values()) + list(extra), sort_keys=False)


def diagnostics(text: str):
    objects, diags = parse_text(text, file="x.yaml")
    translation = translate(objects)  # must never raise
    out = diags + translation.diagnostics
    internal = [d.format() for d in out if d.code == "internal"]
    assert not internal, internal
    return translation, out


def at(diags, kind: str, field: str):
    return [d for d in diags if d.field_path == field and d.object_ref is not None and d.object_ref.kind == kind]


def test_the_base_config_is_clean() -> None:
    _, diags = diagnostics(config())
    assert [d.format() for d in diags if d.severity is not Severity.INFO] == []


E, W = "error", "warning"
SE, GW, VS, DR, SEC = "ServiceEntry", "Gateway", "VirtualService", "DestinationRule", "Secret"
EP0 = ("spec", "endpoints", 0)
HTTP0 = ("spec", "http", 0)
M0 = HTTP0 + ("match", 0)
TLS1 = ("spec", "servers", 1, "tls")
TP = ("spec", "trafficPolicy")

CASES = [
    # --- 1. wrong types and ranges: ServiceEntry
    ("port -1", SE, EP0 + ("ports",), {"grpc": -1}, "spec.endpoints[0].ports.grpc", E),
    ("port 70000", SE, EP0 + ("ports",), {"grpc": 70000}, "spec.endpoints[0].ports.grpc", E),
    ("port false", SE, EP0 + ("ports",), {"grpc": False}, "spec.endpoints[0].ports.grpc", E),
    ("port string", SE, EP0 + ("ports",), {"grpc": "50051"}, "spec.endpoints[0].ports.grpc", E),
    ("port unicode digit", SE, EP0 + ("ports",), {"grpc": "²"}, "spec.endpoints[0].ports.grpc", E),
    ("port name unknown", SE, EP0 + ("ports",), {"web": 80}, "spec.endpoints[0].ports.web", E),
    ("ports not a map", SE, EP0 + ("ports",), [50051], "spec.endpoints[0].ports", E),
    ("endpoints not a list", SE, ("spec", "endpoints"), 5, "spec.endpoints", E),
    ("endpoint not a map", SE, EP0, "10.0.0.1", "spec.endpoints[0]", E),
    ("weight negative", SE, EP0 + ("weight",), -1, "spec.endpoints[0].weight", E),
    ("weight string", SE, EP0 + ("weight",), "3", "spec.endpoints[0].weight", E),
    ("weight over uint32", SE, EP0 + ("weight",), 2**32, "spec.endpoints[0].weight", E),
    ("label value list", SE, EP0 + ("labels",), {"a": [1]}, "spec.endpoints[0].labels.a", E),
    ("service port string", SE, ("spec", "ports", 0, "number"), "50051", "spec.ports[0].number", E),
    ("service port 0", SE, ("spec", "ports", 0, "number"), 0, "spec.ports[0].number", E),
    ("targetPort 70000", SE, ("spec", "ports", 0, "targetPort"), 70000, "spec.ports[0].targetPort", E),
    ("host not a string", SE, ("spec", "hosts"), [5], "spec.hosts[0]", E),
    ("host with a space", SE, ("spec", "hosts"), ["svc example.com"], "spec.hosts[0]", E),
    ("resolution not a string", SE, ("spec", "resolution"), 1, "spec.resolution", E),
    # --- 3. addresses: ipaddress, exactly
    ("address trailing newline", SE, EP0 + ("address",), "10.0.0.1\n", "spec.endpoints[0].address", E),
    ("address spaces", SE, EP0 + ("address",), " 10.0.0.1 ", "spec.endpoints[0].address", E),
    ("address octet 256", SE, EP0 + ("address",), "10.0.0.256", "spec.endpoints[0].address", E),
    ("address ipv6 zone", SE, EP0 + ("address",), "fe80::1%eth0", "spec.endpoints[0].address", E),
    ("address not a string", SE, EP0 + ("address",), 167772161, "spec.endpoints[0].address", E),
    ("address ipv6 ok", SE, EP0 + ("address",), "2001:db8::1", "spec.endpoints[0].address", None),
    ("addresses bad", SE, ("spec", "addresses"), ["10.0.0.300"], "spec.addresses[0]", E),
    ("addresses cidr ok", SE, ("spec", "addresses"), ["10.0.0.0/24", "2001:db8::/64"], "spec.addresses[0]", None),
    # --- 1. VirtualService
    ("match is 5", VS, HTTP0 + ("match",), 5, "spec.http[0].match", E),
    ("match item is 5", VS, HTTP0 + ("match",), [5], "spec.http[0].match[0]", E),
    ("uri is 5", VS, M0 + ("uri",), 5, "spec.http[0].match[0].uri", E),
    ("uri prefix is 5", VS, M0 + ("uri",), {"prefix": 5}, "spec.http[0].match[0].uri.prefix", E),
    ("match name is 5", VS, M0 + ("name",), 5, "spec.http[0].match[0].name", E),
    ("match gateways item", VS, M0 + ("gateways",), [5], "spec.http[0].match[0].gateways[0]", E),
    ("match port string", VS, M0 + ("port",), "8080", "spec.http[0].match[0].port", E),
    ("header match 5", VS, M0 + ("headers",), {"x-a": 5}, "spec.http[0].match[0].headers.x-a", E),
    ("header name space", VS, M0 + ("headers",), {"x a": {"exact": "1"}}, "spec.http[0].match[0].headers.x a", E),
    ("query name brackets ok", VS, M0 + ("queryParams",), {"ids[]": {"exact": "1"}},
     "spec.http[0].match[0].queryParams.ids[]", None),
    ("query name newline", VS, M0 + ("queryParams",), {"a\nb": {"exact": "1"}}, "spec.http[0].match[0].queryParams.a\nb", E),
    ("http is 5", VS, ("spec", "http"), 5, "spec.http", E),
    ("hosts is 5", VS, ("spec", "hosts"), 5, "spec.hosts", E),
    ("host wildcard inside", VS, ("spec", "hosts"), ["svc.*.com"], "spec.hosts[0]", E),
    ("host newline", VS, ("spec", "hosts"), ["svc.example.com\n"], "spec.hosts[0]", E),
    ("gateways item", VS, ("spec", "gateways"), [5], "spec.gateways[0]", E),
    ("route is 5", VS, HTTP0 + ("route",), 5, "spec.http[0].route", E),
    ("weight string", VS, HTTP0 + ("route", 0, "weight"), "100", "spec.http[0].route[0].weight", E),
    ("weight over uint32", VS, HTTP0 + ("route", 0, "weight"), 2**32, "spec.http[0].route[0].weight", E),
    ("destination is 5", VS, HTTP0 + ("route", 0, "destination"), 5, "spec.http[0].route[0].destination", E),
    ("destination port 70000", VS, HTTP0 + ("route", 0, "destination", "port", "number"), 70000,
     "spec.http[0].route[0].destination.port.number", E),
    ("retries attempts -1", VS, HTTP0 + ("retries",), {"attempts": -1}, "spec.http[0].retries.attempts", E),
    ("retries attempts string", VS, HTTP0 + ("retries",), {"attempts": "3"}, "spec.http[0].retries.attempts", E),
    ("retries perTryTimeout number", VS, HTTP0 + ("retries",), {"attempts": 2, "perTryTimeout": 5},
     "spec.http[0].retries.perTryTimeout", E),
    ("retryOn status 700", VS, HTTP0 + ("retries",), {"attempts": 2, "retryOn": "700"}, "spec.http[0].retries.retryOn", E),
    ("retryOn unicode digit", VS, HTTP0 + ("retries",), {"attempts": 2, "retryOn": "5²"}, "spec.http[0].retries.retryOn", E),
    ("header set value int", VS, HTTP0 + ("headers",), {"request": {"set": {"x-a": 5}}}, "spec.http[0].headers.request.set.x-a", E),
    ("header set newline", VS, HTTP0 + ("headers",), {"request": {"set": {"x-a": "a\nb"}}}, "spec.http[0].headers.request.set.x-a", E),
    ("header set :path", VS, HTTP0 + ("headers",), {"request": {"set": {":path": "/x"}}}, "spec.http[0].headers.request.set.:path", E),
    ("header set host", VS, HTTP0 + ("headers",), {"request": {"add": {"Host": "x"}}}, "spec.http[0].headers.request.add.Host", E),
    ("header remove :authority", VS, HTTP0 + ("headers",), {"response": {"remove": [":authority"]}},
     "spec.http[0].headers.response.remove[0]", E),
    ("header remove 5", VS, HTTP0 + ("headers",), {"response": {"remove": [5]}}, "spec.http[0].headers.response.remove[0]", E),
    ("fault grpcStatus 99", VS, HTTP0 + ("fault",), {"abort": {"grpcStatus": 99}}, "spec.http[0].fault.abort.grpcStatus", E),
    ("fault grpcStatus true", VS, HTTP0 + ("fault",), {"abort": {"grpcStatus": True}}, "spec.http[0].fault.abort.grpcStatus", E),
    ("fault percentage 200", VS, HTTP0 + ("fault",), {"abort": {"httpStatus": 503, "percentage": {"value": 200}}},
     "spec.http[0].fault.abort.percentage", E),
    ("rewrite uri newline", VS, HTTP0 + ("rewrite",), {"uri": "/a\n"}, "spec.http[0].rewrite.uri", E),
    ("cors allowOrigins 5", VS, HTTP0 + ("corsPolicy",), {"allowOrigins": 5}, "spec.http[0].corsPolicy.allowOrigins", E),
    ("cors allowMethods item", VS, HTTP0 + ("corsPolicy",), {"allowOrigins": [{"exact": "https://a"}], "allowMethods": [5]},
     "spec.http[0].corsPolicy.allowMethods[0]", E),
    ("cors allowHeaders comma", VS, HTTP0 + ("corsPolicy",), {"allowOrigins": [{"exact": "https://a"}],
                                                             "allowHeaders": ["a,b"]},
     "spec.http[0].corsPolicy.allowHeaders[0]", E),
    ("cors allowOrigin item", VS, HTTP0 + ("corsPolicy",), {"allowOrigin": [5]}, "spec.http[0].corsPolicy.allowOrigin[0]", E),
    ("tls sniHosts item", VS, ("spec", "tls"), [{"match": [{"sniHosts": [5]}],
                                                "route": [{"destination": {"host": "svc.example.com"}}]}],
     "spec.tls[0].match[0].sniHosts[0]", E),
    # --- 2. regexes: real RE2, Envoy's program-size limit, full-match semantics
    ("regex lookahead", VS, M0 + ("uri",), {"regex": "/(?=x)"}, "spec.http[0].match[0].uri.regex", E),
    ("regex backreference", VS, M0 + ("uri",), {"regex": r"/(a)\1"}, "spec.http[0].match[0].uri.regex", E),
    ("regex unbalanced", VS, M0 + ("uri",), {"regex": "/["}, "spec.http[0].match[0].uri.regex", E),
    ("regex repeat over 1000", VS, M0 + ("uri",), {"regex": "a{1001}"}, "spec.http[0].match[0].uri.regex", E),
    ("regex program size 101", VS, M0 + ("uri",), {"regex": "a{97}"}, "spec.http[0].match[0].uri.regex", E),
    ("regex program size 100", VS, M0 + ("uri",), {"regex": "a{96}"}, "spec.http[0].match[0].uri.regex", None),
    ("regex empty", VS, M0 + ("uri",), {"regex": ""}, "spec.http[0].match[0].uri.regex", E),
    ("regex RE2 named group", VS, M0 + ("uri",), {"regex": "/(?P<v>v[0-9]+)/.*"}, "spec.http[0].match[0].uri.regex", None),
    ("header regex bad", VS, M0 + ("headers",), {"x-a": {"regex": "(?<=a)b"}}, "spec.http[0].match[0].headers.x-a.regex", E),
    # --- 4. durations
    ("timeout huge", VS, HTTP0 + ("timeout",), "99999999999999s", "spec.http[0].timeout", E),
    ("timeout over proto max", VS, HTTP0 + ("timeout",), "315576000001s", "spec.http[0].timeout", E),
    ("timeout over envoy max", VS, HTTP0 + ("timeout",), "9223372037s", "spec.http[0].timeout", E),
    ("timeout hours huge", VS, HTTP0 + ("timeout",), "3000000h", "spec.http[0].timeout", E),
    ("timeout many digits", VS, HTTP0 + ("timeout",), "9" * 400 + "s", "spec.http[0].timeout", E),
    ("timeout trailing newline ok", VS, HTTP0 + ("timeout",), "1h30m", "spec.http[0].timeout", None),
    ("timeout is a number", VS, HTTP0 + ("timeout",), 5, "spec.http[0].timeout", E),
    ("fixedDelay huge", VS, HTTP0 + ("fault",), {"delay": {"fixedDelay": "99999999999999s"}},
     "spec.http[0].fault.delay.fixedDelay", E),
    ("interval huge", DR, TP + ("outlierDetection", "interval"), "99999999999999s", "spec.trafficPolicy.outlierDetection.interval", E),
    ("interval zero", DR, TP + ("outlierDetection", "interval"), "0s", "spec.trafficPolicy.outlierDetection.interval", E),
    ("idleTimeout huge", DR, TP + ("connectionPool", "http", "idleTimeout"), "99999999999999s",
     "spec.trafficPolicy.connectionPool.http.idleTimeout", E),
    # --- 1. Gateway
    ("server port 70000", GW, ("spec", "servers", 0, "port", "number"), 70000, "spec.servers[0].port.number", E),
    ("server port string", GW, ("spec", "servers", 0, "port", "number"), "8080", "spec.servers[0].port.number", E),
    ("server port is 5", GW, ("spec", "servers", 0, "port"), 5, "spec.servers[0].port", E),
    ("servers is 5", GW, ("spec", "servers"), 5, "spec.servers", E),
    ("server host space", GW, ("spec", "servers", 0, "hosts"), ["a b.example.com"], "spec.servers[0].hosts[0]", E),
    ("server host 5", GW, ("spec", "servers", 0, "hosts"), [5], "spec.servers[0].hosts[0]", E),
    ("selector value list", GW, ("spec", "selector"), {"istio": ["x"]}, "spec.selector.istio", E),
    ("tls is 5", GW, TLS1, 5, "spec.servers[1].tls", E),
    ("httpsRedirect string", GW, ("spec", "servers", 0, "tls"), {"httpsRedirect": "yes"}, "spec.servers[0].tls.httpsRedirect", E),
    ("tls min above max", GW, TLS1 + ("minProtocolVersion",), "TLSV1_3", "spec.servers[1].tls.minProtocolVersion", None),
    ("subjectAltNames item", GW, TLS1 + ("subjectAltNames",), [5], "spec.servers[1].tls.subjectAltNames[0]", E),
    # --- 5. cipher suites
    ("cipher unknown", GW, TLS1 + ("cipherSuites",), ["BOGUS"], "spec.servers[1].tls.cipherSuites[0]", E),
    ("cipher TLS 1.3 suite", GW, TLS1 + ("cipherSuites",), ["TLS_AES_128_GCM_SHA256"], "spec.servers[1].tls.cipherSuites[0]", E),
    ("cipher not a string", GW, TLS1 + ("cipherSuites",), [5], "spec.servers[1].tls.cipherSuites[0]", E),
    ("cipher list is a string", GW, TLS1 + ("cipherSuites",), "ECDHE-RSA-AES128-GCM-SHA256", "spec.servers[1].tls.cipherSuites", E),
    ("cipher duplicate", GW, TLS1 + ("cipherSuites",), ["AES128-SHA", "AES128-SHA"], "spec.servers[1].tls.cipherSuites[1]", W),
    ("cipher ok", GW, TLS1 + ("cipherSuites",), ["ECDHE-RSA-CHACHA20-POLY1305", "AES256-GCM-SHA384"],
     "spec.servers[1].tls.cipherSuites[0]", None),
    # --- 1. DestinationRule
    ("http2MaxRequests string", DR, TP + ("connectionPool", "http", "http2MaxRequests"), "5",
     "spec.trafficPolicy.connectionPool.http.http2MaxRequests", E),
    ("http2MaxRequests 0", DR, TP + ("connectionPool", "http", "http2MaxRequests"), 0,
     "spec.trafficPolicy.connectionPool.http.http2MaxRequests", E),
    ("http2MaxRequests over uint32", DR, TP + ("connectionPool", "http", "http2MaxRequests"), 2**32,
     "spec.trafficPolicy.connectionPool.http.http2MaxRequests", E),
    ("maxEjectionPercent 101", DR, TP + ("outlierDetection", "maxEjectionPercent"), 101,
     "spec.trafficPolicy.outlierDetection.maxEjectionPercent", E),
    ("consecutive5xx negative", DR, TP + ("outlierDetection", "consecutive5xxErrors"), -1,
     "spec.trafficPolicy.outlierDetection.consecutive5xxErrors", E),
    ("outlierDetection is 5", DR, TP + ("outlierDetection",), 5, "spec.trafficPolicy.outlierDetection", E),
    ("sni too long", DR, TP + ("tls",), {"mode": "SIMPLE", "sni": "a" * 300}, "spec.trafficPolicy.tls.sni", E),
    ("tls sans item", DR, TP + ("tls",), {"mode": "SIMPLE", "subjectAltNames": [5]}, "spec.trafficPolicy.tls.subjectAltNames[0]", E),
    ("hash header bad", DR, TP + ("loadBalancer",), {"consistentHash": {"httpHeaderName": "x y"}},
     "spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName", E),
    ("subsets item 5", DR, ("spec", "subsets"), [5], "spec.subsets[0]", E),
    ("subset labels 5", DR, ("spec", "subsets"), [{"name": "v1", "labels": 5}], "spec.subsets[0].labels", E),
    ("portLevel port string", DR, TP + ("portLevelSettings",), [{"port": {"number": "50051"}}],
     "spec.trafficPolicy.portLevelSettings[0].port.number", E),
    ("host is 5", DR, ("spec", "host"), 5, "spec.host", E),
    # --- 6. Secrets, parsed with cryptography
    ("cert junk in PEM armour", SEC, ("stringData", "tls.crt"), "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n",
     "stringData.tls.crt", E),
    ("key junk in PEM armour", SEC, ("stringData", "tls.key"), "-----BEGIN PRIVATE KEY-----\nSENTINEL\n-----END PRIVATE KEY-----\n",
     "stringData.tls.key", E),
    ("key does not match", SEC, ("stringData", "tls.key"), SENTINEL_KEY, "stringData.tls.key", E),
    ("key encrypted", SEC, ("stringData", "tls.key"), _key(KEY, b"pw"), "stringData.tls.key", E),
    ("RSA 1024 cert", SEC, ("stringData",), {"tls.crt": _cert(SMALL_RSA), "tls.key": _key(SMALL_RSA)}, "stringData.tls.crt", E),
    ("secp256k1 cert", SEC, ("stringData",), {"tls.crt": _cert(k := ec.generate_private_key(ec.SECP256K1())),
                                              "tls.key": _key(k)}, "stringData.tls.crt", E),
    ("ca junk", SEC, ("stringData", "ca.crt"), "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n", "stringData.ca.crt", E),
    ("stringData value 5", SEC, ("stringData", "tls.crt"), 5, "stringData.tls.crt", E),
]


@pytest.mark.parametrize("what,kind,where,value,field,severity", CASES, ids=[c[0] for c in CASES])
def test_field_value(what: str, kind: str, where: tuple, value: Any, field: str, severity: str | None) -> None:
    translation, diags = diagnostics(config(kind, where, value))
    found = at(diags, kind, field)
    if severity is None:
        assert [d for d in found if d.severity is not Severity.INFO] == [], [d.format() for d in found]
        return
    assert any(d.severity.value == severity for d in found), \
        f"{what}: no {severity} at {kind} {field}; got {[d.format() for d in diags]}"
    if severity == E:  # the object with the bad value is not used: nothing of it reaches Envoy
        ref = next(d.object_ref for d in found)
        assert ref not in translation.accepted
    texts = " ".join(d.format() for d in diags)
    assert "SENTINEL" not in texts and "PRIVATE KEY-----\n" not in texts
    for pem in (KEY_PEM, SENTINEL_KEY):
        assert pem.splitlines()[1] not in texts  # never any key material


@pytest.mark.parametrize("data,field", [({"tls.crt": 5, "tls.key": "eA=="}, "data.tls.crt"),
                                        ({"tls.crt": "not base64!!", "tls.key": "eA=="}, "data.tls.crt"),
                                        ({"tls.crt": "eA==", "tls.key": "eA=="}, "data.tls.crt"),
                                        ({"tls.crt": "eA==", "tls.key": "eA=="}, "data.tls.key")])
def test_secret_data_values(data: dict, field: str) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "d", "namespace": "default"},
              "type": "kubernetes.io/tls", "data": data}
    _, diags = diagnostics(config(extra=[secret]))
    assert any(d.severity is Severity.ERROR for d in at(diags, SEC, field)), [d.format() for d in diags]


def test_query_parameter_names_keep_their_case() -> None:
    translation, _ = diagnostics(config(VS, M0 + ("queryParams",), {"userId": {"exact": "7"}}))
    route = render(translation, NODE)["RDS"][0]["virtual_hosts"][0]["routes"][0]
    assert route["match"]["query_parameters"][0]["name"] == "userId"


def test_min_protocol_version_above_max_is_an_error() -> None:
    tls = dict(BASE["Gateway"]["spec"]["servers"][1]["tls"], minProtocolVersion="TLSV1_3", maxProtocolVersion="TLSV1_2")
    _, diags = diagnostics(config(GW, TLS1, tls))
    assert any(d.severity is Severity.ERROR for d in at(diags, GW, "spec.servers[1].tls.minProtocolVersion"))


def test_error_messages_about_keys_never_include_them() -> None:
    _, diags = diagnostics(config(SEC, ("stringData", "tls.key"), SENTINEL_KEY))
    messages = [d.format() for d in diags]
    assert "x.yaml: Secret/default/gw-cert: stringData.tls.key: does not match the certificate in tls.crt " \
           "(its first certificate)" in messages
    body = "".join(SENTINEL_KEY.splitlines()[1:-1])
    assert not any(line in m for m in messages for line in SENTINEL_KEY.splitlines()[1:-1]) and body not in str(messages)


# --- 7. DestinationRule credentialName whose Secret has no CA

UPSTREAM_SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "upstream", "namespace": "default"},
                   "type": "kubernetes.io/tls", "stringData": {"tls.crt": CERT, "tls.key": KEY_PEM}}


@pytest.mark.parametrize("tls,secret,warned", [
    ({"mode": "SIMPLE", "credentialName": "upstream"}, UPSTREAM_SECRET, True),
    ({"mode": "MUTUAL", "credentialName": "upstream"}, UPSTREAM_SECRET, True),
    ({"mode": "SIMPLE", "credentialName": "upstream", "insecureSkipVerify": True}, UPSTREAM_SECRET, False),
    ({"mode": "SIMPLE", "credentialName": "upstream"},
     dict(UPSTREAM_SECRET, stringData={**UPSTREAM_SECRET["stringData"], "ca.crt": CERT}), False),
    ({"mode": "SIMPLE", "credentialName": "upstream"},
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "upstream-cacert", "namespace": "default"},
      "stringData": {"ca.crt": CERT}}, False),
])
def test_upstream_credential_without_ca_is_a_warning(tls: dict, secret: dict, warned: bool) -> None:
    _, diags = diagnostics(config(DR, TP + ("tls",), tls, extra=[secret]))
    found = [d for d in at(diags, DR, "spec.trafficPolicy.tls.credentialName") if d.severity is Severity.WARNING]
    assert bool(found) is warned, [d.format() for d in diags]
    if warned:
        assert "kubernetes://upstream-cacert" in found[0].message


def test_upstream_credential_in_a_subset_names_the_subset_field() -> None:
    subsets = [{"name": "v1", "labels": {"v": "1"}, "trafficPolicy": {"tls": {"mode": "SIMPLE", "credentialName": "upstream"}}}]
    _, diags = diagnostics(config(DR, ("spec", "subsets"), subsets, extra=[UPSTREAM_SECRET]))
    assert at(diags, DR, "spec.subsets[0].trafficPolicy.tls.credentialName")


# --- 8. maxEjectionPercent that cannot eject one endpoint


@pytest.mark.parametrize("percent,endpoints,warned", [
    (None, 2, True),    # Istio's default 10% of 2 hosts: 50% > 10%, nothing is ever ejected
    (None, 9, True),
    (None, 10, False),  # 1 of 10 = 10% <= 10%
    (50, 2, False),
    (49, 2, True),
    (100, 1, False),
    (33, 3, True),
    (34, 3, False),  # 1 of 3 = 33.3% <= 34%
])
def test_max_ejection_percent_that_ejects_nothing_is_a_warning(percent: int | None, endpoints: int, warned: bool) -> None:
    od = {"consecutive5xxErrors": 5}
    if percent is not None:
        od["maxEjectionPercent"] = percent
    text = config(DR, TP + ("outlierDetection",), od)
    objects, _ = parse_text(text, file="x.yaml")
    for o in objects:
        if o.kind == SE:
            o.raw["spec"]["endpoints"] = [{"address": f"10.0.0.{i + 1}"} for i in range(endpoints)]
    diags = translate(objects).diagnostics
    found = [d for d in at(diags, DR, "spec.trafficPolicy.outlierDetection.maxEjectionPercent")
             if d.severity is Severity.WARNING]
    assert bool(found) is warned, [d.format() for d in diags]


def test_ejection_warning_names_the_subset_that_sets_outlier_detection() -> None:
    subsets = [{"name": "v1", "labels": {"v": "1"}, "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 3}}}]
    _, diags = diagnostics(config(DR, ("spec", "subsets"), subsets)
                           .replace("address: 10.0.0.2", "address: 10.0.0.2\n    labels: {v: '1'}"))
    assert at(diags, DR, "spec.subsets[0].trafficPolicy.outlierDetection.maxEjectionPercent"), [d.format() for d in diags]


# --- 9. CORS preflights to gRPC backends


def _cors_policy(translation) -> dict:
    rds = render(translation, NODE)["RDS"]
    routes = [r for rc in rds for vh in rc["virtual_hosts"] for r in vh["routes"]]
    return routes[0]["typed_per_filter_config"]["envoy.filters.http.cors"]


@pytest.mark.parametrize("unmatched,backend_protocol,expected", [
    (None, "GRPC", False),      # default IGNORE in front of gRPC: Envoy answers the preflight itself
    ("FORWARD", "GRPC", True),  # explicit FORWARD is honoured
    ("IGNORE", "GRPC", False),
    (None, "HTTP", None),       # HTTP/1 backends keep Envoy's (and Istio's) default
])
def test_cors_unmatched_preflights_default_for_grpc_backends(unmatched, backend_protocol, expected) -> None:
    cors = {"allowOrigins": [{"exact": "https://app.example.com"}]}
    if unmatched:
        cors["unmatchedPreflights"] = unmatched
    text = config(VS, HTTP0 + ("corsPolicy",), cors)
    if backend_protocol == "HTTP":
        text = text.replace("name: grpc\n    protocol: GRPC", "name: web\n    protocol: HTTP").replace("grpc: 50051", "web: 50051")
    translation, diags = diagnostics(text)
    assert not [d.format() for d in diags if d.severity is Severity.ERROR]
    assert _cors_policy(translation).get("forward_not_matching_preflights") == expected


# --- never an exception, whatever the type of any field


def _paths(node: Any, prefix: tuple = ()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


#: objects using (nearly) every field the dialect reads, for the wrong-type sweep
FULL: dict[str, dict[str, Any]] = {
    "VirtualService": {**BASE["VirtualService"], "spec": {
        "hosts": ["svc.example.com"], "gateways": ["gw"],
        "http": [{"name": "r", "match": [{"name": "m", "uri": {"regex": "/a.*"}, "headers": {"x-a": {"exact": "1"}},
                                          "withoutHeaders": {"x-b": {}}, "queryParams": {"q": {"prefix": "p"}},
                                          "authority": {"exact": "a"}, "method": {"exact": "POST"}, "port": 8080,
                                          "ignoreUriCase": True, "gateways": ["gw"]}],
                  "route": [{"destination": {"host": "svc.example.com", "port": {"number": 50051}, "subset": "v1"},
                             "weight": 60, "headers": {"request": {"set": {"x-c": "1"}, "remove": ["x-d"]}}},
                            {"destination": {"host": "svc.example.com", "port": {"number": 50051}}, "weight": 40}],
                  "timeout": "5s", "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "unavailable,503"},
                  "rewrite": {"uri": "/b", "authority": "b"},
                  "headers": {"request": {"add": {"x-e": "1"}}, "response": {"set": {"x-f": "2"}, "remove": ["x-g"]}},
                  "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 10}},
                            "abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 5}}},
                  "mirror": {"host": "svc.example.com", "port": {"number": 50051}}, "mirrorPercentage": {"value": 5},
                  "corsPolicy": {"allowOrigins": [{"exact": "https://a"}], "allowMethods": ["POST"],
                                 "allowHeaders": ["x-grpc-web"], "exposeHeaders": ["grpc-status"], "maxAge": "24h",
                                 "allowCredentials": True, "unmatchedPreflights": "FORWARD"}},
                 {"redirect": {"uri": "/c", "authority": "c", "scheme": "https", "port": 443, "redirectCode": 302}},
                 {"directResponse": {"status": 503, "body": {"string": "no"}}}],
        "tls": [{"match": [{"sniHosts": ["svc.example.com"], "port": 8443, "gateways": ["gw"]}],
                 "route": [{"destination": {"host": "svc.example.com", "port": {"number": 50051}}, "weight": 100}]}]}},
    "DestinationRule": {**BASE["DestinationRule"], "spec": {
        "host": "svc.example.com",
        "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST", "consistentHash": {"httpHeaderName": "x-user"}},
                          "connectionPool": {"http": {"http2MaxRequests": 10, "maxRequestsPerConnection": 5,
                                                      "idleTimeout": "60s"}},
                          "outlierDetection": {"consecutive5xxErrors": 5, "consecutiveGatewayErrors": 3,
                                               "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 50},
                          "tls": {"mode": "MUTUAL", "credentialName": "gw-cert", "sni": "svc.example.com",
                                  "subjectAltNames": ["svc.example.com"], "insecureSkipVerify": False},
                          "portLevelSettings": [{"port": {"number": 50051}, "loadBalancer": {"simple": "RANDOM"}}]},
        "subsets": [{"name": "v1", "labels": {"v": "1"},
                     "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 2}}}]}},
    "Gateway": {**BASE["Gateway"], "spec": {**BASE["Gateway"]["spec"], "servers": [
        {"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["default/*.example.com"],
         "tls": {"httpsRedirect": True}},
        {"port": {"number": 8443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"],
         "tls": {"mode": "MUTUAL", "credentialName": "gw-cert", "minProtocolVersion": "TLSV1_2",
                 "maxProtocolVersion": "TLSV1_3", "cipherSuites": ["AES128-SHA"], "subjectAltNames": ["a"]}},
        {"port": {"number": 9443, "name": "tls", "protocol": "TLS"}, "hosts": ["*"], "tls": {"mode": "PASSTHROUGH"}}]}},
    "ServiceEntry": {**BASE["ServiceEntry"], "spec": {
        **BASE["ServiceEntry"]["spec"], "addresses": ["10.1.0.0/16"],
        "ports": [{"number": 50051, "name": "grpc", "protocol": "GRPC", "targetPort": 50052}],
        "endpoints": [{"address": "10.0.0.1", "ports": {"grpc": 50051}, "labels": {"v": "1"}, "weight": 2,
                       "locality": "r/z"}]}},
    "Secret": BASE["Secret"],
}


@pytest.mark.parametrize("kind", list(BASE))
def test_any_wrong_type_anywhere_is_a_diagnostic_never_an_exception(kind: str) -> None:
    saved = BASE[kind]
    try:
        for obj in (saved, FULL[kind]):
            BASE[kind] = obj
            diagnostics(config())
            for where in _paths(obj):
                if len(where) < 2 or where[0] in ("apiVersion", "kind", "metadata"):
                    continue
                for value in (5, -1, "x", True, [1], {"a": 1}, None, 1.5, "", "²"):
                    diagnostics(config(kind, where, value))  # asserts no exception and no internal error
    finally:
        BASE[kind] = saved


# --- the Envoy check: what used to reach Envoy no longer does


def _bootstrap(route_config: dict) -> dict:
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix": "t", "route_config": route_config,
           "http_filters": [{"name": "envoy.filters.http.router",
                             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
    return {"static_resources": {"listeners": [{
        "name": "t", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]}]}}


def _envoy_validate(bootstrap: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(bootstrap))
    return subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path), "-l", "critical"],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not ENVOY.exists(), reason="no envoy binary")
def test_regex_over_envoys_program_size_no_longer_reaches_envoy(tmp_path: Path) -> None:
    bad, good = "/a{96}", "/a{95}"
    assert re2.compile(bad).programsize > fields.RE2_MAX_PROGRAM_SIZE >= re2.compile(good).programsize
    # the old check (Python's re plus a lookaround blacklist) accepted it; now validate refuses it
    translation, diags = diagnostics(config(VS, M0 + ("uri",), {"regex": bad}))
    assert at(diags, VS, "spec.http[0].match[0].uri.regex")[0].severity is Severity.ERROR
    assert bad not in json.dumps(render(translation, NODE))
    # the accepted neighbour is rendered and real Envoy accepts it ...
    translation, diags = diagnostics(config(VS, M0 + ("uri",), {"regex": good}))
    rds = render(translation, NODE)["RDS"][0]
    assert good in json.dumps(rds)
    result = _envoy_validate(_bootstrap(rds), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    # ... and the same config with the refused regex is what Envoy itself rejects
    result = _envoy_validate(_bootstrap(json.loads(json.dumps(rds).replace(good, bad))), tmp_path)
    assert result.returncode != 0 and "program size" in (result.stdout + result.stderr)


@pytest.mark.skipif(not ENVOY.exists(), reason="no envoy binary")
def test_bad_cipher_no_longer_reaches_envoy(tmp_path: Path) -> None:
    translation, diags = diagnostics(config(GW, TLS1 + ("cipherSuites",), ["ECDHE-RSA-AES128-GCM-SHA256", "BOGUS-CIPHER"]))
    assert at(diags, GW, "spec.servers[1].tls.cipherSuites[1]")[0].severity is Severity.ERROR
    assert "BOGUS-CIPHER" not in json.dumps(render(translation, NODE))
    # Envoy's own verdict on every name we accept, and on the one we refuse
    (tmp_path / "c.pem").write_text(CERT)
    (tmp_path / "k.pem").write_text(KEY_PEM)

    def with_ciphers(ciphers: list[str]) -> dict:
        boot = _bootstrap({"name": "r", "virtual_hosts": []})
        boot["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = {
            "name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {"tls_params": {"cipher_suites": ciphers}, "tls_certificates": [{
                    "certificate_chain": {"filename": str(tmp_path / "c.pem")},
                    "private_key": {"filename": str(tmp_path / "k.pem")}}]}}}
        return boot

    assert _envoy_validate(with_ciphers(sorted(fields.CIPHER_SUITES)), tmp_path).returncode == 0
    result = _envoy_validate(with_ciphers(["BOGUS-CIPHER"]), tmp_path)
    assert result.returncode != 0 and "cipher" in (result.stdout + result.stderr)


def test_is_ip_agrees_with_ipaddress() -> None:
    """The C-speed IPv4 fast path never says yes where ``ipaddress`` (the authority) says no, nor the other
    way round: strings of digits, dots and IPv6 characters, and the odd cases by name."""
    import ipaddress

    from hypothesis import given, settings, strategies as st

    def reference(v: str) -> bool:
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            return False
        return not getattr(ip, "scope_id", None)

    for v in ("1.2.3.4", "01.2.3.4", "1.2.3.04", "1.2.3", "256.1.1.1", "0.0.0.0", " 1.2.3.4", "1.2.3.4\n",
              "1.2.3.4\x00", "::1", "::ffff:1.2.3.4", "fe80::1%eth0", "", "1.2.3.4/32"):
        assert fields.is_ip(v) == reference(v), v

    @settings(max_examples=500, deadline=None)
    @given(st.text(alphabet="0123456789.:abcdef% \n", max_size=20)
           | st.tuples(*[st.integers(0, 300)] * 4).map(lambda t: ".".join(map(str, t))))
    def agrees(v: str) -> None:
        assert fields.is_ip(v) == reference(v)
    agrees()
