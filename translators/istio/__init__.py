"""The Istio dialect: ``networking.istio.io`` v1, v1beta1 and v1alpha3.

One module per kind parses and validates that kind into IR pieces; the compile step
(:mod:`translators.engine`) joins them with the other dialects' into one
:class:`translators.ir.Model`.  Imports no other dialect.
"""

API_GROUP = "networking.istio.io"
API_VERSIONS = frozenset({"v1", "v1beta1", "v1alpha3"})
KINDS = frozenset({"Gateway", "VirtualService", "DestinationRule", "ServiceEntry"})
