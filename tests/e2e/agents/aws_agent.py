"""An agent using boto3 as its docs show, with the environment `seks env` wrote: a seks_aws_…
access key id, a placeholder secret key, HTTPS_PROXY and AWS_CA_BUNDLE. Nothing else.

`aws_agent.py CALL…` runs the named calls in order and prints one JSON report. A ClientError
is reported with the code and message boto3 shows.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
BUCKET = os.environ.get("SEKS_TEST_BUCKET", "seks-e2e")
KEYS = [
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "per%cent.txt",
    "tilde~x.txt",
    "ünï/çødé.txt",
]
BIG = 20 * 1024 * 1024


def client(service: str, **config: Any) -> Any:
    return boto3.client(
        service, region_name=REGION, config=Config(retries={"max_attempts": 1}, **config)
    )


def s3_roundtrip() -> dict[str, Any]:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    got = {}
    for key in KEYS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=f"body of {key}".encode())
        got[key] = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        s3.head_object(Bucket=BUCKET, Key=key)
    for key in ("dir/a.txt", "dir/b.txt", "dir/sub/c.txt", "other/d.txt"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="dir/", Delimiter="/")
    s3.delete_object(Bucket=BUCKET, Key="plus+sign.txt")
    after = s3.list_objects_v2(Bucket=BUCKET)
    return {
        "bodies": got,
        "listed": sorted(o["Key"] for o in listing.get("Contents", [])),
        "prefixes": sorted(p["Prefix"] for p in listing.get("CommonPrefixes", [])),
        "after_delete": sorted(o["Key"] for o in after.get("Contents", [])),
    }


def s3_multipart() -> dict[str, Any]:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1024)]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="multi.bin")
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(
            Bucket=BUCKET, Key="multi.bin", UploadId=upload["UploadId"], PartNumber=n, Body=data
        )
        done.append({"ETag": r["ETag"], "PartNumber": n})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="multi.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    body = s3.get_object(Bucket=BUCKET, Key="multi.bin")["Body"].read()
    return {"same": body == b"".join(parts), "size": len(body)}


def s3_big_upload() -> dict[str, Any]:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    data = os.urandom(BIG)
    s3.upload_fileobj(io.BytesIO(data), BUCKET, "big.bin")
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, "big.bin", out)
    return {
        "sent": hashlib.sha256(data).hexdigest(),
        "got": hashlib.sha256(out.getvalue()).hexdigest(),
    }


def sts_identity() -> dict[str, Any]:
    return {"arn": client("sts").get_caller_identity()["Arn"]}


def dynamodb_roundtrip() -> dict[str, Any]:
    db = client("dynamodb")
    db.create_table(
        TableName="seks",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    db.put_item(TableName="seks", Item={"id": {"S": "1"}, "v": {"S": "hello"}})
    item = db.get_item(TableName="seks", Key={"id": {"S": "1"}})["Item"]
    return {"v": item["v"]["S"]}


def sqs_roundtrip() -> dict[str, Any]:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="seks")["QueueUrl"]
    # moto answers with its own scheme; the agent talks HTTPS to the real name, as on AWS.
    url = "https://" + url.split("://", 1)[1]
    sqs.send_message(QueueUrl=url, MessageBody="hello queue")
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    return {"bodies": [m["Body"] for m in messages]}


def assume_role() -> dict[str, Any]:
    iam, sts = client("iam"), client("sts")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName="seks-role", AssumeRolePolicyDocument=json.dumps(trust))
    creds = sts.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="agent")["Credentials"]
    assumed = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    who = assumed.client("sts").get_caller_identity()["Arn"]
    return {"credentials": {k: str(v) for k, v in creds.items()}, "assumed_arn": who}


@contextlib.contextmanager
def clock_behind(hours: int) -> Iterator[None]:
    """The agent's clock, as botocore reads it when it signs, `hours` behind."""
    real_now = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: real_now() - datetime.timedelta(hours=hours)
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = real_now


def skewed_clock() -> dict[str, Any]:
    """The agent's clock three hours behind: the proxy signs with its own time."""
    with clock_behind(3):
        return sts_identity()


def s3_list_buckets() -> dict[str, Any]:
    return {"buckets": [b["Name"] for b in client("s3").list_buckets()["Buckets"]]}


def _fetch(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    import requests  # honours HTTPS_PROXY and REQUESTS_CA_BUNDLE, as agents' scripts do

    r = requests.request(method, url, timeout=30, **kwargs)
    return {"status": r.status_code, "body": r.text}


def sigv2_presigned_get() -> dict[str, Any]:
    """boto3's default presigned S3 URL, which is still SigV2 (AWSAccessKeyId=…)."""
    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "k"})
    return {"signed_with": "AWSAccessKeyId=" in url, **_fetch("GET", url)}


