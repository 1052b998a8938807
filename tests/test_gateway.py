"""The gateway's routing: /api/<provider>/<path> → https://<provider host>/<path>, and the base
URLs `seks env --gateway` hands SDKs."""

from __future__ import annotations

import pytest
import yaml
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow, tutils

from seks.addon.gateway import (
    GatewayRouteUnknown,
    base_url_variables,
    gateway_mode,
    is_gateway,
    route_gateway,
)
from seks.addon.providers import BUILTIN
from seks.config import Config, parse_config
from seks.errors import ConfigError


def gateway_flow(path: str, mode: str = gateway_mode("127.0.0.1", 8081)) -> tflow.HTTPFlow:
    flow = tflow.tflow(
        req=tutils.treq(scheme=b"http", host="127.0.0.1", port=8081, path=path.encode())
    )
    flow.client_conn.proxy_mode = ProxyMode.parse(mode)
    return flow


def test_a_gateway_request_goes_to_its_provider_host_over_https() -> None:
    flow = gateway_flow("/api/openai/v1/chat/completions?x=1")
    assert is_gateway(flow)
    assert route_gateway(flow, BUILTIN).name == "openai"
    req = flow.request
    assert (req.scheme, req.host, req.port, req.path) == (
        "https",
        "api.openai.com",
        443,
        "/v1/chat/completions?x=1",
    )
    assert req.host_header == "api.openai.com"


def test_the_first_fixed_host_of_a_provider_is_used() -> None:
    flow = gateway_flow("/api/github/repos/o/r")
    route_gateway(flow, BUILTIN)
    assert (flow.request.host, flow.request.path) == ("api.github.com", "/repos/o/r")


@pytest.mark.parametrize("mode", ["regular", "reverse:https://api.openai.com@8081"])
def test_other_listeners_are_not_the_gateway(mode: str) -> None:
    assert not is_gateway(gateway_flow("/api/openai/v1", mode))


@pytest.mark.parametrize("path", ["/", "/v1/models", "/api/", "/api/nope/v1", "/apiopenai/v1"])
def test_paths_outside_a_provider_are_refused_naming_the_known_ones(path: str) -> None:
    with pytest.raises(GatewayRouteUnknown, match="openai") as e:
        route_gateway(gateway_flow(path), BUILTIN)
    assert (e.value.status, e.value.type) == (404, "seks_gateway_route_unknown")


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        ("PUT", "/api/aws/s3/eu-west-1/my-bucket/dir/a%20b.txt", "/my-bucket/dir/a%20b.txt"),
        ("GET", "/api/aws/s3/eu-west-1/my-bucket", "/my-bucket?list-type=2"),
        (
            "GET",
            "/api/aws/s3/eu-west-1/my-bucket?prefix=d%2F",
            "/my-bucket?list-type=2&prefix=d%2F",
        ),
        ("PUT", "/api/aws/s3/eu-west-1/my-bucket", "/my-bucket"),
        ("DELETE", "/api/aws/s3/eu-west-1/my.bucket/k", "/my.bucket/k"),
    ],
)
def test_the_s3_shape_goes_path_style_to_the_regional_endpoint(
    method: str, path: str, target: str
) -> None:
    flow = gateway_flow(path)
    flow.request.method = method
    assert route_gateway(flow, BUILTIN).name == "aws"
    req = flow.request
    assert (req.scheme, req.host, req.host_header, req.path) == (
        "https",
        "s3.eu-west-1.amazonaws.com",
        "s3.eu-west-1.amazonaws.com",
        target,
    )


@pytest.mark.parametrize(
    "path",
    ["/api/aws/s3/moon/b/k", "/api/aws/s3/eu-west-1/B!/k", "/api/aws/sqs/eu-west-1/q", "/api/aws/"],
)
def test_other_aws_shapes_are_refused_naming_the_one_served(path: str) -> None:
    with pytest.raises(GatewayRouteUnknown, match=r"/api/aws/s3/<region>/<bucket>\[/<key>\] only"):
        route_gateway(gateway_flow(path), BUILTIN)


def test_base_urls_point_sdks_at_the_gateway() -> None:
    urls = base_url_variables(BUILTIN, "http://127.0.0.1:8081")
    assert urls["OPENAI_BASE_URL"] == "http://127.0.0.1:8081/api/openai/v1"
    assert urls["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8081/api/anthropic"
    assert urls["GROQ_BASE_URL"] == "http://127.0.0.1:8081/api/groq"
    assert urls["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:8081/api/gemini"


def test_gateway_listen_defaults_to_loopback_8081_and_can_be_moved_or_turned_off() -> None:
    def parse(text: str) -> Config:
        return parse_config(yaml.safe_load(text), known_providers=tuple(BUILTIN))

    assert Config().gateway_url == "http://127.0.0.1:8081"
    assert parse("gateway_listen: '[::1]:9000'").gateway_url == "http://[::1]:9000"
    assert parse("gateway_listen: null").gateway_url is None
    with pytest.raises(ConfigError, match="gateway_listen: port must be a number"):
        parse("gateway_listen: 'localhost:http'")
    with pytest.raises(ConfigError, match="gateway_listen: expected HOST:PORT"):
        parse("gateway_listen: 8081")
