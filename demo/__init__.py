"""The demo: backends (helloworld, route_guide), a client, and the ``make demo`` orchestrator."""
