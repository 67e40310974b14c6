"""Synchronous gRPC calls for e2e tests; each returns what answered (the ``x-replica`` header)."""
from __future__ import annotations

from typing import Sequence

import grpc

from protos import helloworld_pb2, helloworld_pb2_grpc, route_guide_pb2, route_guide_pb2_grpc

Metadata = Sequence[tuple[str, str]]


def replica_of(call: grpc.Call) -> str:
    return dict(call.initial_metadata() or ()).get("x-replica", "")


def say_hello(channel: grpc.Channel, *, name: str = "e2e", metadata: Metadata = (), timeout: float = 5.0) -> tuple[str, str]:
    reply, call = helloworld_pb2_grpc.GreeterStub(channel).SayHello.with_call(
        helloworld_pb2.HelloRequest(name=name), metadata=tuple(metadata), timeout=timeout)
    return reply.message, replica_of(call)


def get_feature(channel: grpc.Channel, *, timeout: float = 5.0) -> tuple[str, str]:
    feature, call = route_guide_pb2_grpc.RouteGuideStub(channel).GetFeature.with_call(
        route_guide_pb2.Point(latitude=409146138, longitude=-746188906), timeout=timeout)
    return feature.name, replica_of(call)


def list_features(channel: grpc.Channel, *, metadata: Metadata = (), timeout: float = 10.0) -> tuple[list[str], str]:
    stream = route_guide_pb2_grpc.RouteGuideStub(channel).ListFeatures(
        route_guide_pb2.Rectangle(lo=route_guide_pb2.Point(latitude=-900000000, longitude=-1800000000),
                                  hi=route_guide_pb2.Point(latitude=900000000, longitude=1800000000)),
        metadata=tuple(metadata), timeout=timeout)
    names = [f.name for f in stream]
    return names, replica_of(stream)


def record_route(channel: grpc.Channel, *, points: int = 5, timeout: float = 10.0) -> tuple[int, str]:
    pts = [route_guide_pb2.Point(latitude=400000000 + i * 1000, longitude=-740000000 - i * 1000) for i in range(points)]
    summary, call = route_guide_pb2_grpc.RouteGuideStub(channel).RecordRoute.with_call(iter(pts), timeout=timeout)
    return summary.point_count, replica_of(call)


def route_chat(channel: grpc.Channel, *, notes: int = 4, timeout: float = 10.0) -> tuple[list[str], str]:
    msgs = [route_guide_pb2.RouteNote(location=route_guide_pb2.Point(latitude=1, longitude=1), message=f"note {i}")
            for i in range(notes)]
    stream = route_guide_pb2_grpc.RouteGuideStub(channel).RouteChat(iter(msgs), timeout=timeout)
    got = [n.message for n in stream]
    return got, replica_of(stream)


def call_unknown(channel: grpc.Channel, *, timeout: float = 5.0) -> grpc.StatusCode:
    method = channel.unary_unary("/unknown.Service/Method", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    try:
        method(b"", timeout=timeout)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
