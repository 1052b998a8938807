"""Destination checks: a token goes only to its provider's hosts, and SNI and Host agree."""

from __future__ import annotations

import pytest

from seks.addon.policy import check_destination, host_of_authority
from seks.addon.providers import BUILTIN, Provider
from seks.errors import HostNotAllowed, RequestRefused

OPENAI = BUILTIN["openai"]


@pytest.mark.parametrize(
    ("authority", "host"),
    [
        ("api.openai.com", "api.openai.com"),
        ("api.openai.com:443", "api.openai.com"),
        ("API.OpenAI.com:8443", "api.openai.com"),
        ("api.openai.com.", "api.openai.com"),
        ("api.openai.com.:443", "api.openai.com"),
        ("127.0.0.1:8443", "127.0.0.1"),
        ("[::1]:443", "::1"),
        # userinfo is not part of the host: the name after '@' is where it points
        ("api.openai.com@evil.example.com", "evil.example.com"),
    ],
)
def test_host_of_authority(authority: str, host: str) -> None:
    assert host_of_authority(authority) == host


@pytest.mark.parametrize("authority", ["", ":443", "[::1", "[not-an-ip]:443", "@"])
def test_host_of_garbage_authority_is_none(authority: str) -> None:
    assert host_of_authority(authority) is None


@pytest.mark.parametrize(
    ("connect_host", "sni", "host_header"),
    [
        ("api.openai.com", "api.openai.com", "api.openai.com"),
        ("api.openai.com", "api.openai.com", "api.openai.com:443"),
        ("api.openai.com", None, None),  # no SNI (plain HTTP) and no Host (HTTP/2 without it)
        ("API.OPENAI.COM", "api.openai.com", "Api.OpenAI.com"),
        ("api.openai.com.", "api.openai.com.", "api.openai.com."),
    ],
)
def test_provider_host_with_agreeing_names_is_allowed(
    connect_host: str, sni: str | None, host_header: str | None
) -> None:
    check_destination(OPENAI, connect_host, sni, host_header)  # no exception


@pytest.mark.parametrize(
    "connect_host",
    ["evil.example.com", "evilapi.openai.com", "api.openai.com.evil.example.com", "127.0.0.1"],
)
def test_other_destination_is_refused_naming_the_allowed_hosts(connect_host: str) -> None:
    with pytest.raises(HostNotAllowed) as e:
        check_destination(OPENAI, connect_host, connect_host, connect_host)
    message = str(e.value)
    assert "api.openai.com" in message  # what the token is for
    assert connect_host in message  # and where it was going
    assert (e.value.status, e.value.type, e.value.reason) == (
        403,
        "seks_host_not_allowed",
        "host_not_allowed",
    )


def test_every_allowed_host_is_named() -> None:
    multi = Provider("gw", ("a.example.com", "*.b.example.com"), (), "GW_KEY")
    with pytest.raises(HostNotAllowed, match=r"a\.example\.com, \*\.b\.example\.com"):
        check_destination(multi, "evil.example.com", None, None)


@pytest.mark.parametrize("sni", ["evil.example.com", "api.anthropic.com", "api.openai.co", ""])
def test_sni_disagreeing_with_the_destination_is_refused(sni: str) -> None:
    with pytest.raises(HostNotAllowed, match="TLS server name"):
        check_destination(OPENAI, "api.openai.com", sni, "api.openai.com")


@pytest.mark.parametrize(
    "host_header",
    [
        "evil.example.com",
        "evil.example.com:443",
        "api.openai.com@evil.example.com",
        "api.openai.com.evil.example.com",
        "evilapi.openai.com",
    ],
)
def test_host_header_disagreeing_with_the_destination_is_refused(host_header: str) -> None:
    with pytest.raises(HostNotAllowed, match="Host header"):
        check_destination(OPENAI, "api.openai.com", "api.openai.com", host_header)


@pytest.mark.parametrize(
    "host_header", ["", ":443", "[::1", " ", "api.openai.com evil.example.com"]
)
def test_garbage_host_header_is_refused_not_crashed_on(host_header: str) -> None:
    with pytest.raises(RequestRefused) as e:
        check_destination(OPENAI, "api.openai.com", "api.openai.com", host_header)
    assert isinstance(e.value, HostNotAllowed)
