"""The Emissary dialect: ``getambassador.io`` v3alpha1 and v2 Mapping, Host, TLSContext, Module, Listener.

Semantics follow Emissary's own code (``python/ambassador/ir/*.py``, ``pkg/api/getambassador.io``):
Listeners carry Hosts (by ``hostBinding``), Hosts carry the Mappings whose ``hostname`` matches theirs
(or that their ``mappingSelector`` selects), and Mappings with the same match form one canary group.
They become the same IR as every other dialect: one gateway per ambassador_id, one server per
(Listener, Host), one route per canary group.

Deliberate differences, because Emissary's defaults break gRPC (each reported as info by ``validate``):

* a ``grpc: true`` Mapping with no ``timeout_ms`` has no route timeout (Emissary: 3000 ms, which kills
  every stream longer than 3 s, emissary-ingress/emissary#2210), and ``grpc-timeout`` is honoured;
* a ``grpc: true`` Mapping with no ``rewrite`` keeps its path (Emissary: ``/``, which strips
  ``/pkg.Service/``);
* with no Host at all, ``*`` is served in cleartext on the cleartext Listener (Emissary: a self-signed
  certificate on 8443 and a redirect to it).

``pkg`` objects parse on their own (:mod:`translators.emissary.resources`); the join that needs all
of them is :mod:`translators.emissary.dialect`.  Imports no other dialect.
"""

GROUP = "getambassador.io"
VERSIONS = ("v3alpha1", "v2")
KINDS = frozenset({"Mapping", "Host", "TLSContext", "Module", "Listener"})
DEFAULT_AMBASSADOR_ID = "default"
#: node label naming the ambassador_id an Envoy serves (``bootstrap envoy --dialect emissary --ambassador-id``)
AMBASSADOR_ID_LABEL = "xds-server.io/ambassador-id"
DIALECT = "emissary"
