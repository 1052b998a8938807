"""A small, fast HTTPS upstream for the overhead benchmark.

Run as its own process so that its CPU does not count against the benchmark driver:

    python bench/_upstream.py --cert leaf.pem --key leaf.key --expect-key sk-...

It listens on 127.0.0.1 (port 0 unless ``--port``), prints ``upstream listening on
127.0.0.1:PORT`` once ready, and answers every ``GET /v1/models`` with a ~200-byte JSON body
over HTTP/1.1 keep-alive with Content-Length. A request whose ``Authorization`` is not
``Bearer <expect-key>`` gets 401, so a 200 proves the proxy injected the real key. Anything
else gets 404. It is a bare asyncio protocol, not http.server: the point is to stay far below
the proxies' cost per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys

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


class _Http11(asyncio.Protocol):
    """Minimal HTTP/1.1 server: pipelining-safe, bodies skipped by Content-Length."""

    def __init__(self, auth: bytes) -> None:
        self.auth = auth
        self.buf = b""
        self.skip = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        out = []
        while True:
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
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        self.skip = int(headers.get(b"content-length", b"0") or 0)
        if len(parts) != 3 or parts[0] != b"GET" or parts[1].split(b"?")[0] != b"/v1/models":
            return RESP_404
        if headers.get(b"authorization") != self.auth:
            return RESP_401
        return RESP_OK


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
