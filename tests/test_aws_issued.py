"""Credentials in AWS answers, swapped for a SEKS token: found in each API's shape, stored in
the vault bound to a new token for the same agent, and gone from the body."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from seks.addon.aws_issued import (
    find_credentials,
    may_carry_credentials,
    swap_credentials,
    swap_in_response,
)
from seks.errors import UpstreamError
from seks.store import Vault
from seks.store.aws_credentials import FAKE_SECRET_KEY, FAKE_SESSION_TOKEN, AwsCredentials
from seks.store.tokens import TokenInfo

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEPj//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="

ASSUME_ROLE = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult><Credentials>
    <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
    <SecretAccessKey>{SECRET}</SecretAccessKey>
    <SessionToken>{TOKEN}</SessionToken>
    <Expiration>2099-01-01T00:00:00Z</Expiration>
  </Credentials></AssumeRoleResult></AssumeRoleResponse>""".encode()
CREATE_ACCESS_KEY = f"""<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey>
  <UserName>bob</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>
  <Status>Active</Status><SecretAccessKey>{SECRET}</SecretAccessKey>
</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>""".encode()
S3_EXPRESS = f"""<?xml version="1.0" encoding="UTF-8"?><CreateSessionResult><Credentials>
<SessionToken>{TOKEN}</SessionToken><SecretAccessKey>{SECRET}</SecretAccessKey>
<AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId><Expiration>2099-01-01T00:05:00Z</Expiration>
</Credentials></CreateSessionResult>""".encode()
JSON_ANSWER = (
    f'{{"Credentials": {{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "{SECRET}", '
    f'"SessionToken": "{TOKEN}", "Expiration": 4070908800}}}}'
).encode()


@pytest.mark.parametrize(
    ("body", "session", "expires"),
    [
        (ASSUME_ROLE, True, 4070908800.0),
        (CREATE_ACCESS_KEY, False, None),
        (S3_EXPRESS, True, 4070909100.0),
        (JSON_ANSWER, True, 4070908800.0),
    ],
    ids=["sts-assume-role", "iam-create-access-key", "s3express-create-session", "json"],
)
def test_each_apis_credentials_are_found(body: bytes, session: bool, expires: float | None) -> None:
    found = find_credentials(body)
    assert found is not None
    assert found.secret_access_key == SECRET
    assert found.session_token == (TOKEN if session else None)
    assert found.expires_at == expires
    assert SECRET not in repr(found)


def test_answers_without_credentials_are_left_alone() -> None:
    assert (
        find_credentials(b"<GetCallerIdentityResponse><Arn>x</Arn></GetCallerIdentityResponse>")
        is None
    )


def test_two_sets_of_credentials_are_withheld_not_guessed() -> None:
    with pytest.raises(UpstreamError, match="cannot tell apart; withheld"):
        find_credentials(ASSUME_ROLE + CREATE_ACCESS_KEY)


@pytest.mark.parametrize(
    ("service", "target", "buffered"),
    [
        ("sts", "/", True),
        ("iam", "/", True),
        ("s3express", "/?session", True),
        ("s3", "/bucket/key", False),
        ("dynamodb", "/", False),
    ],
)
def test_only_answers_that_may_carry_credentials_are_held_whole(
    service: str, target: str, buffered: bool
) -> None:
    assert may_carry_credentials(service, target) is buffered


def asker(vault: Vault) -> TokenInfo:
    real = AwsCredentials(
        "AKIAPARENTPARENT0000", "parent-" + secrets.token_hex(8), services=("sts", "s3")
    )
    vault.add_secret("aws-main", "aws", real.to_json())
    vault.create_agent("bot")
    _, info = vault.issue_token("bot", "aws", ttl=3600)
    return info


def test_the_swap_stores_the_real_ones_and_answers_with_a_new_token(vault: Vault) -> None:
    info = asker(vault)
    body = swap_credentials(vault, ASSUME_ROLE, info)
    assert body is not None
    assert SECRET.encode() not in body and TOKEN.encode() not in body
    assert b"ASIAIOSFODNN7EXAMPLE" not in body
    assert f"<SecretAccessKey>{FAKE_SECRET_KEY}</SecretAccessKey>".encode() in body
    assert f"<SessionToken>{FAKE_SESSION_TOKEN}</SessionToken>".encode() in body
    new_token = body.split(b"<AccessKeyId>")[1].split(b"</AccessKeyId>")[0].decode()

    child = vault.resolve_token(new_token)
    assert (child.agent, child.provider) == ("bot", "aws")
    # It expires with the asking token (an hour), before the credentials (2099).
    assert child.expires_at is not None and child.expires_at <= time.time() + 3600
    stored = AwsCredentials.from_json(vault.reveal_secret(child.secret_name).reveal())
    assert (stored.access_key_id, stored.secret_access_key, stored.session_token) == (
        "ASIAIOSFODNN7EXAMPLE",
        SECRET,
        TOKEN,
    )
    assert stored.services == ("sts", "s3")  # the asking secret's allow-lists carry over


def test_credentials_already_expired_are_withheld(vault: Vault) -> None:
    info = asker(vault)
    stale = ASSUME_ROLE.replace(b"2099-01-01T00:00:00Z", b"2001-01-01T00:00:00Z")
    with pytest.raises(UpstreamError, match="already expired"):
        swap_credentials(vault, stale, info)
    assert [s.name for s in vault.list_secrets()] == ["aws-main"]


def sts_answer(body: bytes) -> http.HTTPFlow:
    flow = tflow.tflow(req=tutils.treq(host="sts.amazonaws.com", port=443, path=b"/"))
    flow.response = http.Response.make(200, body, {"content-type": "text/xml"})
    return flow


def withheld(flow: http.HTTPFlow) -> str:
    """The AWS error code the agent gets instead of the answer."""
    assert flow.response is not None
    assert SECRET.encode() not in (flow.response.content or b"")
    assert flow.response.status_code == 502
    return (flow.response.content or b"").split(b"<Code>")[1].split(b"</Code>")[0].decode()


def test_an_answer_whose_credentials_cannot_be_stored_is_withheld(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Any failure, not only SEKS's own errors: mitmproxy would log an exception from the
    response hook and send the answer on, real credentials and all."""
    info = asker(vault)

    def locked(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(vault, "add_secret", locked)
    flow = sts_answer(ASSUME_ROLE)
    with caplog.at_level(logging.ERROR, logger="seks"):
        swap_in_response(flow, vault, info)

    assert withheld(flow) == "ServiceUnavailable"
    assert "internal error while swapping AWS credentials in a response; withheld" in caplog.text
    assert SECRET not in caplog.text


def test_an_answer_with_undecodable_credentials_is_withheld(
    vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    info = asker(vault)
    garbled = ASSUME_ROLE.replace(b"ASIAIOSFODNN7EXAMPLE", b"ASIA\xff\xfeIOSFODNN7EX")
    flow = sts_answer(garbled)
    with caplog.at_level(logging.ERROR, logger="seks"):
        swap_in_response(flow, vault, info)
    assert withheld(flow) == "ServiceUnavailable"
    assert SECRET not in caplog.text and "UnicodeDecodeError" in caplog.text
    assert [s.name for s in vault.list_secrets()] == ["aws-main"]
