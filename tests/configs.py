"""Small config shared by tests and benchmarks: one gateway (port 8080) and one service ``svc``."""
from __future__ import annotations

GATEWAY_AND_SERVICE = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: grpc, protocol: GRPC}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc}
spec:
  hosts: [svc.default.svc.cluster.local]
  ports: [{number: 50051, name: grpc}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
"""

#: a VirtualService on that gateway: ``ROUTE % (prefix, extra http fields)``
ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{match: [{uri: {prefix: %s}}], route: [{destination: {host: svc}}]%s}]
"""
