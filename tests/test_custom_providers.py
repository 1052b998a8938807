"""Custom providers in config.yaml: each key validated with an error that names it, and a valid
definition working like a built-in provider."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from seks.addon.inject import find_tokens, require_place
from seks.addon.providers import BUILTIN, CredentialPlace
from seks.config import Config, parse_config
from seks.errors import ConfigError, TokenMisplaced
from seks.store.tokens import mint


def parse(text: str) -> Config:
    return parse_config(yaml.safe_load(text), known_providers=tuple(BUILTIN))


def acme(**fields: Any) -> str:
    body = {"hosts": ["api.acme.example"], "place": "header", "header": "X-Acme-Key"} | fields
    return yaml.safe_dump({"providers": {"acme": {k: v for k, v in body.items() if v is not None}}})


def test_a_custom_header_provider_joins_the_built_in_ones() -> None:
    config = parse(acme(hosts=["api.acme.example", "*.acme.example"], format="Token {secret}"))
    provider = config.all_providers["acme"]
    assert set(config.all_providers) == set(BUILTIN) | {"acme"}
    assert provider.custom
    assert provider.serves("eu.acme.example") and not provider.serves("acme.example")
    assert provider.places == (CredentialPlace("x-acme-key", "Token"),)
    assert provider.env_var == "ACME_API_KEY"
    token = mint("acme")
    (found,) = find_tokens([("X-Acme-Key", f"token {token}")], "/")
    assert require_place(provider, found) == provider.places[0]


@pytest.mark.parametrize(
    ("fields", "place"),
    [
        ({"place": "query", "header": None, "parameter": "api_key"}, ("query", "api_key")),
        ({"place": "path", "header": None, "format": "key-{secret}"}, ("path", "key-")),
        ({"place": "path", "header": None}, ("path", "")),
        ({"place": "basic", "header": None}, ("basic", "")),
        ({"format": "{secret}"}, ("header", "x-acme-key")),
    ],
)
def test_each_kind_of_place(fields: dict[str, Any], place: tuple[str, str]) -> None:
    (p,) = parse(acme(**fields)).all_providers["acme"].places
    assert (p.kind, p.name) == place


def test_a_query_token_of_a_custom_provider_is_placed_and_others_refused() -> None:
    provider = parse(acme(place="query", header=None, parameter="k")).all_providers["acme"]
    token = mint("acme")
    (found,) = find_tokens([], f"/v1?k={token}")
    assert require_place(provider, found).kind == "query"
    (found,) = find_tokens([], f"/v1?other={token}")
    with pytest.raises(TokenMisplaced, match=r"\?k=<key>"):
        require_place(provider, found)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hosts": None}, "providers.acme: unknown provider .*needs hosts"),
        ({"hosts": []}, r"providers.acme.hosts: expected a list"),
        ({"hosts": ["acme"]}, r"providers.acme.hosts: 'acme' is not a host name"),
        ({"hosts": ["*"]}, r"providers.acme.hosts: '\*' is not a host name"),
        ({"hosts": ["https://a.example"]}, "providers.acme.hosts: .* is not a host name"),
        ({"hosts": ["api.openai.com"]}, "hosts: api.openai.com is served by the built-in .*openai"),
        ({"hosts": ["*.github.com"]}, r"hosts: \*.github.com is served by the built-in .*github"),
        ({"place": "cookie"}, "providers.acme.place: must be one of header, query, path, basic"),
        ({"header": None}, "providers.acme.header: required for place: header"),
        ({"header": "Host"}, "providers.acme.header: 'Host' cannot carry a credential"),
        ({"header": "X Key"}, "providers.acme.header: 'X Key' cannot carry a credential"),
        ({"format": "Bearer"}, r"providers.acme.format: must hold \{secret\} exactly once"),
        ({"format": "{secret}{secret}"}, r"format: must hold \{secret\} exactly once"),
        ({"format": "Bearer{secret}"}, "providers.acme.format: for a header"),
        ({"format": "{secret} x"}, "providers.acme.format: for a header"),
        ({"parameter": "k"}, "providers.acme.parameter: only for place: query, not header"),
        ({"place": "query", "header": None}, "providers.acme.parameter: required"),
        (
            {"place": "query", "header": None, "parameter": "k", "format": "x{secret}"},
            "format: only",
        ),
        ({"place": "path", "header": None, "format": "a/{secret}"}, "acme.format: for a path"),
        ({"place": "basic"}, "providers.acme.header: only for place: header, not basic"),
        ({"env": "acme_key"}, "providers.acme.env: expected an upper-case variable name"),
        ({"env": "HTTPS_PROXY"}, "providers.acme.env: HTTPS_PROXY is set by seks env"),
        ({"env": "SEKS_MASTER_KEY"}, "providers.acme.env: SEKS_MASTER_KEY is set by seks env"),
        ({"env": "OPENAI_API_KEY"}, "providers.acme.env: OPENAI_API_KEY is already the variable"),
        ({"paths": ["api"]}, "providers.acme.paths: expected a list of path prefixes"),
        ({"colour": "red"}, "providers.acme.colour: unknown key"),
    ],
)
def test_invalid_definitions_name_the_key_and_the_problem(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(acme(**fields))


def test_a_bad_provider_name_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"providers\.Acme_1: a provider name is lower-case"):
        parse("providers:\n  Acme_1:\n    hosts: [a.example]\n    header: k\n")


def test_a_custom_provider_can_have_an_upstream() -> None:
    config = parse(acme(upstream="https://127.0.0.1:9443"))
    settings = config.providers["acme"]
    assert settings.upstream is not None and settings.upstream.port == 9443
    assert settings.custom is not None
