"""A small S3-like HTTPS upstream for bench/aws.py: it takes uploads and throws the bytes away.

Run as its own process so that its CPU does not count against the benchmark driver:

    python bench/_s3_upstream.py --cert leaf.pem --key leaf.key

It listens on 127.0.0.1 (port 0 unless ``--port``; plain HTTP with ``--plain``), prints
``s3 upstream listening on 127.0.0.1:PORT`` once ready, and answers, over HTTP/1.1 keep-alive:

- ``PUT /bucket/key`` (PutObject, and UploadPart with ``?partNumber=&uploadId=``): 200 with an
  ETag, once the whole body is in;
- ``POST /bucket/key?uploads`` (CreateMultipartUpload) and ``POST /bucket/key?uploadId=U``
  (CompleteMultipartUpload): the XML answers boto3's transfer manager reads;
- ``GET /_bench/stats``: JSON counters of what arrived (for the benchmark, not S3);
- anything else: 404.

It checks no signature: the benchmark measures the proxies, not AWS. Bodies are counted and
dropped as they arrive, framed by Content-Length or chunked transfer coding; an ``aws-chunked``
content coding inside (boto3's uploads over HTTPS) is decoded as well, only to count the
object's bytes. Every answer carries ``x-bench-object-bytes`` (the object's bytes) and
``x-bench-wire-bytes`` (the body as framed on the wire), and an aws-chunked body whose length
is not its ``x-amz-decoded-content-length`` gets 400: a 200 means the upload arrived whole.
Like bench/_upstream.py it is a bare asyncio protocol, not http.server, to stay far below the
proxies' cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys
from collections import Counter
from collections.abc import Callable

MAX_HEAD = 64 * 1024
MAX_LINE = 4096
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


class BadRequest(ValueError):
    """The client sent something this server does not understand; it answers 400 and closes."""


class _Count:
    """The innermost sink: counts the bytes it is given."""

    def __init__(self) -> None:
        self.n = 0
        self.done = False

    def feed(self, data: bytes) -> int:
        self.n += len(data)
        return len(data)


class _Sized:
    """A body of Content-Length bytes, passed on to ``inner`` as it arrives."""

    def __init__(self, length: int, inner: _Count | _Chunked) -> None:
        self.left = length
        self.inner = inner
        self.done = length == 0

    def feed(self, data: bytes) -> int:
        take = min(self.left, len(data))
        if take:
            _feed_all(self.inner, data if take == len(data) else data[:take])
            self.left -= take
        self.done = self.left == 0
        return take


class _Chunked:
    """Chunked framing (HTTP/1.1 transfer coding, and aws-chunked, which has the same shape:
    ``size[;ext]\\r\\n data \\r\\n`` … ``0\\r\\n`` trailers ``\\r\\n``), the payload passed on to
    ``inner`` as it arrives. ``feed`` returns how many bytes belonged to this body."""

    def __init__(self, inner: _Count | _Chunked) -> None:
        self.inner = inner
        self.state = "size"  # size, data, data-end, trailer
        self.left = 0
        self.line = b""
        self.done = False

    def feed(self, data: bytes) -> int:
        i, n = 0, len(data)
        while i < n and not self.done:
            if self.state == "data":
                take = min(self.left, n - i)
                _feed_all(self.inner, data if take == n else data[i : i + take])
                self.left -= take
                i += take
                if not self.left:
                    self.state = "data-end"
                continue
            j = data.find(b"\n", i)
            if j < 0:
                self.line += data[i:]
                if len(self.line) > MAX_LINE:
                    raise BadRequest("chunk line too long")
                return n
            line = (self.line + data[i:j]).rstrip(b"\r")
            self.line, i = b"", j + 1
            if self.state == "size":
                try:
                    self.left = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest(f"bad chunk size line {line[:40]!r}") from None
                self.state = "data" if self.left else "trailer"
            elif self.state == "data-end":
                if line:
                    raise BadRequest("chunk data longer than its size")
                self.state = "size"
            elif not line:  # trailer section ends with an empty line
                self.done = True
        return i


def _feed_all(sink: _Count | _Chunked, data: bytes) -> None:
    if sink.feed(data) != len(data):
        raise BadRequest("bytes after the end of an aws-chunked body")


def _response(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def payload_mode(value: str) -> str:
    """x-amz-content-sha256 as a kind: a hex digest is "sha256", the named modes stay."""
    if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return "sha256"
    return value or "-"


class _Request:
    """One request's head, parsed."""

    def __init__(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise BadRequest(f"bad request line {lines[0][:80]!r}")
        self.method, target, _ = parts
        self.path, _, self.query = target.partition("?")
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest(f"bad header line {line[:80]!r}")
            self.headers[name.strip().lower()] = value.strip()

    def body(self) -> tuple[_Sized | _Chunked, _Count]:
        """The body's framing, and the counter of the object's own bytes inside it."""
        count = _Count()
        aws_chunked = "aws-chunked" in self.headers.get("content-encoding", "")
        inner: _Count | _Chunked = _Chunked(count) if aws_chunked else count
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return _Chunked(inner), count
        try:
            length = int(self.headers.get("content-length", "0"))
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        return _Sized(length, inner), count

    def kind(self) -> str:
        """What this request was, for the stats: operation, payload mode and framing."""
        if self.method == "PUT":
            op = "UploadPart" if "uploadId=" in self.query else "PutObject"
        elif self.method == "POST":
            op = "CreateMultipartUpload" if "uploads" in self.query else "CompleteMultipartUpload"
        else:
            op = self.method
        framing = "chunked" if "transfer-encoding" in self.headers else "length"
        coding = self.headers.get("content-encoding", "-")
        payload = payload_mode(self.headers.get("x-amz-content-sha256", ""))
        return f"{op} payload={payload} framing={framing} content-encoding={coding}"


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.object_bytes = 0
        self.wire_bytes = 0
        self.connections = 0
        self.uploads = 0

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": dict(self.requests),
                "object_bytes": self.object_bytes,
                "wire_bytes": self.wire_bytes,
                "connections": self.connections,
            }
        ).encode()


