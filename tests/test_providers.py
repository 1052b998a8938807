"""Providers: which hosts a provider serves, and the exact places its credential may sit."""

from __future__ import annotations

import pytest

from seks.addon.providers import BUILTIN, CredentialPlace, Provider, host_matches
from seks.store.tokens import mint

OPENAI = BUILTIN["openai"]
ANTHROPIC = BUILTIN["anthropic"]
GITHUB = BUILTIN["github"]


# -- host_matches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["api.openai.com", "API.OpenAI.COM", "api.openai.com.", "Api.Openai.Com."]
)
def test_exact_pattern_matches_the_name_in_any_case_and_with_a_trailing_dot(host: str) -> None:
    assert host_matches("api.openai.com", host)


@pytest.mark.parametrize(
    "host",
    [
        "evilapi.openai.com",  # suffix trick: shares the tail, not a label boundary
        "x.api.openai.com",  # an exact pattern covers no subdomain
        "api.openai.com.evil.example.com",
        "api.openai.co",
        "openai.com",
        "api-openai.com",
        "",
    ],
)
def test_exact_pattern_matches_nothing_else(host: str) -> None:
    assert not host_matches("api.openai.com", host)


@pytest.mark.parametrize(
    "host", ["a.example.com", "deep.a.example.com", "A.EXAMPLE.COM", "a.example.com."]
)
def test_wildcard_matches_any_subdomain(host: str) -> None:
    assert host_matches("*.example.com", host)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",  # the apex is not a subdomain
        "example.com.",
        ".example.com",  # an empty label is not a subdomain either
        "evilexample.com",  # suffix trick without a dot
        "a.example.com.evil.test",
        "example.org",
    ],
)
def test_wildcard_does_not_match_the_apex_or_lookalikes(host: str) -> None:
    assert not host_matches("*.example.com", host)


def test_pattern_case_does_not_matter() -> None:
    assert host_matches("*.Example.COM", "a.example.com")
    assert host_matches("API.openai.com", "api.openai.com")


def test_provider_serves_its_hosts_only() -> None:
    custom = Provider("azure", ("*.openai.azure.com", "gw.example.com"), (), "AZURE_KEY")
    assert custom.serves("myres.openai.azure.com")
    assert custom.serves("gw.example.com")
    assert not custom.serves("openai.azure.com")
    assert not custom.serves("api.openai.com")
    assert OPENAI.serves("api.openai.com")
    assert not OPENAI.serves("api.anthropic.com")


# -- credential places ------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
@pytest.mark.parametrize("header", ["authorization", "Authorization", "AUTHORIZATION"])
def test_openai_accepts_a_bearer_token_in_any_case(scheme: str, header: str) -> None:
    token = mint("openai")
    assert OPENAI.place_for(header, f"{scheme} {token}", token) == CredentialPlace(
        "authorization", "Bearer"
    )


@pytest.mark.parametrize("header", ["x-api-key", "X-Api-Key", "X-API-KEY"])
def test_anthropic_accepts_a_bare_x_api_key(header: str) -> None:
    token = mint("anthropic")
    assert ANTHROPIC.place_for(header, token, token) == CredentialPlace("x-api-key")


def test_anthropic_accepts_bearer_as_sdk_2_sends_it() -> None:
    token = mint("anthropic")
    place = ANTHROPIC.place_for("Authorization", f"Bearer {token}", token)
    assert place == CredentialPlace("authorization", "Bearer")


@pytest.mark.parametrize("scheme", ["token", "Token", "Bearer", "bearer"])
def test_github_accepts_token_and_bearer_schemes(scheme: str) -> None:
    token = mint("github")
    place = GITHUB.place_for("Authorization", f"{scheme} {token}", token)
    assert place is not None
    assert place.header == "authorization"
    assert place.scheme is not None
    assert place.scheme.lower() == scheme.lower()


@pytest.mark.parametrize(
    ("provider", "header", "value"),
    [
        # the token inside a longer value
        (OPENAI, "authorization", "Bearer {t} extra"),
        (OPENAI, "authorization", "Bearer {t}x"),
        (OPENAI, "authorization", "Bearer x{t}"),
        (OPENAI, "authorization", "Bearer  {t}"),
        (OPENAI, "authorization", "Bearer {t},Bearer {t}"),
        # no scheme, or the wrong one
        (OPENAI, "authorization", "{t}"),
        (OPENAI, "authorization", "Basic {t}"),
        (OPENAI, "authorization", "token {t}"),
        (OPENAI, "authorization", "Bearer"),
        (OPENAI, "authorization", ""),
        # another header
        (OPENAI, "x-debug", "Bearer {t}"),
        (OPENAI, "x-api-key", "{t}"),
        (OPENAI, "proxy-authorization", "Bearer {t}"),
        (OPENAI, "cookie", "session={t}"),
        # anthropic's bare place takes the bare value only
        (ANTHROPIC, "x-api-key", "Bearer {t}"),
        (ANTHROPIC, "x-api-key", " {t}"),
        (ANTHROPIC, "x-api-key", "{t} "),
        (ANTHROPIC, "x-api-key-2", "{t}"),
        (ANTHROPIC, "authorization", "{t}"),
        (GITHUB, "authorization", "Basic {t}"),
        (GITHUB, "x-github-token", "{t}"),
    ],
)
def test_a_token_anywhere_but_a_credential_place_has_no_place(
    provider: Provider, header: str, value: str
) -> None:
    token = mint(provider.name)
    assert provider.place_for(header, value.format(t=token), token) is None


def test_place_must_hold_this_token_not_another() -> None:
    token, other = mint("openai"), mint("openai")
    assert OPENAI.place_for("authorization", f"Bearer {other}", token) is None


def test_places_describe_themselves_without_any_value() -> None:
    assert CredentialPlace("authorization", "Bearer").describe() == "authorization: Bearer <key>"
    assert CredentialPlace("x-api-key").describe() == "x-api-key: <key>"


def test_builtin_providers_and_their_sdk_variables() -> None:
    assert {name: p.env_var for name, p in BUILTIN.items()} == {
        "openai": "OPENAI_API_KEY",
        "anthropic": "ANTHROPIC_API_KEY",
        "github": "GITHUB_TOKEN",
        "gemini": "GEMINI_API_KEY",
        "groq": "GROQ_API_KEY",
        "brave": "BRAVE_API_KEY",
        "notion": "NOTION_TOKEN",
        "cloudflare": "CLOUDFLARE_API_TOKEN",
        "discord": "DISCORD_BOT_TOKEN",
        "telegram": "TELEGRAM_BOT_TOKEN",
        "aws": "AWS_ACCESS_KEY_ID",
    }
    assert OPENAI.hosts == ("api.openai.com",)
    assert ANTHROPIC.hosts == ("api.anthropic.com",)
    assert GITHUB.hosts == ("api.github.com", "github.com")
    for p in BUILTIN.values():
        assert all(place.header == place.header.lower() for place in p.places if place.header)
