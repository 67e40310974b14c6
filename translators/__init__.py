"""Config dialects -> IR -> xDS resources.

Everything in this package is a pure function of its inputs: no I/O, no clock,
no globals that change.  The layers, bottom up:

* :mod:`translators.objects` and :mod:`translators.diagnostics` -- the typed
  config objects that sources hand in, and the diagnostics that come back.
* :mod:`translators.istio` -- the Istio dialect: parses and validates
  Gateway / VirtualService / DestinationRule / ServiceEntry into the IR.
* :mod:`translators.ir` -- the one intermediate representation every dialect
  produces.
* :mod:`translators.builders` -- one module per xDS type that turns IR into
  Envoy protobuf messages.
* :mod:`translators.pipeline` -- glues the above together.
"""
