"""Who is on the other end of an xDS stream: verified identities, never claims.

Two authenticators, tried in order (istiod's ``pilot/pkg/xds/auth.go`` does the same):

* **mTLS** (``serve --xds-client-ca F``): the client certificate, verified by the TLS handshake against
  that CA, carries a SPIFFE URI SAN ``spiffe://TRUST_DOMAIN/ns/NS/sa/SA``; that is the identity.
* **Kubernetes service-account token** (``serve --xds-auth kubernetes``): a bearer token in the
  ``authorization`` metadata, over TLS, checked with the TokenReview API for a dedicated audience
  (default ``xds-server``); the identity is the pod's namespace and service account.

The identity is then **bound to the node** (:func:`bind`): the node's ``NAMESPACE`` must be the verified
namespace and its ``SERVICE_ACCOUNT``, when given, the verified service account; otherwise the stream
ends with PERMISSION_DENIED naming the mismatch.  Config (above all SDS) is computed for the verified
namespace, so a client cannot claim its way to another namespace's keys.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import grpc
from cryptography import x509

log = logging.getLogger("xds_server.auth")

DEFAULT_AUDIENCE = "xds-server"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class Identity:
    namespace: str
    service_account: str
    #: how it was verified, for logs and errors: the SPIFFE id, or "token"
    via: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service_account} ({self.via})"


class AuthError(Exception):
    """The client presented credentials that do not hold, or none where they are required."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Authenticator(Protocol):
    async def authenticate(self, context: Any) -> Identity | None:
        """The identity, None when this client brought no credential of this kind; raises AuthError
        for a credential that does not verify."""


def spiffe_identity(uri: str) -> Identity | None:
    """``spiffe://TRUST_DOMAIN/ns/NS/sa/SA`` -> Identity (None for any other shape)."""
    if not uri.startswith("spiffe://"):
        return None
    parts = uri[len("spiffe://"):].split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa" and parts[2] and parts[4]:
        return Identity(parts[2], parts[4], uri)
    return None


class MtlsAuthenticator:
    """The verified client certificate's SPIFFE URI SAN.  The handshake already checked the chain
    against ``--xds-client-ca``; a certificate without a SPIFFE id of the expected shape is refused."""

    async def authenticate(self, context: Any) -> Identity | None:
        auth = context.auth_context() or {}
        pems = auth.get("x509_pem_cert") or []
        if not pems:
            return None
        cert = x509.load_pem_x509_certificate(pems[0])
        try:
            uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
                .get_values_for_type(x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            uris = []
        for uri in uris:
            identity = spiffe_identity(uri)
            if identity is not None:
                return identity
        raise AuthError(grpc.StatusCode.PERMISSION_DENIED, "the client certificate has no SPIFFE URI SAN of the form "
                        "spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT")


#: the TokenReview call: (token, audiences) -> the TokenReview ``status`` dict
ReviewFn = Callable[[str, Sequence[str]], dict]


def kubernetes_review(api_client: Any) -> ReviewFn:
    """TokenReview through the official client (``authentication.k8s.io/v1``)."""
    from kubernetes import client as k8s

    api = k8s.AuthenticationV1Api(api_client)

    def review(token: str, audiences: Sequence[str]) -> dict:
        body = k8s.V1TokenReview(spec=k8s.V1TokenReviewSpec(token=token, audiences=list(audiences)))
        result = api.create_token_review(body)
        status = result.status
        return {"authenticated": bool(status.authenticated), "error": status.error or "",
                "audiences": list(status.audiences or []),
                "user": {"username": (status.user.username if status.user else "") or ""}}
    return review


class TokenAuthenticator:
    """``authorization: Bearer TOKEN`` checked by TokenReview for ``audience``; results are cached for a
    minute by the token's hash (never the token), so a thousand reconnecting Envoys cost one review each."""

    def __init__(self, review: ReviewFn, *, audience: str = DEFAULT_AUDIENCE, ttl_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self.review = review
        self.audience = audience
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[float, Identity | AuthError]] = {}

    async def authenticate(self, context: Any) -> Identity | None:
        token = None
        for key, value in context.invocation_metadata() or ():
            if key.lower() == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
                token = value[7:].strip()
        if not token:
            return None
        if len(token) > 16 * 1024:
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "the bearer token is larger than 16 KiB")
        digest = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        hit = self._cache.get(digest)
        if hit is None or hit[0] < now:
            hit = (now + self.ttl_s, await asyncio.to_thread(self._check, token))
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[digest] = hit
        if isinstance(hit[1], AuthError):
            raise hit[1]
        return hit[1]

    def _check(self, token: str) -> Identity | AuthError:
        try:
            status = self.review(token, [self.audience])
        except Exception as exc:  # noqa: BLE001 - the API server being down must not open the door
            log.warning("TokenReview failed: %s", type(exc).__name__)
            return AuthError(grpc.StatusCode.UNAVAILABLE, "the token could not be reviewed (TokenReview failed)")
        if not status.get("authenticated"):
            why = str(status.get("error") or "not authenticated")[:200]
            return AuthError(grpc.StatusCode.UNAUTHENTICATED, f"the token was refused by TokenReview: {why}")
        if self.audience not in (status.get("audiences") or []):
            return AuthError(grpc.StatusCode.UNAUTHENTICATED, f"the token is not for audience {self.audience!r}")
        username = (status.get("user") or {}).get("username") or ""
        if not username.startswith(SA_PREFIX) or username.count(":") != 3:
            return AuthError(grpc.StatusCode.PERMISSION_DENIED, "the token is not a service-account token")
        ns, sa = username[len(SA_PREFIX):].split(":")
        return Identity(ns, sa, "token")


class Authenticators:
    """The configured authenticators, in order; with any configured, a client without credentials is refused."""

    def __init__(self, authenticators: Sequence[Authenticator] = (), *,
                 gateway_service_accounts: Sequence[str] = ()) -> None:
        self.authenticators = list(authenticators)
        self.gateway_service_accounts = frozenset(gateway_service_accounts)

    @property
    def enabled(self) -> bool:
        return bool(self.authenticators)

    async def authenticate(self, context: Any) -> Identity | None:
        if not self.authenticators:
            return None  # --insecure-xds: claims are trusted
        for a in self.authenticators:
            identity = await a.authenticate(context)
            if identity is not None:
                return identity
        raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "xDS requires a client certificate or a service-account token")


def bind(identity: Identity | None, *, claimed_namespace: str, claimed_service_account: str, gateway: bool,
         gateway_service_accounts: frozenset[str] = frozenset()) -> None:
    """Raise PERMISSION_DENIED when the node's claims disagree with its verified identity."""
    if identity is None:
        return
    if claimed_namespace != identity.namespace:
        raise AuthError(grpc.StatusCode.PERMISSION_DENIED, f"the node claims NAMESPACE {claimed_namespace!r} but its "
                        f"verified identity is in namespace {identity.namespace!r} ({identity.via})")
    if claimed_service_account and claimed_service_account != identity.service_account:
        raise AuthError(grpc.StatusCode.PERMISSION_DENIED, f"the node claims SERVICE_ACCOUNT "
                        f"{claimed_service_account!r} but its verified identity is {identity.service_account!r}")
    if gateway and gateway_service_accounts and \
            f"{identity.namespace}/{identity.service_account}" not in gateway_service_accounts:
        raise AuthError(grpc.StatusCode.PERMISSION_DENIED, f"service account {identity.namespace}/"
                        f"{identity.service_account} may not act as a gateway (--gateway-service-account)")
