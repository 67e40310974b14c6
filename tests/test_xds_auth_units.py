"""The pure parts of authenticated xDS: SPIFFE ids, binding claims to identities (a table), the token
cache, the secure-by-default check, and which SDS secrets a node may get."""
from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from tests.test_tls_translation import PEM_CERT, secret
from translators import type_urls
from translators.node import NodeInfo
from translators.pipeline import translate
from xds_server.auth import AuthError, Identity, TokenAuthenticator, bind, spiffe_identity
from xds_server.server import InsecureConfig, ServeOptions, check_security, is_loopback
from xds_server.sources.documents import parse_text


@pytest.mark.parametrize("uri, want", [
    ("spiffe://cluster.local/ns/prod/sa/gateway", ("prod", "gateway")),
    ("spiffe://example.org/ns/a/sa/b", ("a", "b")),
    ("spiffe://cluster.local/ns/prod", None),
    ("spiffe://cluster.local/ns//sa/x", None),
    ("https://cluster.local/ns/prod/sa/gateway", None),
    ("spiffe://cluster.local/sa/x/ns/y", None),
])
def test_spiffe_ids(uri: str, want) -> None:
    got = spiffe_identity(uri)
    assert (got.namespace, got.service_account) == want if want else got is None


A = Identity("team-a", "gateway", "spiffe://cluster.local/ns/team-a/sa/gateway")


@pytest.mark.parametrize("identity, ns, sa, gateway, allowed, denied", [
    (None, "anything", "", True, (), False),  # --insecure-xds: claims trusted
    (A, "team-a", "", True, (), False),
    (A, "team-a", "gateway", True, (), False),
    (A, "team-b", "", True, (), True),  # another namespace
    (A, "team-a", "admin", True, (), True),  # another service account
    (A, "team-a", "", True, ("team-a/gateway",), False),
    (A, "team-a", "", True, ("edge/ingress",), True),  # not a permitted gateway identity
    (A, "team-a", "", False, ("edge/ingress",), False),  # proxyless clients are not gateways
])
def test_bind(identity, ns, sa, gateway, allowed, denied) -> None:
    if denied:
        with pytest.raises(AuthError) as exc:
            bind(identity, claimed_namespace=ns, claimed_service_account=sa, gateway=gateway,
                 gateway_service_accounts=frozenset(allowed))
        assert exc.value.code == grpc.StatusCode.PERMISSION_DENIED
    else:
        bind(identity, claimed_namespace=ns, claimed_service_account=sa, gateway=gateway,
             gateway_service_accounts=frozenset(allowed))


class _Ctx:
    def __init__(self, token: str) -> None:
        self.md = (("authorization", f"Bearer {token}"),)

    def invocation_metadata(self):  # noqa: ANN201
        return self.md


def test_token_reviews_are_cached_by_hash_and_expire() -> None:
    calls = []
    now = [0.0]

    def review(token, audiences):  # noqa: ANN001, ANN202
        calls.append((token, tuple(audiences)))
        return {"authenticated": True, "audiences": list(audiences),
                "user": {"username": "system:serviceaccount:ns1:sa1"}}
    auth = TokenAuthenticator(review, clock=lambda: now[0], ttl_s=60)
    for _ in range(3):
        assert asyncio.run(auth.authenticate(_Ctx("secret-token"))) == Identity("ns1", "sa1", "token")
    assert calls == [("secret-token", ("xds-server",))]
    assert all(b"secret-token" not in k for k in auth._cache)  # the cache holds hashes, never tokens
    now[0] = 61
    asyncio.run(auth.authenticate(_Ctx("secret-token")))
    assert len(calls) == 2


def test_a_review_failure_never_opens_the_door() -> None:
    def review(token, audiences):  # noqa: ANN001, ANN202
        raise ConnectionError("API server down")
    with pytest.raises(AuthError) as exc:
        asyncio.run(TokenAuthenticator(review).authenticate(_Ctx("t")))
    assert exc.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("kwargs, ok", [
    ({"xds_address": "127.0.0.1:18000"}, True),
    ({"xds_address": "[::1]:18000"}, True),
    ({"xds_address": "localhost:18000"}, True),
    ({"xds_address": "0.0.0.0:18000"}, False),
    ({"xds_address": "0.0.0.0:18000", "insecure_xds": True}, True),
    ({"xds_address": "0.0.0.0:18000", "xds_client_ca": "ca", "xds_tls_cert": "c", "xds_tls_key": "k"}, True),
    ({"xds_address": "0.0.0.0:18000", "xds_auth": "kubernetes", "xds_tls_cert": "c", "xds_tls_key": "k"}, True),
    ({"xds_address": "127.0.0.1:18000", "xds_auth": "kubernetes"}, False),  # a token without TLS
])
def test_secure_by_default(kwargs, ok) -> None:
    if ok:
        check_security(ServeOptions(config_dirs=[], **kwargs))
    else:
        with pytest.raises(InsecureConfig):
            check_security(ServeOptions(config_dirs=[], **kwargs))


def test_loopback() -> None:
    assert is_loopback("127.0.0.5") and is_loopback("::1") and not is_loopback("10.0.0.1") and not is_loopback("")


UPSTREAM = secret("client-cred", "apps") + f"""---
apiVersion: v1
kind: Secret
metadata: {{name: client-cred-cacert, namespace: apps}}
stringData: {{ca.crt: {json.dumps(PEM_CERT)}}}
""" + """---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: apps}
spec:
  hosts: [payments.apps.svc.cluster.local]
  ports: [{number: 443, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payments, namespace: apps}
spec:
  host: payments.apps.svc.cluster.local
  trafficPolicy: {tls: {mode: MUTUAL, credentialName: client-cred}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: pay, namespace: apps}
spec:
  selector: {app: pay-gw}
  servers: [{port: {number: 8080, name: grpc, protocol: GRPC}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: other, namespace: apps}
spec:
  selector: {app: other-gw}
  servers: [{port: {number: 8080, name: grpc, protocol: GRPC}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pay, namespace: apps}
spec:
  hosts: ["*"]
  gateways: [pay]
  http: [{route: [{destination: {host: payments.apps.svc.cluster.local}}]}]
"""


def test_an_upstream_client_key_reaches_only_a_node_that_routes_to_its_cluster() -> None:
    objects, _ = parse_text(UPSTREAM, file="t.yaml")
    t = translate(objects)

    def secrets(labels: dict) -> list[str]:
        return sorted(t.for_node(NodeInfo.of(namespace="apps", labels=labels))[type_urls.SECRET])
    assert secrets({"app": "pay-gw"}) == ["kubernetes://client-cred", "kubernetes://client-cred-cacert"]
    assert secrets({"app": "other-gw"}) == ["kubernetes://client-cred-cacert"]  # the CA is public, the key is not
    assert secrets({"app": "nobody"}) == ["kubernetes://client-cred-cacert"]
