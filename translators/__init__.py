"""Config dialects -> IR -> xDS resources.

Everything in this package is a pure function of its inputs: no I/O, no clock,
no globals that change.  The layers, bottom up:

* :mod:`translators.objects` and :mod:`translators.diagnostics` -- the typed
  config objects that sources hand in, and the diagnostics that come back.
* :mod:`translators.ir` -- the one intermediate representation every dialect
  produces; :mod:`translators.fields`, :mod:`translators.hosts`,
  :mod:`translators.defaults` and :mod:`translators.conditions` -- what the
  dialects share.
* the dialects, peers that import no other dialect (:mod:`translators.dialects`
  is the table of them): :mod:`translators.istio`, :mod:`translators.gateway_api`,
  :mod:`translators.emissary` and :mod:`translators.kubernetes` (core Service,
  EndpointSlice, Secret).
* :mod:`translators.engine` -- the compile step: runs the dialects incrementally
  and joins their IR into one :class:`~translators.ir.Model`.
* :mod:`translators.builders` -- one module per xDS type that turns IR into
  Envoy protobuf messages.
* :mod:`translators.pipeline` -- model -> per-node xDS resources.
"""
