"""An upstream that accepts the real key and then hands it straight back, in every encoding.

It stands in for api.openai.com in the scrubbing tests. What it sends is built by the
functions below from the key, as an :class:`Echo`: literal bytes and secret forms in order, so a
test can build the same Echo and check what the agent received byte by byte (literal parts
unchanged, secret parts masked, same length).

Routes (the key must arrive as ``Authorization: Bearer <key>``, except under ``/public/``):
  POST /v1/chat/completions  prompt "echo": a completion echoing the key in headers and content;
                             stream, prompt "split": one chunk per offset, split inside the key;
                             stream, prompt "gate <encoding>": event 1, then wait for ``gate``
  GET /echo/body?framing=length|chunked|large&encoding=identity|gzip|deflate|br|zstd|x-custom
                 &truncate=N (drop the compressed body's last N bytes)
  GET /echo/sse              every secret form, split at every byte offset, one chunk per piece
  GET /echo/reason           the key in the status line's reason phrase
  GET /echo/tail             a small body without secrets (the second request on a connection)
  GET /echo/ws               WebSocket: reads one message, then echoes the key back
  GET /public/echo           no key needed, and the key in the body all the same
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import brotli
import zstandard
from upstreams import OpenAIHandler, SeenRequest, Upstream
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage

from seks.addon.scrub import encodings_of

GATE_TIMEOUT = 60  # seconds the upstream waits for the test; the test gives up sooner
MARK = "@@mark@@"
TAIL = b"the second response on this connection, intact\n"
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "identity": lambda b: b,
    "gzip": lambda b: zlib.compress(b, wbits=16 + zlib.MAX_WBITS),
    "deflate": zlib.compress,  # zlib-wrapped, as the standard says
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
    "x-custom": lambda b: b,  # a label SEKS cannot decode: the body must never reach the agent
}


# --- what is sent ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Echo:
    """Bytes as the upstream sends them: (piece, is_secret) in order."""

    parts: tuple[tuple[bytes, bool], ...]

    @property
    def data(self) -> bytes:
        return b"".join(p for p, _ in self.parts)

    def __add__(self, other: Echo) -> Echo:
        return Echo(self.parts + other.parts)


def lit(data: bytes) -> Echo:
    return Echo(((data, False),))


def sec(data: bytes) -> Echo:
    return Echo(((data, True),))


def secret_forms(key: str, *, text_only: bool = False) -> list[tuple[str, bytes]]:
    """Every encoding SEKS promises to scrub, plus Basic auth (base64 of ``user:<key>``).
    ``text_only``: without the UTF-16 forms, whose NUL bytes headers and JSON cannot carry."""
    forms = [*encodings_of(key.encode()), ("basic", base64.b64encode(b"user:" + key.encode()))]
    return [(n, f) for n, f in forms if not (text_only and n.startswith("utf-16"))]


def listing(forms: Iterable[tuple[str, bytes]]) -> Echo:
    """``name=<form> | name=<form> | …``"""
    out = Echo(())
    for i, (name, form) in enumerate(forms):
        out += lit((" | " if i else "").encode() + name.encode() + b"=") + sec(form)
    return out


def others(keys: Iterable[str]) -> list[tuple[str, bytes]]:
    """Other secrets of the tenant: raw and base64, each is scrubbed too."""
    return [f for k in keys for f in secret_forms(k)[:2]]


def body_echo(key: str, other_keys: Iterable[str] = (), *, large: bool = False) -> Echo:
    """Every form of the key and some of the other secrets; ``large``: twice, either side of
    a MiB of filler, so the proxy streams the body although it has a Content-Length."""
    forms = listing([*secret_forms(key), *others(other_keys)])
    if large:
        forms += lit(b"\n" + b"." * (1 << 20) + b"\n") + forms
    return lit(b"echo begins\n") + forms + lit(b"\necho ends\n")


def header_echoes(key: str) -> list[tuple[str, Echo]]:
    return [
        (f"x-echo-{i}-{name}", lit(b"<") + sec(form) + lit(b">"))
        for i, (name, form) in enumerate(secret_forms(key, text_only=True))
    ]


def completion(content: str) -> dict[str, Any]:
    """A chat completion as OpenAI sends it (fixed values: the test rebuilds the same bytes)."""
    message = {"role": "assistant", "content": content, "refusal": None}
    return {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
    }


def chunk(content: str | None, finish: str | None = None) -> str:
    """One OpenAI stream chunk's data line."""
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return "data: " + json.dumps(
        {
            "id": "chatcmpl-echo",
            "object": "chat.completion.chunk",
            "created": 1767225600,
            "model": "gpt-4o-mini",
            "choices": [choice],
        }
    )


