"""Demo protos (helloworld, route_guide) and the code grpcio-tools generates from them.

Regenerate with ``make protos``; the generated modules import each other as ``protos.*``.
"""
