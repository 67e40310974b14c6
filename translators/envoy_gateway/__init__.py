"""The Envoy Gateway dialect: ``gateway.envoyproxy.io/v1alpha1`` BackendTrafficPolicy ``healthCheck``.

Its ``targetRefs`` name a Gateway API Gateway, GRPCRoute or HTTPRoute (in the policy's namespace) or,
as xds-server's documented extension, a core Service; the health checks apply to the clusters of the
backends they reach.  The most specific target wins: Service, then route, then Gateway.  Imports no other
dialect.
"""

GROUP = "gateway.envoyproxy.io"
