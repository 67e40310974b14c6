"""sovereign template (python://) for CDS: per instance, the same clusters as xds-server makes for a ServiceEntry
and its DestinationRule (``outbound|PORT||HOST`` plus one per subset), STATIC with the endpoints inline (REST EDS
would be one HTTP poll per cluster)."""


def _lb_endpoints(endpoints):
    return [{"endpoint": {"address": {"socket_address": {"address": e["address"], "port_value": e["port"]}}},
             "load_balancing_weight": 1} for e in endpoints]


def _cluster(name, endpoints):
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": {"thresholds": [{"max_connections": 4294967295, "max_pending_requests": 4294967295,
                                             "max_requests": 4294967295, "max_retries": 4294967295}]},
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {},
                "explicit_http_config": {"http2_protocol_options": {
                    "connection_keepalive": {"interval": "30s", "timeout": "10s"}}}}},
        "load_assignment": {"cluster_name": name, "endpoints": [
            {"locality": {}, "lb_endpoints": _lb_endpoints(endpoints), "load_balancing_weight": len(endpoints)}]
            if endpoints else []},
    }


def call(instances, **kwargs):
    for inst in instances:
        host, port, eps = inst["host"], inst["port"], inst["endpoints"]
        yield _cluster(f"outbound|{port}||{host}", eps)
        for subset in inst["subsets"]:
            want = subset["labels"].items()
            yield _cluster(f"outbound|{port}|{subset['name']}|{host}",
                           [e for e in eps if want <= e["labels"].items()])
