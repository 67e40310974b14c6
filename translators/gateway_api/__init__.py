"""The Gateway API dialect: Gateway, GRPCRoute and ReferenceGrant into the same IR as Istio.

GRPCRoutes become :class:`translators.ir.HttpRoutes` bound to Gateway API gateways, so one route
builder serves both dialects.  Method matches map to paths exactly as Istio's conversion does
(``createGRPCURIMatch``).  Statuses (Accepted, ResolvedRefs, Programmed) are computed here, as
data; ``k8s_watch`` writes them.
"""

GROUP = "gateway.networking.k8s.io"
CONTROLLER_NAME = "xds-server.io/gateway-controller"
DEFAULT_GATEWAY_CLASS = "xds-server"
