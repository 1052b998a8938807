"""Token limits as values: parsing what people type, and checking requests against them."""

from __future__ import annotations

import pytest

from seks.errors import ConfigError
from seks.limits import (
    Rate,
    RateWindow,
    TokenLimits,
    canonical_path,
    format_duration,
    ip_allowed,
    parse_cidr,
    parse_duration,
    parse_rate,
    parse_scope,
    scope_allows,
)

# -- scopes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "method", "path", "allowed"),
    [
        ("POST /v1/chat/completions", "POST", "/v1/chat/completions", True),
        ("POST /v1/chat/completions", "GET", "/v1/chat/completions", False),
        ("POST /v1/chat/completions", "POST", "/v1/chat/completions?stream=1", True),
        ("POST /v1/chat/completions", "POST", "/v1/chat/completions/x", False),
        ("POST /v1/chat/*", "POST", "/v1/chat/completions", True),
        # The trap: a prefix is not a segment.
        ("POST /v1/chat/*", "POST", "/v1/chat-evil", False),
        ("POST /v1/chat/*", "POST", "/v1/chat-evil/completions", False),
        ("POST /v1/chat/*", "POST", "/v1/chat", False),
        ("POST /v1/chat/*", "POST", "/v1/chat/a/b", False),
        ("GET /v1/models/gpt-*", "GET", "/v1/models/gpt-4o", True),
        ("GET /v1/models/gpt-*", "GET", "/v1/models/o1", False),
        ("GET /v1/models/gpt-*", "GET", "/v1/models/gpt-4o/x", False),
        ("* /v1/**", "DELETE", "/v1", True),
        ("* /v1/**", "GET", "/v1/files/abc/content", True),
        ("* /v1/**", "GET", "/v1-evil", False),
        ("* /v1/**", "GET", "/v1-evil/files", False),
        ("GET /v1/**/content", "GET", "/v1/content", True),
        ("GET /v1/**/content", "GET", "/v1/files/abc/content", True),
        ("GET /v1/**/content", "GET", "/v1/files/abc/contents", False),
        ("GET /", "GET", "/", True),
        ("GET /", "GET", "/x", False),
        # Matched decoded, as the upstream will read it.
        ("GET /v1/models/gpt-4o", "GET", "/v1/models/gpt%2D4o", True),
    ],
)
def test_scope_globs_match_whole_segments(
    scope: str, method: str, path: str, allowed: bool
) -> None:
    assert scope_allows((parse_scope(scope),), method, path) is allowed


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/../admin",
        "/v1/chat/./completions",
        "/v1/chat/%2e%2e/admin",
        "/v1/chat/%2E%2E/admin",
        "/v1/chat/..%2fadmin",
        "/v1/chat/x%2Fy",
        "/v1/chat/x%5Cy",
        "/v1/chat//completions",
        "/v1/chat/%00",
        "/v1/chat/%ff",
        "v1/chat/completions",
        "*",
    ],
)
def test_a_scoped_token_is_refused_on_a_path_a_server_could_normalise_elsewhere(
    path: str,
) -> None:
    assert canonical_path(path) is None
    assert not scope_allows(("* /**",), "GET", path)


def test_a_token_without_scopes_may_go_anywhere_its_provider_serves() -> None:
    assert scope_allows((), "DELETE", "/v1/../anything")


def test_any_of_several_scopes_may_allow() -> None:
    scopes = (parse_scope("GET /v1/models"), parse_scope("POST /v1/chat/*"))
    assert scope_allows(scopes, "GET", "/v1/models")
    assert scope_allows(scopes, "POST", "/v1/chat/completions")
    assert not scope_allows(scopes, "POST", "/v1/models")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("post /v1/chat/*", "POST /v1/chat/*"),
        ("  GET   /v1/models  ", "GET /v1/models"),
        ("* /**", "* /**"),
    ],
)
def test_scopes_are_stored_in_one_spelling(text: str, canonical: str) -> None:
    assert parse_scope(text) == canonical


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("FETCH /x", "'FETCH' is not an HTTP method"),
        ("/v1/chat", "is not a scope such as"),
        ("POST", "is not a scope such as"),
        ("POST v1/chat", "must start with '/'"),
        ("GET /v1/models?limit=1", "query"),
        ("GET /v1/**x", "'**' must be a whole segment"),
        ("GET /v1/a**", "'**' must be a whole segment"),
        ("GET /v1/../admin", "'..'"),
        ("GET /v1/%2e", "decoded"),
        ("GET /a /b", "is not a scope such as"),
    ],
)
def test_bad_scopes_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_scope(text)
    assert says in str(e.value)


