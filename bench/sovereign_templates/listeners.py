"""sovereign template (python://) for LDS: the gateway listener, as xds-server makes it, with RDS over REST."""


def call(gateway_port, sovereign_cluster="sovereign", **kwargs):
    name = f"0.0.0.0_{gateway_port}"
    yield {
        "name": name,
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": gateway_port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "rds": {"config_source": {"resource_api_version": "V3", "api_config_source": {
                    "api_type": "REST", "transport_api_version": "V3", "cluster_names": [sovereign_cluster],
                    "refresh_delay": "0.1s", "request_timeout": "30s"}},
                    "route_config_name": f"http.{gateway_port}"},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                "http2_protocol_options": {"connection_keepalive": {"interval": "30s", "timeout": "10s"}},
                "use_remote_address": True,
                "stream_idle_timeout": "0s",
                "strip_any_host_port": True}}]}],
    }