def completion_echo(key: str) -> Echo:
    """A completion whose content lists the key in every text encoding, and then its JSON
    escapes once more right after an escaped backslash: there, a mask starting with "[" would
    leave an invalid JSON escape (backslash, bracket) and the SDK could not parse the body."""
    head, tail = json.dumps(completion(MARK)).split(MARK)
    escaped = next(f for n, f in secret_forms(key) if n == "json-unicode")
    forms = listing(secret_forms(key, text_only=True))
    return lit(head.encode()) + forms + lit(b" | escaped=\\") + sec(escaped) + lit(tail.encode())


def sse_echo(key: str) -> list[Echo]:
    """One event per byte offset inside every form: the event is sent in two chunks, the cut
    falling that far into the form."""
    events = []
    for name, form in secret_forms(key):
        for k in range(1, len(form)):
            head = f"data: {name}@{k} ".encode()
            events.append(lit(head) + sec(form[:k]) + sec(form[k:]) + lit(b" end\n\n"))
    return events


def split_completion_chunks(key: str) -> list[Echo]:
    """OpenAI stream chunks; chunk k carries the key, to be sent cut k bytes into it."""
    chunks = []
    for k in range(1, len(key)):
        head, tail = chunk(f"{k}:{MARK}").split(MARK)
        chunks.append(
            lit(head.encode())
            + sec(key[:k].encode())
            + sec(key[k:].encode())
            + lit(tail.encode() + b"\n\n")
        )
    return [*chunks, lit(chunk(None, "stop").encode() + b"\n\ndata: [DONE]\n\n")]


def reason_echo(key: str) -> Echo:
    return lit(b"OK key=") + sec(key.encode()) + lit(b" end")


def ws_echoes(key: str) -> tuple[Echo, Echo]:
    """Two server messages: text forms as a text message, every form as a binary one."""
    return listing(secret_forms(key, text_only=True)), listing(secret_forms(key))


# --- the server -----------------------------------------------------------------------------


class EchoUpstream(Upstream):
    def __init__(
        self, *, ssl_context: ssl.SSLContext, real_key: str, other_keys: list[str]
    ) -> None:
        self.other_keys = other_keys
        self.gate = threading.Event()  # set by a test once its agent has seen event 1
        self.peers: list[tuple[str, int]] = []  # (path, the proxy's source port) per request
        self.ws_received: list[str | bytes] = []
        super().__init__(EchoHandler, ssl_context=ssl_context, real_key=real_key)

    def clear(self) -> None:
        super().clear()
        self.peers.clear()
        self.ws_received.clear()
        self.gate = threading.Event()