# -- client networks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("127.0.0.1", "127.0.0.1/32"),
        ("fd00::/8", "fd00::/8"),
        ("::1", "::1/128"),
    ],
)
def test_networks_are_stored_in_one_spelling(text: str, canonical: str) -> None:
    assert parse_cidr(text) == canonical


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10.0.0.0/33", "is not a network"),
        ("10.0.0.256", "is not a network"),
        ("localhost", "is not a network"),
        ("", "is not a network"),
        ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
    ],
)
def test_bad_networks_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_cidr(text)
    assert says in str(e.value)


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", False),
        ("::ffff:127.0.0.1", True),  # an IPv4 client on a dual-stack listener
        ("10.1.2.3", True),
        ("11.0.0.1", False),
        ("fd00::1", True),
        ("fe80::1%eth0", False),
        ("not-an-address", False),
        (None, False),
    ],
)
def test_client_address_must_be_inside_an_allowed_network(peer: str | None, allowed: bool) -> None:
    nets = tuple(parse_cidr(c) for c in ("127.0.0.1", "10.0.0.0/8", "fd00::/8"))
    assert ip_allowed(nets, peer) is allowed


def test_no_networks_means_any_client() -> None:
    assert ip_allowed((), "203.0.113.9")


# -- rates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [("60/min", Rate(60, 60.0)), ("5/s", Rate(5, 1.0)), ("1000/h", Rate(1000, 3600.0))],
)
def test_rates_read_as_count_per_unit(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate
    assert str(rate) == text


@pytest.mark.parametrize("text", ["0/min", "10/day", "10", "-1/min", "1.5/min", "10 / min"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rate(text)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_window_lets_n_through_per_window_and_says_when_to_retry() -> None:
    clock = Clock()
    window = RateWindow(clock)
    rate = Rate(3, 60.0)

    assert [window.take("tok", rate) for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert window.take("tok", rate) == pytest.approx(40.0)  # the first one leaves at +60
    clock.now += 40
    assert window.take("tok", rate) is None
    assert window.take("tok", rate) is None  # the ones at +0 have all left
    assert window.take("tok", rate) is None
    assert window.take("tok", rate) is not None


def test_rate_window_is_sliding_not_fixed() -> None:
    clock = Clock()
    window = RateWindow(clock)
    rate = Rate(2, 60.0)
    window.take("tok", rate)
    clock.now += 59
    window.take("tok", rate)
    clock.now += 2  # a fixed minute would have reset here: 3 within 61 s is fine, 2 in 2 s not
    assert window.take("tok", rate) is None
    assert window.take("tok", rate) is not None


def test_refused_requests_do_not_count() -> None:
    clock = Clock()
    window = RateWindow(clock)
    rate = Rate(1, 10.0)
    window.take("tok", rate)
    for _ in range(100):
        clock.now += 0.05
        assert window.take("tok", rate) is not None
    clock.now = 1010.0
    assert window.take("tok", rate) is None


def test_rate_windows_are_per_token_and_forgotten_when_idle() -> None:
    clock = Clock()
    window = RateWindow(clock)
    rate = Rate(1, 10.0)
    assert window.take("a", rate) is None
    assert window.take("b", rate) is None
    assert window.take("a", rate) is not None
    clock.now += RateWindow.SWEEP_EVERY_S
    assert window.take("c", rate) is None
    assert len(window) == 1  # a and b had nothing left in their windows


# -- durations and the whole set ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("8h", 28800)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == text


def test_limits_parse_into_canonical_text() -> None:
    limits = TokenLimits.parse(
        max_uses=3,
        allow_ips=["10.0.0.0/8", "10.0.0.0/8", "127.0.0.1"],
        scopes=["post /v1/chat/*"],
        rate="10/min",
    )
    assert limits == TokenLimits(3, ("10.0.0.0/8", "127.0.0.1/32"), ("POST /v1/chat/*",), "10/min")


@pytest.mark.parametrize("uses", [0, -1, 10**10])
def test_max_uses_must_be_a_positive_count(uses: int) -> None:
    with pytest.raises(ConfigError, match="not a number of uses"):
        TokenLimits.parse(max_uses=uses)
