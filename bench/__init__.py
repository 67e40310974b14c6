"""Benchmarks for xds-server: ``python -m bench [--quick] [--only NAME]`` prints one JSON document.

* ``translation`` -- translate + serialize N services (in process);
* ``fanout`` -- one config change reaching K ADS clients, each in its own connection;
* ``propagation`` -- a new route in a file until a call through a real Envoy succeeds;
* ``memory`` -- control-plane RSS with 1,000 clients connected.

Figures and the commands that produced them live in ``docs/benchmarks.md``.
"""
