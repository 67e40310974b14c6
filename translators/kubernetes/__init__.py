"""The ``kubernetes`` dialect: core Service, EndpointSlice and Secret into the IR.

Every other dialect routes to what these declare (hosts with their ports and endpoints) and
terminates or originates TLS with these Secrets.
"""

#: (group, kind) of what this dialect reads
SERVICE = ("", "Service")
ENDPOINT_SLICE = ("discovery.k8s.io", "EndpointSlice")
SECRET = ("", "Secret")
