"""config.yaml: defaults, and one clear ConfigError naming the key for every bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from seks.addon.providers import BUILTIN
from seks.cli import cli
from seks.config import Config, ProviderSettings, Upstream, load_config, parse_config, parse_listen
from seks.errors import ConfigError

KNOWN = tuple(BUILTIN)


def parse(data: object, base: Path | None = None) -> Config:
    return parse_config(data, known_providers=KNOWN, base=base)


def load(path: Path, *, required: bool = True) -> Config:
    return load_config(path, known_providers=KNOWN, required=required)


def openai(**settings: object) -> Config:
    return parse({"providers": {"openai": settings}})


# -- defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, {}], ids=["empty-file", "empty-mapping"])
def test_an_empty_config_gives_the_defaults(data: object) -> None:
    config = parse(data)

    assert config == Config()
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 8080)
    assert config.intercept == "providers"
    assert config.providers == {}
    assert config.proxy_url == "http://127.0.0.1:8080"


def test_a_missing_optional_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load(tmp_path / "config.yaml", required=False) == Config()


def test_a_missing_required_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as e:
        load(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(e.value)


def test_a_provider_without_settings_is_allowed() -> None:
    assert parse({"providers": {"openai": None}}).providers == {"openai": ProviderSettings()}
    assert parse({"providers": None}).providers == {}


# -- listen ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),  # noqa: S104 (parsing, not binding)
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:8080", ("::1", 8080)),
    ],
)
def test_listen_reads_host_and_port(text: str, expected: tuple[str, int]) -> None:
    config = parse({"listen": text})

    assert (config.listen_host, config.listen_port) == expected
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("nonsense", "expected HOST:PORT"),
        ("8080", "expected HOST:PORT"),
        (":8080", "expected HOST:PORT"),
        ("localhost:", "port must be a number"),
        ("localhost:http", "port must be a number"),
        ("localhost:65536", "port must be a number"),
        ("localhost:-1", "port must be a number"),
        ("localhost:80 80", "port must be a number"),
    ],
)
def test_bad_listen_values_name_the_key_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as e:
        parse({"listen": text})
    assert str(e.value).startswith("listen: ")
    assert repr(text.rpartition(":")[2] if "number" in problem else text) in str(e.value)


def test_listen_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="listen: expected HOST:PORT"):
        parse({"listen": 8080})


def test_a_listen_port_of_non_ascii_digits_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="port"):
        parse_listen("localhost:²", key="--listen")


# -- intercept and log level ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["providers", "all"])
def test_intercept_accepts_providers_and_all(mode: str) -> None:
    assert parse({"intercept": mode}).intercept == mode


@pytest.mark.parametrize("mode", ["none", "ALL", True, 1, ""])
def test_other_intercept_values_name_the_choices(mode: object) -> None:
    with pytest.raises(ConfigError, match=r"^intercept: must be one of providers, all"):
        parse({"intercept": mode})


def test_log_level_is_checked() -> None:
    assert parse({"log_level": "debug"}).log_level == "debug"
    with pytest.raises(ConfigError, match=r"^log_level: must be one of"):
        parse({"log_level": "verbose"})


# -- unknown keys ---------------------------------------------------------------------------


def test_an_unknown_top_level_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^listn: unknown key") as e:
        parse({"listn": "127.0.0.1:8080"})
    assert "listen" in str(e.value)  # the known keys are listed


def test_an_unknown_provider_key_is_named_by_its_path() -> None:
    with pytest.raises(ConfigError, match=r"^providers\.openai\.upsteam: unknown key") as e:
        openai(upsteam="https://localhost:8443")
    assert "upstream" in str(e.value)


def test_an_unknown_provider_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"^providers\.opneai: unknown provider") as e:
        parse({"providers": {"opneai": {}}})
    for name in KNOWN:
        assert name in str(e.value)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (["listen"], "config"),
        ("listen: x", "config"),
        ({"providers": ["openai"]}, "providers"),
        ({"providers": {"openai": "https://x"}}, "providers.openai"),
    ],
)
def test_a_list_or_string_where_a_mapping_belongs_is_named(data: object, where: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{where}: expected a mapping"):
        parse(data)


# -- upstream -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://localhost:8443", Upstream("https", "localhost", 8443)),
        ("https://gw.example.com", Upstream("https", "gw.example.com", 443)),
        ("https://gw.example.com/", Upstream("https", "gw.example.com", 443)),
        ("https://127.0.0.1:9443", Upstream("https", "127.0.0.1", 9443)),
        ("https://[::1]:9443", Upstream("https", "::1", 9443)),
        ("http://127.0.0.1:5000", Upstream("http", "127.0.0.1", 5000)),
        ("http://localhost", Upstream("http", "localhost", 80)),
    ],
)
def test_upstream_reads_an_https_host_and_port(url: str, expected: Upstream) -> None:
    assert openai(upstream=url).providers["openai"].upstream == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://gw.example.com:8080", "http:// is only for a server on this host"),
        ("http://10.0.0.7", "http:// is only for a server on this host"),
        ("ftp://localhost:8443", "must be an https:// URL"),
        ("localhost:8443", "must be an https:// URL"),
        ("https://localhost:8443/v1", "only scheme, host and port"),
        ("https://localhost:8443?api-version=1", "only scheme, host and port"),
        ("https://user:pw@localhost:8443", "only scheme, host and port"),
        ("https://user@localhost", "only scheme, host and port"),
        ("https://", "has no host"),
        ("https://:8443", "has no host"),
        ("https://localhost:99999", "out of range"),
        ("https://localhost:port", "upstream"),
        (8443, "expected a URL"),
    ],
)
def test_bad_upstreams_name_the_key_and_the_problem(url: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as e:
        openai(upstream=url)
    assert str(e.value).startswith("providers.openai.upstream: ")


@pytest.mark.parametrize(
    "url", ["https://localhost:0", "https://:secret@localhost", "https://localhost#frag"]
)
def test_other_upstream_parts_are_refused_too(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^providers\.openai\.upstream: "):
        openai(upstream=url)


# -- upstream_ca ----------------------------------------------------------------------------


def test_upstream_ca_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"^providers\.openai\.upstream_ca: no such file") as e:
        openai(upstream="https://localhost:8443", upstream_ca=str(missing))
    assert str(missing) in str(e.value)


def test_upstream_ca_without_upstream_is_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"upstream_ca: only makes sense with .*upstream"):
        openai(upstream_ca=str(ca))


def test_upstream_ca_must_be_a_path() -> None:
    with pytest.raises(ConfigError, match=r"upstream_ca: expected a file path"):
        openai(upstream="https://localhost:8443", upstream_ca=["a.pem"])


def test_a_relative_upstream_ca_is_found_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    confdir = tmp_path / "conf"
    (confdir / "certs").mkdir(parents=True)
    (confdir / "certs" / "upstream-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (confdir / "config.yaml").write_text(
        "providers:\n"
        "  openai:\n"
        "    upstream: https://localhost:8443\n"
        "    upstream_ca: certs/upstream-ca.pem\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    settings = load(confdir / "config.yaml").providers["openai"]

    assert settings.upstream == Upstream("https", "localhost", 8443)
    assert settings.upstream_ca == confdir / "certs" / "upstream-ca.pem"


# -- the file -------------------------------------------------------------------------------


def test_a_full_file_loads(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "listen: 127.0.0.1:9090\n"
        "intercept: all\n"
        "log_level: warning\n"
        "providers:\n"
        "  anthropic:\n"
        "    upstream: https://127.0.0.1:9443\n"
        f"    upstream_ca: {ca}\n"
        "  github: {}\n"
    )

    config = load(path)

    assert config.proxy_url == "http://127.0.0.1:9090"
    assert config.intercept == "all"
    assert config.log_level == "warning"
    assert config.providers == {
        "anthropic": ProviderSettings(Upstream("https", "127.0.0.1", 9443), ca),
        "github": ProviderSettings(),
    }


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("listen: [\n")

    with pytest.raises(ConfigError, match="not valid YAML") as e:
        load(path)
    assert str(e.value).startswith(f"{path}: ")


def test_a_bad_value_in_a_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("providers:\n  openai:\n    upsteam: https://localhost:8443\n")

    with pytest.raises(ConfigError) as e:
        load(path)
    assert str(e.value).startswith(f"{path}: providers.openai.upsteam: unknown key")


def test_a_file_that_is_not_text_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xff\xfe: x\n")

    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load(path)


# -- through `seks proxy`: config errors stop it before mitmproxy starts ---------------------


@pytest.fixture
def seks_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SEKS_HOME", str(home))
    monkeypatch.delenv("SEKS_MASTER_KEY", raising=False)
    return home


def proxy(*args: str) -> str:
    result = CliRunner().invoke(cli, ["proxy", *args], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "listening" not in result.output
    return result.output.strip()


def test_proxy_with_a_bad_config_file_exits_with_its_message(
    seks_home: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  openai:\n    upsteam: https://localhost:8443\n")

    assert proxy("--config", str(bad)) == (
        f"Error: {bad}: providers.openai.upsteam: unknown key (known keys: upstream, upstream_ca)"
    )


def test_proxy_with_a_missing_config_file_says_so(seks_home: Path, tmp_path: Path) -> None:
    assert proxy("--config", str(tmp_path / "nope.yaml")) == (
        f"Error: config file not found: {tmp_path / 'nope.yaml'}"
    )


def test_proxy_reads_the_homes_config_by_default(seks_home: Path) -> None:
    seks_home.mkdir()
    (seks_home / "config.yaml").write_text("intercept: some\n")

    assert "intercept: must be one of providers, all" in proxy()


@pytest.mark.parametrize("listen", ["nonsense", "localhost:http", "127.0.0.1:70000"])
def test_proxy_with_a_bad_listen_exits_with_a_clear_error(seks_home: Path, listen: str) -> None:
    message = proxy("--listen", listen)

    assert message.startswith("Error: --listen: ")
    assert "\n" not in message


# -- approval_timeout and max_token_ttl ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"), [("5m", 300.0), ("30s", 30.0), (90, 90.0), (0.5, 0.5), ("1d", 86400.0)]
)
def test_approval_timeout_reads_durations_and_seconds(value: object, seconds: float) -> None:
    assert parse({"approval_timeout": value}).approval_timeout == seconds


def test_approval_timeout_defaults_to_five_minutes_and_max_token_ttl_to_none() -> None:
    assert (Config().approval_timeout, Config().max_token_ttl) == (300.0, None)
    assert parse({"max_token_ttl": None}).max_token_ttl is None
    assert parse({"max_token_ttl": "24h"}).max_token_ttl == 86400.0


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("approval_timeout", "5 minutes", "approval_timeout: '5 minutes' is not a duration"),
        ("approval_timeout", 0, "approval_timeout: must be more than 0"),
        ("approval_timeout", "2d", "approval_timeout: must be more than 0 and at most 1d"),
        ("approval_timeout", None, "approval_timeout: expected a duration"),
        ("approval_timeout", True, "approval_timeout: expected a duration"),
        ("max_token_ttl", "-1h", "max_token_ttl: '-1h' is not a duration"),
        ("max_token_ttl", [], "max_token_ttl: expected a duration"),
        ("max_token_ttl", -5, "max_token_ttl: must be more than 0"),
    ],
)
def test_bad_durations_name_the_key(key: str, value: object, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse({key: value})
    assert str(e.value).startswith(problem)


def test_the_example_config_documents_the_defaults() -> None:
    # config.example.yaml shows every option with its default: loading it changes nothing.
    example = Path(__file__).parents[1] / "config.example.yaml"
    assert load(example) == Config()
