"""A small, fast HTTPS upstream for the benchmarks (bench/overhead.py, bench/scrub.py).

Run as its own process so that its CPU does not count against the benchmark driver:

    python bench/_upstream.py --cert leaf.pem --key leaf.key --expect-key sk-...

It listens on 127.0.0.1 (port 0 unless ``--port``), prints ``upstream listening on
127.0.0.1:PORT`` once ready, and answers every ``GET /v1/models`` with a ~200-byte JSON body
over HTTP/1.1 keep-alive with Content-Length. A request whose ``Authorization`` is not
``Bearer <expect-key>`` gets 401, so a 200 proves the proxy injected the real key. Anything
else gets 404. It is a bare asyncio protocol, not http.server: the point is to stay far below
the proxies' cost per request.

``GET /v1/stream?n=N&interval_ms=MS&echo=K`` (same key check) answers ``text/event-stream``
in chunked framing: N OpenAI-like ``chat.completion.chunk`` events, one every MS milliseconds
(the first MS after the headers, on a fixed schedule so that delays do not add up), then
``data: [DONE]``. Each event carries ``"i"`` (its index) and ``"t"``, the server's
``time.monotonic()`` right before the write; CLOCK_MONOTONIC is shared by the processes of
one Linux machine, so a client's arrival time minus ``t`` is the event's delay. Event K
(if ``0 <= K < N``) also carries the real key, raw and base64-encoded, for a proxy to scrub.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import ssl
import sys
import time
from urllib.parse import parse_qs

MODELS_BODY = json.dumps(
    {
        "object": "list",
        "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
            {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
        ],
    },
    separators=(",", ":"),
).encode()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n"
        "\r\n"
    )
    return head.encode() + body


RESP_OK = _response("200 OK", MODELS_BODY)
RESP_401 = _response("401 Unauthorized", b'{"error":{"type":"invalid_api_key"}}')
RESP_404 = _response("404 Not Found", b'{"error":{"type":"not_found"}}')
RESP_400 = _response("400 Bad Request", b'{"error":{"type":"bad_request"}}')
MAX_HEAD = 64 * 1024
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)
MAX_STREAM_EVENTS = 100_000


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_event(i: int, sent: float, echo: bytes | None = None) -> bytes:
    """One ~250-byte event shaped like OpenAI's streamed chat completion chunks."""
    doc: dict[str, object] = {
        "id": "chatcmpl-bench0123456789abcdefABCDEF",
        "object": "chat.completion.chunk",
        "created": 1731000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [{"index": 0, "delta": {"content": f" token{i}"}, "finish_reason": None}],
        "i": i,
        "t": round(sent, 6),
    }
    if echo is not None:
        doc["echo"] = echo.decode()
        doc["echo_b64"] = base64.b64encode(echo).decode()
    return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"


class _Http11(asyncio.Protocol):
    """Minimal HTTP/1.1 server: pipelining-safe, bodies skipped by Content-Length."""

    def __init__(self, auth: bytes) -> None:
        self.auth = auth
        self.buf = b""
        self.skip = 0
        self.transport: asyncio.Transport | None = None
        self.streaming: asyncio.Task[None] | None = None  # an SSE answer being sent

    def connection_lost(self, exc: Exception | None) -> None:
        if self.streaming is not None:
            self.streaming.cancel()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if self.streaming is None:
            self._process()

    def _process(self) -> None:
        """Answer every complete request in the buffer, in order; stop at a stream."""
        assert self.transport is not None
        out = []
        while self.streaming is None:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf = self.buf[n:]
                self.skip -= n
                if self.skip:
                    break
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.transport.write(RESP_400)
                    self.transport.close()
                    return
                break
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            out.append(self._handle(head))
        if out:
            self.transport.write(b"".join(out))

    def _handle(self, head: bytes) -> bytes:
        """The answer to one request; b"" if a stream task now sends it."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        self.skip = int(headers.get(b"content-length", b"0") or 0)
        path, _, query = parts[1].partition(b"?") if len(parts) == 3 else (b"", b"", b"")
        if parts[0] != b"GET" or path not in (b"/v1/models", b"/v1/stream"):
            return RESP_404
        if headers.get(b"authorization") != self.auth:
            return RESP_401
        if path == b"/v1/models":
            return RESP_OK
        try:
            q = {k: int(v[0]) for k, v in parse_qs(query.decode()).items()}
        except ValueError:
            return RESP_400
        n = q.get("n", 10)
        if not 0 < n <= MAX_STREAM_EVENTS:
            return RESP_400
        echo_at = q.get("echo", -1)
        self.streaming = asyncio.ensure_future(self._stream(n, q.get("interval_ms", 20), echo_at))
        return b""

    async def _stream(self, n: int, interval_ms: int, echo_at: int) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        echo = self.auth.removeprefix(b"Bearer ")
        self.transport.write(STREAM_HEAD)
        start = loop.time()  # the loop's clock is time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, start + (i + 1) * interval_ms / 1000 - loop.time()))
            if self.transport.is_closing():
                return
            sent = time.monotonic()
            self.transport.write(_chunk(sse_event(i, sent, echo if i == echo_at else None)))
        self.transport.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        self.streaming = None
        self._process()  # requests that arrived meanwhile


async def serve(cert: str, key: str, expect_key: str, port: int) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    auth = b"Bearer " + expect_key.encode()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Http11(auth), "127.0.0.1", port, ssl=ctx)
    bound = server.sockets[0].getsockname()[1]
    print(f"upstream listening on 127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cert", required=True, help="PEM certificate chain for the server")
    p.add_argument("--key", required=True, help="PEM private key for the server")
    p.add_argument("--expect-key", required=True, help="the real API key clients must present")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    asyncio.run(serve(args.cert, args.key, args.expect_key, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