class _S3(asyncio.Protocol):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.head = b""
        self.request: _Request | None = None
        self.body: _Sized | _Chunked | None = None
        self.count = _Count()
        self.wire = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except BadRequest as e:
            assert self.transport is not None
            body = f"<Error><Code>BadRequest</Code><Message>{e}</Message></Error>".encode()
            self.transport.write(_response("400 Bad Request", {"Connection": "close"}, body))
            self.transport.close()

    def _receive(self, data: bytes) -> None:
        while data:
            if self.body is None:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > MAX_HEAD:
                        raise BadRequest("request head too long")
                    return
                head, data = self.head[:end], self.head[end + 4 :]
                self.head = b""
                self._start(_Request(head))
                if self.body is not None and self.body.done:
                    self._finish()
                continue
            used = self.body.feed(data)
            self.wire += used
            data = data[used:] if used < len(data) else b""
            if self.body.done:
                self._finish()

    def _start(self, request: _Request) -> None:
        assert self.transport is not None
        self.request = request
        self.body, self.count = request.body()
        self.wire = 0
        if request.headers.get("expect", "").lower() == "100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _finish(self) -> None:
        assert self.transport is not None and self.request is not None
        request = self.request
        self.body = self.request = None
        self.stats.requests[request.kind()] += 1
        if request.method == "PUT":  # objects and parts; not CompleteMultipartUpload's XML
            self.stats.object_bytes += self.count.n
        self.stats.wire_bytes += self.wire
        self.transport.write(self._answer(request))
        if request.headers.get("connection", "").lower() == "close":
            self.transport.close()

    def _answer(self, request: _Request) -> bytes:
        counted = {
            "x-amz-request-id": "BENCH",
            "x-bench-object-bytes": str(self.count.n),
            "x-bench-wire-bytes": str(self.wire),
        }
        declared = request.headers.get("x-amz-decoded-content-length")
        if declared is not None and int(declared) != self.count.n:
            body = (
                f"<Error><Code>IncompleteBody</Code><Message>{self.count.n} bytes, "
                f"{declared} declared</Message></Error>"
            ).encode()
            return _response("400 Bad Request", counted, body)
        bucket, _, key = request.path.lstrip("/").partition("/")
        if request.method == "GET" and request.path == "/_bench/stats":
            return _response("200 OK", {"Content-Type": "application/json"}, self.stats.as_json())
        if request.method == "PUT" and key:
            self.stats.uploads += 1
            return _response("200 OK", {**counted, "ETag": f'"{self.stats.uploads:032x}"'})
        if request.method == "POST" and key and request.query == "uploads":
            self.stats.uploads += 1
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult '
                f'xmlns="{XMLNS}"><Bucket>{bucket}</Bucket><Key>{key}</Key>'
                f"<UploadId>bench-{self.stats.uploads}</UploadId></InitiateMultipartUploadResult>"
            ).encode()
            return _response("200 OK", {**counted, "Content-Type": "application/xml"}, body)
        if request.method == "POST" and key and request.query.startswith("uploadId="):
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult '
                f'xmlns="{XMLNS}"><Location>/{bucket}/{key}</Location><Bucket>{bucket}</Bucket>'
                f'<Key>{key}</Key><ETag>"{self.stats.uploads:032x}-1"</ETag>'
                "</CompleteMultipartUploadResult>"
            ).encode()
            return _response("200 OK", {**counted, "Content-Type": "application/xml"}, body)
        return _response("404 Not Found", counted, b"<Error><Code>NoSuchKey</Code></Error>")


async def serve(cert: str | None, key: str | None, port: int) -> None:
    ctx: ssl.SSLContext | None = None
    if cert and key:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["http/1.1"])
    stats = Stats()
    factory: Callable[[], _S3] = lambda: _S3(stats)  # noqa: E731
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", port, ssl=ctx)
    bound = server.sockets[0].getsockname()[1]
    print(f"s3 upstream listening on 127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cert", help="PEM certificate chain for the server")
    p.add_argument("--key", help="PEM private key for the server")
    p.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    if not args.plain and not (args.cert and args.key):
        p.error("--cert and --key are needed unless --plain")
    asyncio.run(serve(None if args.plain else args.cert, args.key, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
