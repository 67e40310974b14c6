"""xds-server: snapshot cache, ADS server, admin HTTP and CLI.

Data flows one way: sources -> :mod:`xds_server.store` -> debounced
translation (:mod:`xds_server.controller`, calling the pure
:mod:`translators`) -> immutable :mod:`xds_server.snapshot` ->
:mod:`xds_server.cache` -> ADS streams (:mod:`xds_server.ads`).
"""

__version__ = "0.1.0"