class EchoHandler(OpenAIHandler):
    server_version = "echo-upstream/1"

    @property
    def echo(self) -> EchoUpstream:
        return self.server.upstream

    def respond(self, request: SeenRequest) -> None:
        self.echo.peers.append((request.path, self.client_address[1]))
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/public/echo":
            self.send_echo(200, "OK", lit(b"public: ") + sec(self.real_key.encode()), "length")
        elif request.header("Authorization") != f"Bearer {self.real_key}":
            super().respond(request)  # OpenAI's 401
        elif url.path == "/v1/chat/completions":
            self.chat(request)
        elif url.path == "/echo/body":
            framing, encoding = query.get("framing", "length"), query.get("encoding", "identity")
            body = body_echo(self.real_key, self.echo.other_keys, large=framing == "large")
            cut = int(query.get("truncate", 0))
            self.send_echo(200, "OK", body, framing, encoding, truncate=cut)
        elif url.path == "/echo/sse":
            self.send_chunked(sse_echo(self.real_key), "text/event-stream")
        elif url.path == "/echo/reason":
            self.send_echo(200, reason_echo(self.real_key).data.decode(), lit(TAIL), "length")
        elif url.path == "/echo/tail":
            self.send_echo(200, "OK", lit(TAIL), "length")
        elif url.path == "/echo/ws":
            self.websocket(request)
        else:
            super().respond(request)

    def chat(self, request: SeenRequest) -> None:
        body = self.json_body(request)
        prompt = str(body.get("messages", [{}])[-1].get("content"))
        if not body.get("stream"):
            self.send_echo(200, "OK", completion_echo(self.real_key), "length", headers=True)
        elif prompt == "split":
            self.send_chunked(split_completion_chunks(self.real_key), "text/event-stream")
        else:  # "gate <encoding>"
            self.gated_stream(prompt.removeprefix("gate "))

    def gated_stream(self, encoding: str) -> None:
        """Event 1 (with the key in it), then nothing until the test opens the gate."""
        compress = zlib.compressobj(wbits=16 + zlib.MAX_WBITS) if encoding == "gzip" else None

        def send(line: str) -> None:
            data = f"{line}\n\n".encode()
            if compress is not None:
                data = compress.compress(data) + compress.flush(zlib.Z_SYNC_FLUSH)
            self.write_chunk(data)

        self.send_head(200, "OK", "text/event-stream", encoding, None)
        send(chunk(f"first {self.real_key}"))
        opened = self.echo.gate.wait(GATE_TIMEOUT)
        send(chunk("second" if opened else "the gate timed out"))
        send(chunk(None, "stop"))
        send("data: [DONE]")
        if compress is not None:
            self.write_chunk(compress.flush())
        self.write_chunk(b"")

    # -- sending -----------------------------------------------------------------------------

    def send_head(
        self,
        status: int,
        reason: str,
        ctype: str,
        encoding: str,
        length: int | None,
        *,
        key: bool = False,
    ) -> None:
        self.send_response(status, reason)
        self.send_header("Content-Type", ctype)
        if encoding != "identity":
            self.send_header("Content-Encoding", encoding)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        if key:
            for name, value in header_echoes(self.real_key):
                self.send_header(name, value.data.decode())
        self.end_headers()

    def send_echo(
        self,
        status: int,
        reason: str,
        body: Echo,
        framing: str,
        encoding: str = "identity",
        headers: bool = False,
        truncate: int = 0,
    ) -> None:
        data = COMPRESS[encoding](body.data)
        data = data[: len(data) - truncate]  # a damaged body: its compressed stream cut short
        ctype = "application/json" if data.startswith(b"{") else "application/octet-stream"
        if framing in ("length", "large"):
            self.send_head(status, reason, ctype, encoding, len(data), key=headers)
            for i in range(0, len(data), 1 << 16):
                self.wfile.write(data[i : i + (1 << 16)])
                self.wfile.flush()
        else:  # chunked, in seven pieces
            step = len(data) // 7 + 1
            pieces = [lit(data[i : i + step]) for i in range(0, len(data), step)]
            self.send_head(status, reason, ctype, encoding, None, key=headers)
            self.send_pieces(pieces)

    def send_chunked(self, pieces: list[Echo], ctype: str) -> None:
        self.send_head(200, "OK", ctype, "identity", None)
        self.send_pieces(pieces)

    def send_pieces(self, pieces: list[Echo]) -> None:
        """Each part of each piece as its own HTTP/1.1 chunk, flushed: the proxy sees every
        chunk boundary (h11 hands over one chunk at a time even when several arrive at once)."""
        for piece in pieces:
            for part, _ in piece.parts:
                self.write_chunk(part)
        self.write_chunk(b"")

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- WebSocket ---------------------------------------------------------------------------

    def websocket(self, request: SeenRequest) -> None:
        client_key = (request.header("Sec-WebSocket-Key") or "").encode()
        accept = hashlib.sha1(client_key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()  # noqa: S324 (the protocol's hash)
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", base64.b64encode(accept).decode())
        self.send_header("x-echo-ws", f"<{self.real_key}>")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        ws = Connection(ConnectionType.SERVER)
        text, binary = ws_echoes(self.real_key)
        while True:
            data = self.rfile.read1(65536)
            if not data:
                return
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, TextMessage | BytesMessage):
                    self.echo.ws_received.append(event.data)
                    self.wfile.write(
                        ws.send(TextMessage(data=text.data.decode()))
                        + ws.send(BytesMessage(data=binary.data))
                        + ws.send(TextMessage(data=f"you said: {event.data}"))
                        + ws.send(CloseConnection(code=1000))
                    )
                    self.wfile.flush()
                elif isinstance(event, CloseConnection):
                    return
