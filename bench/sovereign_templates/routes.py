"""sovereign template (python://) for RDS: one route configuration, one virtual host per instance, the same
routes as xds-server makes for the VirtualService (prefix match, weighted subsets, retry policy)."""

RETRY = {"retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
         "num_retries": 2, "host_selection_retry_max_attempts": "5", "retriable_status_codes": [503]}


def call(instances, gateway_port, **kwargs):
    vhosts = []
    for inst in instances:
        vs = inst["vhost"]
        host, port = inst["host"], inst["port"]
        split = vs["split"]
        if len(split) == 1:
            action = {"cluster": f"outbound|{port}|{split[0]['subset']}|{host}"}
        else:
            action = {"weighted_clusters": {"clusters": [
                {"name": f"outbound|{port}|{s['subset']}|{host}", "weight": s["weight"]} for s in split]}}
        action.update({"timeout": "0s", "retry_policy": dict(RETRY),
                       "max_stream_duration": {"grpc_timeout_header_max": "0s"}})
        vhosts.append({"name": f"{vs['domain']}:{gateway_port}", "domains": [vs["domain"]],
                       "routes": [{"match": {"prefix": vs["prefix"]}, "route": action,
                                   "name": f"default/{inst['name']}/http[0]"}]})
    yield {"name": f"http.{gateway_port}", "virtual_hosts": vhosts, "validate_clusters": False}
