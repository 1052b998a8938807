"""The S3 client of bench/aws.py, run with the agent's Python (boto3), one process per round:

    python bench/_s3_client.py puts --endpoint URL --count 200 --size 1048576 --threads 4
    python bench/_s3_client.py upload --endpoint URL --size 1073741824 --mode put|multipart

Credentials, HTTPS_PROXY and AWS_CA_BUNDLE come from the environment, as an agent gets them from
`seks env`. ``puts``: ``count`` put_object calls of ``size`` bytes (one random block, sent again
and again) from ``threads`` threads sharing one client. ``upload``: one object of ``size``
bytes made on the fly (never held whole): ``put`` sends it as one put_object with a streamed
body, ``multipart`` through ``upload_fileobj`` (boto3's transfer manager, its defaults: 8 MiB
parts, 10 threads). Prints one JSON object: wall time of the calls (client set-up excluded),
each call's latency, the headers boto3 sent (payload mode, framing) and the object bytes the
upstream counted, which must be the bytes sent.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

REGION = "us-east-1"
BLOCK = 1024 * 1024


class GeneratedBody(io.RawIOBase):
    """``size`` bytes cut from one repeated random block as they are read: an upload of any
    size without holding it. Seekable, so boto3 knows its length and can rewind it."""

    def __init__(self, size: int, block: bytes) -> None:
        self.size = size
        self.pos = 0
        self.block = block

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, min(self.size, base + offset))
        return self.pos

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = min(len(out), self.size - self.pos)
        done, offset = 0, self.pos % len(self.block)
        while done < n:
            take = min(n - done, len(self.block) - offset)
            out[done : done + take] = self.block[offset : offset + take]
            done += take
            offset = 0
        self.pos += n
        return n


class SentHeaders:
    """What boto3 put on the wire, tallied per request (the before-send event)."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> None:
        h = request.headers
        payload = h.get("x-amz-content-sha256", b"-")
        payload = payload.decode() if isinstance(payload, bytes) else payload
        if len(payload) == 64:
            payload = "sha256"
        framing = "chunked" if h.get("Transfer-Encoding") else "length"
        coding = h.get("Content-Encoding", b"-")
        coding = coding.decode() if isinstance(coding, bytes) else coding
        key = f"{request.method} payload={payload} framing={framing} content-encoding={coding}"
        with self.lock:
            self.seen[key] += 1


def make_client(endpoint: str, threads: int) -> tuple[Any, SentHeaders]:
    config = Config(
        region_name=REGION,
        retries={"max_attempts": 1},  # a failure must show, not be retried away
        s3={"addressing_style": "path"},
        max_pool_connections=max(10, threads),
    )
    s3 = boto3.client("s3", endpoint_url=endpoint, config=config)
    sent = SentHeaders()
    s3.meta.events.register("before-send.s3", sent)
    return s3, sent


def object_bytes(response: dict[str, Any]) -> int:
    return int(response["ResponseMetadata"]["HTTPHeaders"].get("x-bench-object-bytes", -1))


def puts(args: argparse.Namespace) -> dict[str, Any]:
    s3, sent = make_client(args.endpoint, args.threads)
    body = os.urandom(args.size)

    def one(i: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        r = s3.put_object(Bucket=args.bucket, Key=f"bench/{args.label}/{i}", Body=body)
        return (time.perf_counter() - t0) * 1000, object_bytes(r)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        results = list(pool.map(one, range(args.count)))
    wall = time.perf_counter() - t0
    wrong = [got for _, got in results if got != args.size]
    if wrong:
        raise SystemExit(f"{len(wrong)} puts arrived short or long: upstream counted {wrong[:5]}")
    return {
        "wall_s": wall,
        "latencies_ms": [ms for ms, _ in results],
        "sent": dict(sent.seen),
    }


def upload(args: argparse.Namespace) -> dict[str, Any]:
    s3, sent = make_client(args.endpoint, 10)
    body = GeneratedBody(args.size, os.urandom(BLOCK))
    key = f"bench/{args.label}/big"
    t0 = time.perf_counter()
    if args.mode == "put":
        got = object_bytes(s3.put_object(Bucket=args.bucket, Key=key, Body=body))
        if got != args.size:
            raise SystemExit(f"the upload arrived with {got} of {args.size} bytes")
    else:
        s3.upload_fileobj(body, args.bucket, key, Config=TransferConfig())
    wall = time.perf_counter() - t0
    if body.pos != args.size:
        raise SystemExit(f"boto3 read {body.pos} of {args.size} bytes")
    return {"wall_s": wall, "latencies_ms": [wall * 1000], "sent": dict(sent.seen)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["puts", "upload"])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", default="seks-bench")
    p.add_argument("--label", default="run", help="part of the object keys")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--size", type=int, default=BLOCK)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--mode", choices=["put", "multipart"], default="put")
    args = p.parse_args(argv)
    out = puts(args) if args.what == "puts" else upload(args)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
