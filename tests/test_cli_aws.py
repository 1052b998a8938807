"""AWS secrets and tokens at the terminal: `seks secret add --provider aws`, allow-lists, and
what `seks env` gives an agent. Helpers and fixtures come from test_cli (a fresh SEKS home per
test; every output recorded and checked for stored secrets)."""

# The fixtures come from test_cli, imported by name, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from test_cli import (  # noqa: F401 (fixtures, found by pytest by name)
    _CANARIES,
    exports,
    home,
    initialised,
    issue,
    one_line_error,
    open_vault,
    seks,
    token_list,
)

from seks.store.aws_credentials import FAKE_SECRET_KEY, AwsCredentials


def aws_canary(**extra: object) -> dict[str, object]:
    secret = "canary/" + secrets.token_hex(16) + "+Key"
    token = "canarySession" + secrets.token_hex(20)
    _CANARIES.extend([secret, token])
    return {
        "access_key_id": "AKIA" + secrets.token_hex(8).upper(),
        "secret_access_key": secret,
        "session_token": token,
        **extra,
    }


def test_an_aws_secret_from_json_on_stdin_is_stored_checked_and_never_shown(
    initialised: Path,
) -> None:
    value = aws_canary(region="eu-west-1")
    out = seks(
        "secret",
        "add",
        "aws-dev",
        "--provider",
        "aws",
        "--aws-services",
        "s3,STS",
        input=json.dumps(value),
    ).output
    assert out.strip() == "stored aws-dev (aws, version 1)"
    with open_vault(initialised) as vault:
        stored = AwsCredentials.from_json(vault.reveal_secret("aws-dev").reveal())
        assert stored.secret_access_key == value["secret_access_key"]
        assert stored.services == ("s3", "sts") and stored.region == "eu-west-1"
        assert stored.secret_access_key not in repr(stored)
        assert vault.reveal_secret("aws-dev").scrub_values() == [
            value["secret_access_key"],
            value["session_token"],
        ]


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("AKIA1234 secret", "stdin is not JSON: an aws secret is"),
        ("[1, 2]", "stdin is not a JSON object"),
        ('{"access_key_id": "AKIAAAAAAAAAAAAAAAAA"}', "an aws secret needs secret_access_key"),
        ('{"secret_access_key": "x"}', "an aws secret needs access_key_id"),
        (
            '{"access_key_id": "seks_aws_nope", "secret_access_key": "x"}',
            "aws secret access_key_id: expected 16 to 128 upper-case letters or digits",
        ),
        (
            '{"access_key_id": "AKIAAAAAAAAAAAAAAAAA", "secret_access_key": "has space"}',
            "aws secret secret_access_key: expected printable text without spaces",
        ),
        (
            '{"access_key_id": "AKIAAAAAAAAAAAAAAAAA", "secret_access_key": "x", "colour": 1}',
            "an aws secret has no key 'colour'",
        ),
        (
            '{"access_key_id": "AKIAAAAAAAAAAAAAAAAA", "secret_access_key": "x", '
            '"regions": ["moon-1"]}',
            "aws regions: 'moon-1' is not a valid name",
        ),
    ],
)
def test_a_malformed_aws_secret_is_refused_with_the_reason_and_nothing_stored(
    initialised: Path, stdin: str, message: str
) -> None:
    result = seks("secret", "add", "a", "--provider", "aws", input=stdin, code=1)
    one_line_error(result, message)
    assert "has space" not in result.output
    with open_vault(initialised) as vault:
        assert vault.list_secrets() == []


def test_aws_options_are_only_for_aws(initialised: Path) -> None:
    result = seks(
        "secret",
        "add",
        "o",
        "--provider",
        "openai",
        "--aws-regions",
        "eu-west-1",
        input="sk-x\n",
        code=2,
    )
    assert "--aws-regions, --aws-services and --aws-region are for aws secrets" in result.output


def test_an_aws_token_carries_its_allow_lists_and_env_gives_the_placeholder_key(
    initialised: Path,
) -> None:
    seks(
        "secret",
        "add",
        "aws-dev",
        "--provider",
        "aws",
        "--aws-region",
        "eu-west-1",
        input=json.dumps(aws_canary()),
    )
    seks("agent", "create", "bot")
    token = issue("bot", "aws", "--aws-regions", "eu-west-1,us-east-1", "--aws-services", "s3")
    assert token.startswith("seks_aws_")
    (listed,) = token_list()
    assert listed["aws_regions"] == ["eu-west-1", "us-east-1"]
    assert listed["aws_services"] == ["s3"]
    text = seks("token", "list").output
    assert "regions eu-west-1,us-east-1 · services s3" in text

    env = exports(seks("env", "--agent", "bot", "--proxy", "http://127.0.0.1:8080").output)
    assert env["AWS_ACCESS_KEY_ID"].startswith("seks_aws_")
    assert env["AWS_SECRET_ACCESS_KEY"] == FAKE_SECRET_KEY
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_CA_BUNDLE"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--aws-regions", "eu-west-1,mars"), "--aws-regions: aws regions: 'mars' is not a valid"),
        (("--aws-services", "s3,S 3"), "--aws-services: aws services: 's 3' is not a valid"),
    ],
)
def test_bad_aws_allow_lists_are_refused_by_option(
    initialised: Path, args: tuple[str, ...], message: str
) -> None:
    seks("secret", "add", "aws-dev", "--provider", "aws", input=json.dumps(aws_canary()))
    seks("agent", "create", "bot")
    result = seks("token", "issue", "--agent", "bot", "--provider", "aws", *args, code=1)
    one_line_error(result, message)
    assert token_list() == []


def test_aws_allow_lists_on_another_providers_token_are_a_usage_error(initialised: Path) -> None:
    seks("secret", "add", "o", "--provider", "openai", input="sk-x\n")
    seks("agent", "create", "bot")
    result = seks(
        "token", "issue", "--agent", "bot", "--provider", "openai", "--aws-services", "s3", code=2
    )
    assert "--aws-regions and --aws-services are for aws tokens" in result.output
