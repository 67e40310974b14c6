"""xDS type URLs, in one place (as go-control-plane's ``resource/v3``).

The push order is make-before-break (xds_protocol, "Eventual consistency
considerations"): clusters before the endpoints they use, listeners before
the route configurations they name, so Envoy never points at something it
does not have yet.
"""
from __future__ import annotations

_PREFIX = "type.googleapis.com/"

LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"
#: VHDS: a route configuration's virtual hosts as resources of their own, named ``ROUTE_CONFIG/HOST``
#: (Envoy's "Virtual Host Discovery Service"; Delta xDS only)
VIRTUAL_HOST = _PREFIX + "envoy.config.route.v3.VirtualHost"

#: make-before-break order: CDS, EDS, LDS, RDS, VHDS (then SDS, which listeners/clusters warm on)
PUSH_ORDER: tuple[str, ...] = (CLUSTER, ENDPOINT, LISTENER, ROUTE, VIRTUAL_HOST, SECRET)

#: types whose SotW subscription may be wildcard (all resources) -- xds_protocol "How the client specifies what resources to return"
WILDCARD_TYPES = frozenset({LISTENER, CLUSTER})

#: types subscribed to by *namespace*: Envoy's VHDS subscribes to a route configuration's name and gets
#: every resource named ``NAME/...`` (``SubscriptionOptions.use_namespace_matching``)
NAMESPACED_TYPES = frozenset({VIRTUAL_HOST})

SHORT_NAMES = {LISTENER: "LDS", ROUTE: "RDS", CLUSTER: "CDS", ENDPOINT: "EDS", SECRET: "SDS", VIRTUAL_HOST: "VHDS"}


def namespace_of(name: str) -> str:
    """The namespace of a namespaced resource name: everything before its last ``/``."""
    return name.rpartition("/")[0]


def short(type_url: str) -> str:
    return SHORT_NAMES.get(type_url, type_url.rsplit(".", 1)[-1])
