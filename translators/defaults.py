"""Default policies every dialect shares, so a gRPC route behaves the same whichever API wrote it."""
from __future__ import annotations

from translators.ir import RetryPolicy

#: Istio's default retry policy for HTTP routes (2 attempts on connect failure, refused stream, and the
#: retriable gRPC statuses); GRPCRoutes get it too, as istiod's conversion gives them
DEFAULT_RETRY = RetryPolicy(attempts=2, retry_on="connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes")

#: Envoy's (and Istio's) default outlier_detection.max_ejection_percent
DEFAULT_MAX_EJECTION_PERCENT = 10

#: gRPC status names by code (google.rpc.Code)
GRPC_CODES = {name: i for i, name in enumerate((
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"))}
