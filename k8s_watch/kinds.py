"""The kinds xds-server watches, with the API versions it accepts (first served wins)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WatchedKind:
    kind: str
    group: str  # "" for the core group
    versions: tuple[str, ...]
    plural: str
    namespaced: bool = True
    field_selector: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def path(self, version: str, namespace: str | None) -> str:
        base = f"/api/{version}" if not self.group else f"/apis/{self.group}/{version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


ISTIO = "networking.istio.io"
GATEWAY_API = "gateway.networking.k8s.io"
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")
EMISSARY = "getambassador.io"
EMISSARY_VERSIONS = ("v3alpha1", "v2")

KINDS: tuple[WatchedKind, ...] = (
    WatchedKind("Gateway", ISTIO, ISTIO_VERSIONS, "gateways"),
    WatchedKind("VirtualService", ISTIO, ISTIO_VERSIONS, "virtualservices"),
    WatchedKind("DestinationRule", ISTIO, ISTIO_VERSIONS, "destinationrules"),
    WatchedKind("ServiceEntry", ISTIO, ISTIO_VERSIONS, "serviceentries"),
    WatchedKind("Gateway", GATEWAY_API, ("v1", "v1beta1"), "gateways"),
    WatchedKind("GRPCRoute", GATEWAY_API, ("v1", "v1alpha2"), "grpcroutes"),
    WatchedKind("HTTPRoute", GATEWAY_API, ("v1", "v1beta1"), "httproutes"),
    WatchedKind("BackendTLSPolicy", GATEWAY_API, ("v1", "v1alpha3"), "backendtlspolicies"),
    WatchedKind("ReferenceGrant", GATEWAY_API, ("v1", "v1beta1", "v1alpha2"), "referencegrants"),
    WatchedKind("GatewayClass", GATEWAY_API, ("v1", "v1beta1"), "gatewayclasses", namespaced=False),
    WatchedKind("Service", "", ("v1",), "services"),
    #: labels only: Gateway API listeners select route namespaces by them
    WatchedKind("Namespace", "", ("v1",), "namespaces", namespaced=False),
    WatchedKind("Secret", "", ("v1",), "secrets", field_selector="type=kubernetes.io/tls"),
    #: CA bundles (``ca.crt``) that BackendTLSPolicies name
    WatchedKind("ConfigMap", "", ("v1",), "configmaps"),
    WatchedKind("EndpointSlice", "discovery.k8s.io", ("v1",), "endpointslices"),
    WatchedKind("Telemetry", "telemetry.istio.io", ("v1", "v1alpha1"), "telemetries"),
    WatchedKind("BackendTrafficPolicy", "gateway.envoyproxy.io", ("v1alpha1",), "backendtrafficpolicies"),
    WatchedKind("Mapping", EMISSARY, EMISSARY_VERSIONS, "mappings"),
    WatchedKind("Host", EMISSARY, EMISSARY_VERSIONS, "hosts"),
    WatchedKind("TLSContext", EMISSARY, EMISSARY_VERSIONS, "tlscontexts"),
    WatchedKind("Module", EMISSARY, EMISSARY_VERSIONS, "modules"),
    WatchedKind("Listener", EMISSARY, ("v3alpha1",), "listeners"),
)
