"""Config for the gateway e2e tests, rendered with the free ports of the running backends."""
from __future__ import annotations

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: grpc-gateway, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {gateway_port}, name: grpc, protocol: GRPC}}
    hosts: ["*"]
"""

SERVICES = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: greeter, namespace: default}}
spec:
  hosts: [greeter.default.svc.cluster.local]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {a_greeter}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {b_greeter}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: route-guide, namespace: default}}
spec:
  hosts: [route-guide.default.svc.cluster.local]
  ports: [{{number: 50052, name: grpc-rg}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc-rg: {a_route_guide}}}}}
  - {{address: 127.0.0.1, ports: {{grpc-rg: {b_route_guide}}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: greeter, namespace: default}}
spec:
  host: greeter
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: route-guide, namespace: default}}
spec:
  host: route-guide
  trafficPolicy: {{loadBalancer: {{simple: ROUND_ROBIN}}}}
"""

ROUTES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: pinned, namespace: default}}
spec:
  hosts: [pinned.example.com]
  gateways: [grpc-gateway]
  http:
  - route: [{{destination: {{host: greeter, subset: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: grpc-routes, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [grpc-gateway]
  http:
  - name: exact-method-with-header
    match: [{{uri: {{exact: /helloworld.Greeter/SayHello}}, headers: {{x-route: {{exact: to-b}}}}}}]
    route: [{{destination: {{host: greeter, subset: v2}}}}]
  - name: split
    match: [{{uri: {{prefix: /helloworld.Greeter/}}, headers: {{x-split: {{exact: "80-20"}}}}}}]
    route:
    - {{destination: {{host: greeter, subset: v1}}, weight: 80}}
    - {{destination: {{host: greeter, subset: v2}}, weight: 20}}
  - name: short-timeout
    match: [{{uri: {{prefix: /helloworld.Greeter/}}, headers: {{x-timeout-test: {{exact: "1"}}}}}}]
    timeout: 0.5s
    route: [{{destination: {{host: greeter, subset: v1}}}}]
  - name: retried
    match: [{{uri: {{prefix: /helloworld.Greeter/}}, headers: {{x-fail-first: {{}}}}}}]
    retries: {{attempts: 3, retryOn: unavailable}}
    route: [{{destination: {{host: greeter, subset: v1}}}}]
  - name: greeter-default
    match: [{{uri: {{prefix: {greeter_prefix}}}}}]
    route: [{{destination: {{host: greeter, subset: {greeter_subset}}}}}]
  - name: route-guide
    match: [{{uri: {{prefix: /routeguide.RouteGuide/}}}}]
    route: [{{destination: {{host: route-guide}}}}]
"""


def render(template: str, **values) -> str:
    return template.format(**values)