def _presigned_get(expires_in: int) -> dict[str, Any]:
    s3 = client("s3", signature_version="s3v4")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "presigned key+1.txt"}, ExpiresIn=expires_in
    )
    return _fetch("GET", url)


def sigv4_presigned_get() -> dict[str, Any]:
    return _presigned_get(600)


def sigv4_presigned_expired() -> dict[str, Any]:
    """Presigned for 60 s by a clock two hours behind: expired when it is made."""
    with clock_behind(2):
        return _presigned_get(60)


def _hand_signed(algorithm: str, payload: str) -> dict[str, Any]:
    """Headers shaped as another SDK would send them; the proxy refuses before any check of
    the signature itself."""
    key = os.environ["AWS_ACCESS_KEY_ID"]
    headers = {
        "Authorization": f"{algorithm} Credential={key}/20261123/us-east-1/s3/aws4_request, "
        f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={'0' * 64}",
        "x-amz-date": "20261123T000000Z",
        "x-amz-content-sha256": payload,
    }
    return _fetch("PUT", f"https://{BUCKET}.s3.amazonaws.com/k", headers=headers, data=b"x")


def _put_signed_chunks(data: bytes) -> dict[str, Any]:
    """A PutObject as the Java, Go and .NET SDKs send it: STREAMING-AWS4-HMAC-SHA256-PAYLOAD,
    each 64 KiB chunk signed in a chain from the seed signature (with the agent's fake key)."""
    import hmac
    from hashlib import sha256

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    size = 64 * 1024
    pieces = [data[i : i + size] for i in range(0, len(data), size)] + [b""]
    header_len = sum(len(f"{len(p):x};chunk-signature=") + 64 + 4 + len(p) for p in pieces)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    url = f"https://{BUCKET}.s3.amazonaws.com/chunked.bin"
    request = AWSRequest(method="PUT", url=url)
    for name, value in {
        "host": f"{BUCKET}.s3.amazonaws.com",
        "content-encoding": "aws-chunked",
        "content-length": str(header_len),
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-date": now,
        "x-amz-decoded-content-length": str(len(data)),
    }.items():
        request.headers[name] = value
    request.context["timestamp"] = now
    creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    signer = S3SigV4Auth(creds, "s3", REGION)
    seed = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    scope = signer.credential_scope(request)
    key = ("AWS4" + creds.secret_key).encode()
    for part in (now[:8], REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), sha256).digest()
    body, previous = b"", seed
    for piece in pieces:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                now,
                scope,
                previous,
                sha256(b"").hexdigest(),
                sha256(piece).hexdigest(),
            ]
        )
        previous = hmac.new(key, to_sign.encode(), sha256).hexdigest()
        body += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece + b"\r\n"
    headers = {k: v for k, v in request.headers.items() if k != "host"}
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, SignedHeaders="
        f"{signer.signed_headers(signer.headers_to_sign(request))}, Signature={seed}"
    )
    return _fetch("PUT", url, headers=headers, data=body)


def signed_chunked_put() -> dict[str, Any]:
    """A signed-chunked upload, then read back with boto3."""
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    data = os.urandom(200 * 1024 + 5)
    put = _put_signed_chunks(data)
    got = s3.get_object(Bucket=BUCKET, Key="chunked.bin")["Body"].read()
    return {"put": put["status"], "same": got == data, "size": len(got)}


def signed_chunked_put_only() -> dict[str, Any]:
    """The signed-chunked upload alone, for an upstream that checks every chunk signature."""
    return _put_signed_chunks(os.urandom(200 * 1024 + 5))


def sigv4a_put() -> dict[str, Any]:
    return _hand_signed("AWS4-ECDSA-P256-SHA256", "UNSIGNED-PAYLOAD")


def event_stream_put() -> dict[str, Any]:
    return _hand_signed("AWS4-HMAC-SHA256", "STREAMING-AWS4-HMAC-SHA256-EVENTS")


CALLS = {
    f.__name__: f
    for f in (
        s3_roundtrip,
        s3_multipart,
        s3_big_upload,
        sts_identity,
        dynamodb_roundtrip,
        sqs_roundtrip,
        assume_role,
        skewed_clock,
        s3_list_buckets,
        sigv2_presigned_get,
        sigv4_presigned_get,
        sigv4_presigned_expired,
        sigv4a_put,
        signed_chunked_put,
        signed_chunked_put_only,
        event_stream_put,
    )
}


def main() -> None:
    out: dict[str, Any] = {"env": {"AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID")}}
    for name in sys.argv[1:]:
        try:
            out[name] = {"ok": True, **CALLS[name]()}
        except ClientError as e:
            out[name] = {"ok": False, "code": e.response["Error"]["Code"], "message": str(e)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
