"""Known field trees of the kinds xds-server reads, so an unknown field is never dropped silently.

:func:`unknown_fields` walks a spec (or a whole document) against the field tree of its kind and
returns the full path of every key that kind does not have (``spec.servers[0].tlsx``).  Callers
report them as warnings: the field is ignored, the rest of the object still translates.

The trees come from the APIs themselves:

* ``networking.istio.io`` (v1 = v1beta1 = v1alpha3): istio/api ``networking/v1alpha3/*.proto``
  (gateway, virtual_service, destination_rule, service_entry, workload_entry, sidecar,
  type/v1beta1/selector), names in their JSON (lowerCamelCase) form; the proto snake_case
  spelling is accepted too, as Istio accepts it;
* ``gateway.networking.k8s.io`` v1: kubernetes-sigs/gateway-api ``apis/v1/*_types.go`` JSON tags;
* core ``Service`` spec, ``EndpointSlice`` and ``Secret``: the Kubernetes API reference.

A field whose value is ``None`` in a tree is a leaf *or a map with free-form keys* (labels,
selectors, header maps, ServiceEntry endpoint ``ports``, ``data``/``stringData``): its value is
not descended into.  Pure: no I/O, no state.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

#: type name -> {field: child type name, or None for a leaf / free-form map, or ``map:TYPE`` for a map
#: with free-form keys whose values are TYPE (VirtualService match ``headers``)}
_TYPES: dict[str, dict[str, str | None]] = {
    "istio.Gateway": {"servers": "istio.Server", "selector": None},
    "istio.Server": {
        "port": "istio.Port", "bind": None, "hosts": None, "tls": "istio.ServerTLSSettings", "defaultEndpoint": None,
        "name": None,
    },
    "istio.Port": {"number": None, "protocol": None, "name": None, "targetPort": None},
    "istio.ServerTLSSettings": {
        "httpsRedirect": None, "mode": None, "serverCertificate": None, "privateKey": None, "caCertificates": None,
        "caCrl": None, "credentialName": None, "credentialNames": None, "caCertCredentialName": None,
        "tlsCertificates": "istio.ServerTLSSettings.TLSCertificate", "subjectAltNames": None,
        "verifyCertificateSpki": None, "verifyCertificateHash": None, "minProtocolVersion": None,
        "maxProtocolVersion": None, "cipherSuites": None, "insecureSkipVerify": None,
    },
    "istio.ServerTLSSettings.TLSCertificate": {"serverCertificate": None, "privateKey": None, "caCertificates": None},
    "istio.VirtualService": {
        "hosts": None, "gateways": None, "http": "istio.HTTPRoute", "tls": "istio.TLSRoute", "tcp": "istio.TCPRoute",
        "exportTo": None,
    },
    "istio.HTTPRoute": {
        "name": None, "match": "istio.HTTPMatchRequest", "route": "istio.HTTPRouteDestination",
        "redirect": "istio.HTTPRedirect", "directResponse": "istio.HTTPDirectResponse", "delegate": "istio.Delegate",
        "rewrite": "istio.HTTPRewrite", "timeout": None, "retries": "istio.HTTPRetry",
        "fault": "istio.HTTPFaultInjection", "mirror": "istio.Destination", "mirrors": "istio.HTTPMirrorPolicy",
        "mirrorPercent": None, "mirrorPercentage": "istio.Percent", "corsPolicy": "istio.CorsPolicy",
        "headers": "istio.Headers",
    },
    "istio.HTTPMatchRequest": {
        "name": None, "uri": "istio.StringMatch", "scheme": "istio.StringMatch", "method": "istio.StringMatch",
        "authority": "istio.StringMatch", "headers": "map:istio.StringMatch", "port": None, "sourceLabels": None,
        "gateways": None, "queryParams": "map:istio.StringMatch", "ignoreUriCase": None,
        "withoutHeaders": "map:istio.StringMatch", "sourceNamespace": None,
        "statPrefix": None,
    },
    "istio.StringMatch": {"exact": None, "prefix": None, "regex": None},
    "istio.HTTPRouteDestination": {"destination": "istio.Destination", "weight": None, "headers": "istio.Headers"},
    "istio.Destination": {"host": None, "subset": None, "port": "istio.PortSelector"},
    "istio.PortSelector": {"number": None},
    "istio.Headers": {"request": "istio.Headers.HeaderOperations", "response": "istio.Headers.HeaderOperations"},
    "istio.Headers.HeaderOperations": {"set": None, "add": None, "remove": None},
    "istio.HTTPRedirect": {
        "uri": None, "authority": None, "port": None, "derivePort": None, "scheme": None, "redirectCode": None,
        "prefixRewrite": None,
    },
    "istio.HTTPDirectResponse": {"status": None, "body": "istio.HTTPBody"},
    "istio.HTTPBody": {"string": None, "bytes": None},
    "istio.Delegate": {"name": None, "namespace": None},
    "istio.HTTPRewrite": {"uri": None, "authority": None, "uriRegexRewrite": "istio.RegexRewrite"},
    "istio.RegexRewrite": {"match": None, "rewrite": None},
    "istio.HTTPRetry": {
        "attempts": None, "perTryTimeout": None, "retryOn": None, "retryRemoteLocalities": None,
        "retryIgnorePreviousHosts": None, "backoff": None,
    },
    "istio.HTTPFaultInjection": {
        "delay": "istio.HTTPFaultInjection.Delay", "abort": "istio.HTTPFaultInjection.Abort",
    },
    "istio.HTTPFaultInjection.Delay": {
        "percent": None, "fixedDelay": None, "exponentialDelay": None, "percentage": "istio.Percent",
    },
    "istio.Percent": {"value": None},
    "istio.HTTPFaultInjection.Abort": {
        "httpStatus": None, "grpcStatus": None, "http2Error": None, "percentage": "istio.Percent",
    },
    "istio.HTTPMirrorPolicy": {"destination": "istio.Destination", "percentage": "istio.Percent"},
    "istio.CorsPolicy": {
        "allowOrigin": None, "allowOrigins": "istio.StringMatch", "allowMethods": None, "allowHeaders": None,
        "exposeHeaders": None, "maxAge": None, "allowCredentials": None, "unmatchedPreflights": None,
    },
    "istio.TLSRoute": {"match": "istio.TLSMatchAttributes", "route": "istio.RouteDestination"},
    "istio.TLSMatchAttributes": {
        "sniHosts": None, "destinationSubnets": None, "port": None, "sourceLabels": None, "gateways": None,
        "sourceNamespace": None,
    },
    "istio.RouteDestination": {"destination": "istio.Destination", "weight": None},
    "istio.TCPRoute": {"match": "istio.L4MatchAttributes", "route": "istio.RouteDestination"},
    "istio.L4MatchAttributes": {
        "destinationSubnets": None, "port": None, "sourceSubnet": None, "sourceLabels": None, "gateways": None,
        "sourceNamespace": None,
    },
    "istio.DestinationRule": {
        "host": None, "trafficPolicy": "istio.TrafficPolicy", "subsets": "istio.Subset", "exportTo": None,
        "workloadSelector": "istio.WorkloadSelector",
    },
    "istio.TrafficPolicy": {
        "loadBalancer": "istio.LoadBalancerSettings", "connectionPool": "istio.ConnectionPoolSettings",
        "outlierDetection": "istio.OutlierDetection", "tls": "istio.ClientTLSSettings",
        "portLevelSettings": "istio.TrafficPolicy.PortTrafficPolicy", "tunnel": "istio.TrafficPolicy.TunnelSettings",
        "proxyProtocol": "istio.TrafficPolicy.ProxyProtocol", "retryBudget": "istio.TrafficPolicy.RetryBudget",
    },
    "istio.LoadBalancerSettings": {
        "simple": None, "consistentHash": "istio.LoadBalancerSettings.ConsistentHashLB",
        "localityLbSetting": "istio.LocalityLoadBalancerSetting",
        "zoneAwareLbSetting": "istio.ZoneAwareLoadBalancerSetting", "warmupDurationSecs": None,
        "warmup": "istio.WarmupConfiguration",
    },
    "istio.LoadBalancerSettings.ConsistentHashLB": {
        "httpHeaderName": None, "httpCookie": "istio.LoadBalancerSettings.ConsistentHashLB.HTTPCookie",
        "useSourceIp": None, "httpQueryParameterName": None,
        "ringHash": "istio.LoadBalancerSettings.ConsistentHashLB.RingHash",
        "maglev": "istio.LoadBalancerSettings.ConsistentHashLB.MagLev", "minimumRingSize": None,
    },
    "istio.LoadBalancerSettings.ConsistentHashLB.HTTPCookie": {
        "name": None, "path": None, "ttl": None,
        "attributes": "istio.LoadBalancerSettings.ConsistentHashLB.HTTPCookie.Attribute",
    },
    "istio.LoadBalancerSettings.ConsistentHashLB.HTTPCookie.Attribute": {"name": None, "value": None},
    "istio.LoadBalancerSettings.ConsistentHashLB.RingHash": {"minimumRingSize": None},
    "istio.LoadBalancerSettings.ConsistentHashLB.MagLev": {"tableSize": None},
    "istio.LocalityLoadBalancerSetting": {
        "distribute": "istio.LocalityLoadBalancerSetting.Distribute",
        "failover": "istio.LocalityLoadBalancerSetting.Failover", "failoverPriority": None, "enabled": None,
    },
    "istio.LocalityLoadBalancerSetting.Distribute": {"from": None, "to": None},
    "istio.LocalityLoadBalancerSetting.Failover": {"from": None, "to": None},
    "istio.ZoneAwareLoadBalancerSetting": {
        "enabled": None, "failover": "istio.ZoneAwareLoadBalancerSetting.Failover", "failoverPriority": None,
        "minClusterSize": None,
    },
    "istio.ZoneAwareLoadBalancerSetting.Failover": {"from": None, "to": None},
    "istio.WarmupConfiguration": {"duration": None, "minimumPercent": None, "aggression": None},
    "istio.ConnectionPoolSettings": {
        "tcp": "istio.ConnectionPoolSettings.TCPSettings", "http": "istio.ConnectionPoolSettings.HTTPSettings",
    },
    "istio.ConnectionPoolSettings.TCPSettings": {
        "maxConnections": None, "connectTimeout": None,
        "tcpKeepalive": "istio.ConnectionPoolSettings.TCPSettings.TcpKeepalive", "maxConnectionDuration": None,
        "idleTimeout": None,
    },
    "istio.ConnectionPoolSettings.TCPSettings.TcpKeepalive": {"probes": None, "time": None, "interval": None},
    "istio.ConnectionPoolSettings.HTTPSettings": {
        "http1MaxPendingRequests": None, "http2MaxRequests": None, "maxRequestsPerConnection": None,
        "maxRetries": None, "idleTimeout": None, "h2UpgradePolicy": None, "useClientProtocol": None,
        "maxConcurrentStreams": None,
        "http2KeepAlive": "istio.ConnectionPoolSettings.HTTPSettings.ConnectionKeepalive",
    },
    "istio.ConnectionPoolSettings.HTTPSettings.ConnectionKeepalive": {"interval": None, "timeout": None},
    "istio.OutlierDetection": {
        "consecutiveErrors": None, "splitExternalLocalOriginErrors": None, "consecutiveLocalOriginFailures": None,
        "consecutiveGatewayErrors": None, "consecutive5xxErrors": None, "interval": None, "baseEjectionTime": None,
        "maxEjectionPercent": None, "minHealthPercent": None, "outlierDetectionHttpErrorCodes": None,
    },
    "istio.ClientTLSSettings": {
        "mode": None, "clientCertificate": None, "privateKey": None, "caCertificates": None, "credentialName": None,
        "subjectAltNames": None, "sni": None, "insecureSkipVerify": None, "caCrl": None,
    },
    "istio.TrafficPolicy.PortTrafficPolicy": {
        "port": "istio.PortSelector", "loadBalancer": "istio.LoadBalancerSettings",
        "connectionPool": "istio.ConnectionPoolSettings", "outlierDetection": "istio.OutlierDetection",
        "tls": "istio.ClientTLSSettings",
    },
    "istio.TrafficPolicy.TunnelSettings": {"protocol": None, "targetHost": None, "targetPort": None},
    "istio.TrafficPolicy.ProxyProtocol": {"version": None},
    "istio.TrafficPolicy.RetryBudget": {"percent": None, "minRetryConcurrency": None, "budgetInterval": None},
    "istio.Subset": {"name": None, "labels": None, "trafficPolicy": "istio.TrafficPolicy"},
    "istio.WorkloadSelector": {"matchLabels": None},
    "istio.ServiceEntry": {
        "hosts": None, "addresses": None, "ports": "istio.ServicePort", "location": None, "resolution": None,
        "endpoints": "istio.WorkloadEntry", "workloadSelector": "istio.ServiceEntryWorkloadSelector",
        "exportTo": None, "subjectAltNames": None,
    },
    "istio.ServicePort": {"number": None, "protocol": None, "name": None, "targetPort": None},
    "istio.WorkloadEntry": {
        "address": None, "ports": None, "labels": None, "network": None, "locality": None, "weight": None,
        "serviceAccount": None,
    },
    "istio.ServiceEntryWorkloadSelector": {"labels": None},
    "gw.GatewaySpec": {
        "gatewayClassName": None, "listeners": "gw.Listener", "addresses": "gw.GatewaySpecAddress",
        "infrastructure": "gw.GatewayInfrastructure", "allowedListeners": "gw.AllowedListeners",
        "tls": "gw.GatewayTLSConfig", "defaultScope": None,
    },
    "gw.Listener": {
        "name": None, "hostname": None, "port": None, "protocol": None, "tls": "gw.ListenerTLSConfig",
        "allowedRoutes": "gw.AllowedRoutes",
    },
    "gw.ListenerTLSConfig": {"mode": None, "certificateRefs": "gw.SecretObjectReference", "options": None},
    "gw.SecretObjectReference": {"group": None, "kind": None, "name": None, "namespace": None},
    "gw.AllowedRoutes": {"namespaces": "gw.RouteNamespaces", "kinds": "gw.RouteGroupKind"},
    "gw.RouteNamespaces": {"from": None, "selector": "k8s.LabelSelector"},
    "gw.RouteGroupKind": {"group": None, "kind": None},
    "gw.GatewaySpecAddress": {"type": None, "value": None},
    "gw.GatewayInfrastructure": {"labels": None, "annotations": None, "parametersRef": "gw.LocalParametersReference"},
    "gw.LocalParametersReference": {"group": None, "kind": None, "name": None},
    "gw.AllowedListeners": {"namespaces": "gw.ListenerNamespaces"},
    "gw.ListenerNamespaces": {"from": None, "selector": "k8s.LabelSelector"},
    "gw.GatewayTLSConfig": {"backend": "gw.GatewayBackendTLS", "frontend": "gw.FrontendTLSConfig"},
    "gw.GatewayBackendTLS": {"clientCertificateRef": "gw.SecretObjectReference"},
    "gw.FrontendTLSConfig": {"default": "gw.TLSConfig", "perPort": "gw.TLSPortConfig"},
    "gw.TLSConfig": {"validation": "gw.FrontendTLSValidation"},
    "gw.FrontendTLSValidation": {"caCertificateRefs": "gw.ObjectReference", "mode": None},
    "gw.ObjectReference": {"group": None, "kind": None, "name": None, "namespace": None},
    "gw.TLSPortConfig": {"port": None, "tls": "gw.TLSConfig"},
    "gw.GRPCRouteSpec": {
        "parentRefs": "gw.ParentReference", "useDefaultGateways": None, "hostnames": None,
        "rules": "gw.GRPCRouteRule",
    },
    "gw.CommonRouteSpec": {"parentRefs": "gw.ParentReference", "useDefaultGateways": None},
    "gw.ParentReference": {
        "group": None, "kind": None, "namespace": None, "name": None, "sectionName": None, "port": None,
    },
    "gw.GRPCRouteRule": {
        "name": None, "matches": "gw.GRPCRouteMatch", "filters": "gw.GRPCRouteFilter",
        "backendRefs": "gw.GRPCBackendRef", "sessionPersistence": "gw.SessionPersistence",
    },
    "gw.GRPCRouteMatch": {"method": "gw.GRPCMethodMatch", "headers": "gw.GRPCHeaderMatch"},
    "gw.GRPCMethodMatch": {"type": None, "service": None, "method": None},
    "gw.GRPCHeaderMatch": {"type": None, "name": None, "value": None},
    "gw.GRPCRouteFilter": {
        "type": None, "requestHeaderModifier": "gw.HTTPHeaderFilter",
        "responseHeaderModifier": "gw.HTTPHeaderFilter", "requestMirror": "gw.HTTPRequestMirrorFilter",
        "extensionRef": "gw.LocalObjectReference",
    },
    "gw.HTTPHeaderFilter": {"set": "gw.HTTPHeader", "add": "gw.HTTPHeader", "remove": None},
    "gw.HTTPHeader": {"name": None, "value": None},
    "gw.HTTPRequestMirrorFilter": {
        "backendRef": "gw.BackendObjectReference", "percent": None, "fraction": "gw.Fraction",
    },
    "gw.BackendObjectReference": {"group": None, "kind": None, "name": None, "namespace": None, "port": None},
    "gw.Fraction": {"numerator": None, "denominator": None},
    "gw.LocalObjectReference": {"group": None, "kind": None, "name": None},
    "gw.GRPCBackendRef": {
        "group": None, "kind": None, "name": None, "namespace": None, "port": None, "weight": None,
        "filters": "gw.GRPCRouteFilter",
    },
    "gw.BackendRef": {"group": None, "kind": None, "name": None, "namespace": None, "port": None, "weight": None},
    "gw.SessionPersistence": {
        "absoluteTimeout": None, "type": None, "cookie": "gw.CookieConfig", "header": "gw.HeaderConfig",
    },
    "gw.CookieConfig": {"name": None, "path": None, "lifetimeType": None},
    "gw.HeaderConfig": {"name": None},
    "gw.HTTPRouteSpec": {
        "parentRefs": "gw.ParentReference", "useDefaultGateways": None, "hostnames": None,
        "rules": "gw.HTTPRouteRule",
    },
    "gw.HTTPRouteRule": {
        "name": None, "matches": "gw.HTTPRouteMatch", "filters": "gw.HTTPRouteFilter",
        "backendRefs": "gw.HTTPBackendRef", "timeouts": "gw.HTTPRouteTimeouts", "retry": "gw.HTTPRouteRetry",
        "sessionPersistence": "gw.SessionPersistence",
    },
    "gw.HTTPRouteMatch": {
        "path": "gw.HTTPPathMatch", "headers": "gw.HTTPHeaderMatch", "queryParams": "gw.HTTPQueryParamMatch",
        "method": None,
    },
    "gw.HTTPPathMatch": {"type": None, "value": None},
    "gw.HTTPHeaderMatch": {"type": None, "name": None, "value": None},
    "gw.HTTPQueryParamMatch": {"type": None, "name": None, "value": None},
    "gw.HTTPRouteFilter": {
        "type": None, "requestHeaderModifier": "gw.HTTPHeaderFilter",
        "responseHeaderModifier": "gw.HTTPHeaderFilter", "requestMirror": "gw.HTTPRequestMirrorFilter",
        "requestRedirect": "gw.HTTPRequestRedirectFilter", "urlRewrite": "gw.HTTPURLRewriteFilter",
        "cors": "gw.HTTPCORSFilter", "externalAuth": "gw.HTTPExternalAuthFilter",
        "extensionRef": "gw.LocalObjectReference",
    },
    "gw.HTTPRequestRedirectFilter": {
        "scheme": None, "hostname": None, "path": "gw.HTTPPathModifier", "port": None, "statusCode": None,
    },
    "gw.HTTPPathModifier": {"type": None, "replaceFullPath": None, "replacePrefixMatch": None},
    "gw.HTTPURLRewriteFilter": {"hostname": None, "path": "gw.HTTPPathModifier"},
    "gw.HTTPCORSFilter": {
        "allowOrigins": None, "allowCredentials": None, "allowMethods": None, "allowHeaders": None,
        "exposeHeaders": None, "maxAge": None,
    },
    "gw.HTTPExternalAuthFilter": {
        "protocol": None, "backendRef": "gw.BackendObjectReference", "grpc": "gw.GRPCAuthConfig",
        "http": "gw.HTTPAuthConfig", "forwardBody": "gw.ForwardBodyConfig",
    },
    "gw.GRPCAuthConfig": {"allowedHeaders": None},
    "gw.HTTPAuthConfig": {"path": None, "allowedHeaders": None, "allowedResponseHeaders": None},
    "gw.ForwardBodyConfig": {"maxSize": None},
    "gw.HTTPBackendRef": {
        "group": None, "kind": None, "name": None, "namespace": None, "port": None, "weight": None,
        "filters": "gw.HTTPRouteFilter",
    },
    "gw.HTTPRouteTimeouts": {"request": None, "backendRequest": None},
    "gw.HTTPRouteRetry": {"codes": None, "attempts": None, "backoff": None},
    "gw.ReferenceGrantSpec": {"from": "gw.ReferenceGrantFrom", "to": "gw.ReferenceGrantTo"},
    "gw.ReferenceGrantFrom": {"group": None, "kind": None, "namespace": None},
    "gw.ReferenceGrantTo": {"group": None, "kind": None, "name": None},
    # --- Kubernetes
    "k8s.LabelSelector": {"matchLabels": None, "matchExpressions": "k8s.LabelSelectorRequirement"},
    "k8s.LabelSelectorRequirement": {"key": None, "operator": None, "values": None},
    "core.ServiceSpec": {
        "ports": "core.ServicePort", "selector": None, "clusterIP": None, "clusterIPs": None, "type": None,
        "externalIPs": None, "sessionAffinity": None, "loadBalancerIP": None, "loadBalancerSourceRanges": None,
        "externalName": None, "externalTrafficPolicy": None, "healthCheckNodePort": None,
        "publishNotReadyAddresses": None, "sessionAffinityConfig": "core.SessionAffinityConfig",
        "ipFamilies": None, "ipFamilyPolicy": None, "allocateLoadBalancerNodePorts": None,
        "loadBalancerClass": None, "internalTrafficPolicy": None, "trafficDistribution": None,
    },
    "core.ServicePort": {"name": None, "protocol": None, "appProtocol": None, "port": None, "targetPort": None,
                         "nodePort": None},
    "core.SessionAffinityConfig": {"clientIP": "core.ClientIPConfig"},
    "core.ClientIPConfig": {"timeoutSeconds": None},
    "discovery.EndpointSlice": {"addressType": None, "endpoints": "discovery.Endpoint", "ports": "discovery.EndpointPort"},
    "discovery.Endpoint": {"addresses": None, "conditions": "discovery.EndpointConditions", "hostname": None,
                           "targetRef": "core.ObjectReference", "deprecatedTopology": None, "nodeName": None,
                           "zone": None, "hints": "discovery.EndpointHints"},
    "discovery.EndpointConditions": {"ready": None, "serving": None, "terminating": None},
    "discovery.EndpointHints": {"forZones": "discovery.ForZone", "forNodes": "discovery.ForNode"},
    "discovery.ForZone": {"name": None},
    "discovery.ForNode": {"name": None},
    "discovery.EndpointPort": {"name": None, "protocol": None, "port": None, "appProtocol": None},
    "core.ObjectReference": {"kind": None, "namespace": None, "name": None, "uid": None, "apiVersion": None,
                             "resourceVersion": None, "fieldPath": None},
    "core.Secret": {"data": None, "stringData": None, "type": None, "immutable": None},
}

#: getambassador.io v3alpha1 and v2 merged (a field known in either version is known): emissary-ingress/emissary
#: pkg/api/getambassador.io/{v3alpha1,v2}/*.go JSON tags; "IR-only" entries are keys Emissary's Python IR reads
#: that the Go structs do not declare (most Module keys, health-check details)
_TYPES.update({
    # ---- roots (spec of each kind) -------------------------------------------

    # ---- Mapping --------------------------------------------------------------
    # v3alpha1.MappingSpec + v2.MappingSpec (crd_mapping.go)
    "emissary.MappingSpec": {
        "ambassador_id": None,            # AmbassadorID: string or []string
        "prefix": None,
        "prefix_regex": None,
        "prefix_exact": None,
        "service": None,
        "add_request_headers": None,      # map[string]AddedHeader (string | {value, append})
        "add_response_headers": None,     # map[string]AddedHeader
        "add_linkerd_headers": None,
        "auto_host_rewrite": None,
        "case_sensitive": None,
        "dns_type": None,
        "docs": "emissary.DocsInfo",
        "enable_ipv4": None,
        "enable_ipv6": None,
        "circuit_breakers": "emissary.CircuitBreaker",   # []*CircuitBreaker
        "keepalive": "emissary.KeepAlive",
        "cors": "emissary.CORS",
        "retry_policy": "emissary.RetryPolicy",
        "respect_dns_ttl": None,
        "grpc": None,
        "host_redirect": None,
        "host_rewrite": None,
        "method": None,
        "method_regex": None,
        "outlier_detection": None,
        "path_redirect": None,
        "prefix_redirect": None,
        "regex_redirect": "emissary.RegexMap",
        "redirect_response_code": None,
        "priority": None,
        "precedence": None,
        "cluster_tag": None,
        "remove_request_headers": None,   # []string (v2: string or []string)
        "remove_response_headers": None,
        "resolver": None,
        "rewrite": None,
        "regex_rewrite": "emissary.RegexMap",
        "shadow": None,
        "connect_timeout_ms": None,
        "cluster_idle_timeout_ms": None,
        "cluster_max_connection_lifetime_ms": None,
        "timeout_ms": None,
        "idle_timeout_ms": None,
        "tls": None,                      # v3alpha1: string; v2: BoolOrString
        "health_checks": "emissary.HealthCheck",         # v3alpha1 []HealthCheck
        "v3health_checks": "emissary.HealthCheck",       # v2 round-trip spelling
        "use_websocket": None,
        "allow_upgrade": None,
        "weight": None,
        "bypass_auth": None,
        "auth_context_extensions": None,  # map[string]string
        "bypass_error_response_overrides": None,
        "error_response_overrides": "emissary.ErrorResponseOverride",
        "modules": None,                  # []UntypedDict
        "host": None,                     # deprecated in v3alpha1 (DeprecatedHost)
        "host_regex": None,
        "hostname": None,                 # v3alpha1 only
        "headers": None,                  # map[string]string (v2: BoolOrString)
        "regex_headers": None,
        "labels": None,                   # DomainMap (free-form nested rate-limit labels)
        "envoy_override": None,           # UntypedDict
        "load_balancer": "emissary.LoadBalancer",
        "query_parameters": None,
        "regex_query_parameters": None,
        "stats_name": None,               # v3alpha1
        "v3StatsName": None,              # v2 round-trip spelling
        "v2ExplicitTLS": "emissary.V2ExplicitTLS",
        "v2BoolHeaders": None,
        "v2BoolQueryParameters": None,
    },
    # v3alpha1.RegexMap / v2.RegexMap (crd_mapping.go)
    "emissary.RegexMap": {"pattern": None, "substitution": None},
    # v3alpha1.DocsInfo / v2.DocsInfo (crd_mapping.go)
    "emissary.DocsInfo": {"path": None, "url": None, "ignored": None,
                          "display_name": None, "timeout_ms": None},
    # v3alpha1.AddedHeader / v2.AddedHeaderFull (crd_mapping.go) -- object form only
    "emissary.AddedHeader": {"value": None, "append": None, "v2Representation": None},
    # v3alpha1.KeepAlive / v2.KeepAlive (crd_mapping.go)
    "emissary.KeepAlive": {"probes": None, "idle_time": None, "interval": None},
    # v3alpha1.CORS / v2.CORS (crd_mapping.go)
    "emissary.CORS": {
        "origins": None,          # []string (v2: string comma-separated or []string)
        "methods": None,          # v2: StringOrStringList
        "headers": None,
        "credentials": None,
        "exposed_headers": None,
        "max_age": None,
        "v2CommaSeparatedOrigins": None,
    },
    # v3alpha1.RetryPolicy / v2.RetryPolicy (crd_mapping.go)
    "emissary.RetryPolicy": {
        "retry_on": None,
        "num_retries": None,
        "per_try_timeout": None,
        "retry_back_off": "emissary.RetryBackOff",
    },
    # v3alpha1.RetryBackOff / v2.RetryBackOff (crd_mapping.go, newer commits)
    "emissary.RetryBackOff": {"base_interval": None, "max_interval": None},
    # v3alpha1.LoadBalancer / v2.LoadBalancer (crd_mapping.go)
    "emissary.LoadBalancer": {
        "policy": None,
        "cookie": "emissary.LoadBalancerCookie",
        "header": None,
        "source_ip": None,
    },
    # v3alpha1.LoadBalancerCookie / v2.LoadBalancerCookie (crd_mapping.go)
    "emissary.LoadBalancerCookie": {"name": None, "path": None, "ttl": None},
    # v3alpha1.CircuitBreaker / v2.CircuitBreaker (common.go)
    "emissary.CircuitBreaker": {
        "priority": None,
        "max_connections": None,
        "max_pending_requests": None,
        "max_requests": None,
        "max_retries": None,
    },
    # v3alpha1.ErrorResponseOverride (common.go)
    "emissary.ErrorResponseOverride": {
        "on_status_code": None,
        "body": "emissary.ErrorResponseOverrideBody",
    },
    # v3alpha1.ErrorResponseOverrideBody (common.go)
    "emissary.ErrorResponseOverrideBody": {
        "text_format": None,
        "json_format": None,      # map[string]string
        "text_format_source": "emissary.ErrorResponseTextFormatSource",
        "content_type": None,
    },
    # v3alpha1.ErrorResponseTextFormatSource (common.go)
    "emissary.ErrorResponseTextFormatSource": {"filename": None},
    # v3alpha1.V2ExplicitTLS (common.go)
    "emissary.V2ExplicitTLS": {"tls": None, "serviceScheme": None},
    # v3alpha1.HealthCheck (Go struct not located in the index; keys taken from
    # python/ambassador/src/ambassador/ir/irhealthchecks.py, which reads them)
    "emissary.HealthCheck": {
        "unhealthy_threshold": None,
        "healthy_threshold": None,
        "interval": None,          # duration string, IR default "5s"
        "timeout": None,           # duration string, IR default "3s"
        "health_check": "emissary.HealthCheckSpecifier",
    },
    # v3alpha1.HealthCheckSpecifier (per irhealthchecks.py: exactly one of grpc/http)
    "emissary.HealthCheckSpecifier": {
        "grpc": "emissary.GRPCHealthCheck",
        "http": "emissary.HTTPHealthCheck",
    },
    # v3alpha1.GRPCHealthCheck (per irhealthchecks.py)
    "emissary.GRPCHealthCheck": {"upstream_name": None, "authority": None},
    # v3alpha1.HTTPHealthCheck (per irhealthchecks.py)
    "emissary.HTTPHealthCheck": {
        "path": None,
        "hostname": None,
        "remove_request_headers": None,
        "add_request_headers": None,      # map[string]AddedHeader
        "expected_statuses": "emissary.HealthCheckStatusRange",
    },
    # v3alpha1.HealthCheckStatusRange (per irhealthchecks.py; inclusive min..max)
    "emissary.HealthCheckStatusRange": {"min": None, "max": None},

    # ---- Host -----------------------------------------------------------------
    # v3alpha1.HostSpec / v2.HostSpec (crd_host.go, host_types.go)
    "emissary.HostSpec": {
        "ambassador_id": None,
        "hostname": None,
        "selector": "emissary.LabelSelector",          # deprecated
        "mappingSelector": "emissary.LabelSelector",
        "acmeProvider": "emissary.ACMEProviderSpec",
        "tlsSecret": "emissary.SecretReference",
        "requestPolicy": "emissary.RequestPolicy",
        "previewUrl": "emissary.PreviewURLSpec",
        "tlsContext": "emissary.LocalObjectReference",
        "tls": "emissary.TLSConfig",
    },
    # metav1.LabelSelector
    "emissary.LabelSelector": {
        "matchLabels": None,                           # map[string]string
        "matchExpressions": "emissary.LabelSelectorRequirement",
    },
    # metav1.LabelSelectorRequirement
    "emissary.LabelSelectorRequirement": {"key": None, "operator": None, "values": None},
    # corev1.SecretReference
    "emissary.SecretReference": {"name": None, "namespace": None},
    # corev1.LocalObjectReference
    "emissary.LocalObjectReference": {"name": None},
    # v3alpha1.ACMEProviderSpec (crd_host.go)
    "emissary.ACMEProviderSpec": {
        "authority": None,
        "email": None,
        "privateKeySecret": "emissary.LocalObjectReference",
        "registration": None,
    },
    # v3alpha1.RequestPolicy (crd_host.go)
    "emissary.RequestPolicy": {"insecure": "emissary.InsecureRequestPolicy"},
    # v3alpha1.InsecureRequestPolicy (crd_host.go)
    "emissary.InsecureRequestPolicy": {"action": None, "additionalPort": None},
    # v3alpha1.PreviewURLSpec (crd_host.go)
    "emissary.PreviewURLSpec": {"enabled": None, "type": None},
    # v3alpha1.TLSConfig (crd_host.go) -- inline Host.spec.tls
    "emissary.TLSConfig": {
        "cert_chain_file": None,
        "private_key_file": None,
        "ca_secret": None,
        "cacert_chain_file": None,
        "crl_secret": None,
        "alpn_protocols": None,
        "cert_required": None,
        "min_tls_version": None,
        "max_tls_version": None,
        "cipher_suites": None,
        "ecdh_curves": None,
        "redirect_cleartext_from": None,
        "sni": None,
    },

    # ---- TLSContext -----------------------------------------------------------
    # v3alpha1.TLSContextSpec / v2.TLSContextSpec (crd_tlscontext.go)
    "emissary.TLSContextSpec": {
        "ambassador_id": None,
        "hosts": None,
        "secret": None,
        "cert_chain_file": None,
        "private_key_file": None,
        "ca_secret": None,
        "cacert_chain_file": None,
        "crl_secret": None,
        "alpn_protocols": None,
        "cert_required": None,
        "min_tls_version": None,
        "max_tls_version": None,
        "cipher_suites": None,
        "ecdh_curves": None,
        "signature_algorithms": None,
        "secret_namespacing": None,
        "redirect_cleartext_from": None,
        "sni": None,
    },

    # ---- Module ---------------------------------------------------------------
    # v3alpha1.ModuleSpec / v2.ModuleSpec (crd_module.go). config is free-form
    # (UntypedDict) except for the Module named "ambassador" -> emissary.AmbassadorConfig.
    "emissary.ModuleSpec": {"ambassador_id": None, "config": "emissary.AmbassadorConfig"},
    # v3alpha1.AmbassadorConfigSpec (crd_module.go) + IR-only keys read by
    # python/ambassador/src/ambassador/ir/irambassador.py (AModTransparentKeys etc.)
    "emissary.AmbassadorConfig": {
        # Go struct AmbassadorConfigSpec
        "ambassador_id": None,
        "admin_port": None,
        "diag_port": None,
        "server_name": None,
        "service_port": None,
        "features": "emissary.Features",
        "lua_scripts": None,
        "envoy_log_type": None,
        "envoy_log_path": None,
        "load_balancer": "emissary.LoadBalancer",
        "circuit_breakers": "emissary.CircuitBreaker",  # Go: single struct; IR: list
        "error_response_overrides": "emissary.ErrorResponseOverride",
        "header_case_overrides": None,
        "retry_policy": "emissary.RetryPolicy",
        "cors": "emissary.CORS",
        "cluster_request_timeout_ms": None,
        "cluster_idle_timeout_ms": None,
        "cluster_max_connection_lifetime_ms": None,
        "regex_type": None,
        "regex_max_size": None,
        # IR-only (irambassador.py AModTransparentKeys and explicit handling)
        "add_linkerd_headers": None,
        "auth_enabled": None,
        "allow_chunked_length": None,
        "buffer_limit_bytes": None,
        "debug_mode": None,
        "default_label_domain": None,
        "default_labels": None,
        "defaults": None,               # free-form {class: {key: value}}
        "diagnostics": None,
        "enable_http10": None,
        "enable_ipv4": None,
        "enable_ipv6": None,
        "envoy_log_format": None,
        "envoy_validation_timeout": None,
        "forward_client_cert_details": None,
        "headers_with_underscores_action": None,
        "keepalive": "emissary.KeepAlive",
        "listener_idle_timeout_ms": None,
        "liveness_probe": None,
        "readiness_probe": None,
        "max_request_headers_kb": None,
        "merge_slashes": None,
        "reject_requests_with_escaped_slashes": None,
        "preserve_external_request_id": None,
        "proper_case": None,
        "prune_unreachable_routes": None,
        "resolver": None,
        "runtime_flags": None,
        "set_current_client_cert_details": None,
        "statsd": None,
        "strip_matching_host_port": None,
        "suppress_envoy_headers": None,
        "use_ambassador_namespace_for_service_resolution": None,
        "use_proxy_proto": None,
        "use_remote_address": None,
        "x_forwarded_proto_redirect": None,
        "xff_num_trusted_hops": None,
        "enable_grpc_http11_bridge": None,
        "enable_grpc_web": None,
        "grpc_stats": "emissary.GRPCStats",
        "gzip": None,
        "buffer": None,
        "ip_allow": None,
        "ip_deny": None,
    },
    # IR-only: irambassador.py grpc_stats handling
    "emissary.GRPCStats": {"all_methods": None, "services": None, "upstream_stats": None},
    # v3alpha1.Features (crd_module.go)
    "emissary.Features": {
        "diagnostics": None,
        "linkerd_headers": None,
        "grpc_http11_bridge": None,
        "grpc_web": None,
        "http10": None,
        "ipv4_dns": None,
        "ipv6_dns": None,
        "liveness_probe": None,
        "readiness_probe": None,
        "xff_num_trusted_hops": None,
        "proxy_proto": None,
        "remote_address": None,
        "x_forwarded_proto_redirect": None,
    },

    # ---- Listener -------------------------------------------------------------
    # v3alpha1.ListenerSpec (listener_types.go)
    "emissary.ListenerSpec": {
        "ambassador_id": None,
        "port": None,
        "protocol": None,
        "protocolStack": None,
        "securityModel": None,
        "l7Depth": None,
        "hostBinding": "emissary.HostBindingType",
    },
    # v3alpha1.HostBindingType (listener_types.go)
    "emissary.HostBindingType": {
        "namespace": "emissary.NamespaceBindingType",
        "selector": "emissary.LabelSelector",
    },
    # v3alpha1.NamespaceBindingType (listener_types.go)
    "emissary.NamespaceBindingType": {"from": None}
})

ISTIO_GROUP = "networking.istio.io"
EMISSARY_GROUP = "getambassador.io"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

#: (group, kind) -> (type of the payload, whether the payload is the spec or the top level of the document)
_ROOTS: dict[tuple[str, str], tuple[str, bool]] = {
    (ISTIO_GROUP, "Gateway"): ("istio.Gateway", True),
    (ISTIO_GROUP, "VirtualService"): ("istio.VirtualService", True),
    (ISTIO_GROUP, "DestinationRule"): ("istio.DestinationRule", True),
    (ISTIO_GROUP, "ServiceEntry"): ("istio.ServiceEntry", True),
    (GATEWAY_API_GROUP, "Gateway"): ("gw.GatewaySpec", True),
    (GATEWAY_API_GROUP, "GRPCRoute"): ("gw.GRPCRouteSpec", True),
    (GATEWAY_API_GROUP, "HTTPRoute"): ("gw.HTTPRouteSpec", True),
    (GATEWAY_API_GROUP, "ReferenceGrant"): ("gw.ReferenceGrantSpec", True),
    (EMISSARY_GROUP, "Mapping"): ("emissary.MappingSpec", True),
    (EMISSARY_GROUP, "Host"): ("emissary.HostSpec", True),
    (EMISSARY_GROUP, "TLSContext"): ("emissary.TLSContextSpec", True),
    (EMISSARY_GROUP, "Module"): ("emissary.ModuleSpec", True),
    (EMISSARY_GROUP, "Listener"): ("emissary.ListenerSpec", True),
    ("", "Service"): ("core.ServiceSpec", True),
    ("discovery.k8s.io", "EndpointSlice"): ("discovery.EndpointSlice", False),
    ("", "Secret"): ("core.Secret", False),
}
#: top-level keys every document may have
_DOCUMENT_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
_SNAKE = re.compile(r"_([a-z0-9])")


def known(*, group: str, kind: str) -> bool:
    """Whether this module has a field tree for ``group``/``kind``."""
    return (group, kind) in _ROOTS


def unknown_fields(*, group: str, kind: str, doc_or_spec: Mapping[str, Any]) -> list[str]:
    """Full paths (``spec.http[0].retry``) of the keys ``group``/``kind`` does not define.

    ``doc_or_spec`` is the whole document (it has ``apiVersion`` or ``kind``; its top-level keys are
    checked too, so ``sepc:`` is caught) or just the spec.  Unknown kinds give ``[]``.
    """
    root = _ROOTS.get((group, kind))
    if root is None or not isinstance(doc_or_spec, Mapping):
        return []
    type_name, under_spec = root
    out: list[str] = []
    is_doc = "apiVersion" in doc_or_spec or "kind" in doc_or_spec
    if not under_spec:
        if is_doc:
            payload = {k: v for k, v in doc_or_spec.items() if k not in _DOCUMENT_KEYS or k == "spec"}
        else:
            payload = doc_or_spec
        _walk(payload, type_name, "", out)
        return out
    if is_doc:
        out.extend(k if isinstance(k, str) else repr(k) for k in doc_or_spec if k not in _DOCUMENT_KEYS)
        spec = doc_or_spec.get("spec")
    else:
        spec = doc_or_spec
    if isinstance(spec, Mapping):
        _walk(spec, type_name, "spec", out)
    return out


_NOT_FOUND = object()


def _walk(value: Mapping[str, Any], type_name: str, path: str, out: list[str]) -> None:
    """Append the path of every key of ``value`` (a ``type_name``) that the API does not have.  Paths are
    built only where one is reported or descended into: this runs over every object of every build."""
    fields = _TYPES[type_name]
    for key, child in value.items():
        if key.__class__ is not str:
            out.append(f"{path}.{key}" if path else str(key))
            continue
        sub = fields.get(key, _NOT_FOUND)
        if sub is _NOT_FOUND:
            camel = _SNAKE.sub(lambda m: m.group(1).upper(), key) if "_" in key else None
            if camel is None or camel not in fields:
                out.append(f"{path}.{key}" if path else key)
                continue
            sub = fields[camel]
        if sub is None or child is None:
            continue
        kind = child.__class__
        if sub.startswith("map:"):
            if kind is dict:
                for name, item in child.items():
                    if item.__class__ is dict:
                        _walk(item, sub[4:], f"{path}.{key}.{name}", out)
            continue
        if kind is dict:
            _walk(child, sub, f"{path}.{key}" if path else key, out)
        elif kind is list:
            for i, item in enumerate(child):
                if item.__class__ is dict:
                    _walk(item, sub, f"{path}.{key}[{i}]", out)


def fields_of(type_name: str) -> frozenset[str]:
    """The field names of one type of the trees (``emissary.MappingSpec``); empty for an unknown type."""
    return frozenset(_TYPES.get(type_name, ()))
