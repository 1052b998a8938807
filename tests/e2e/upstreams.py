"""Local servers that stand in for the provider APIs in end-to-end tests.

Each server runs on 127.0.0.1 (a free port) in a daemon thread and records every request it
receives, so a test can assert what reached an upstream, and that a refused request reached
none. The provider-like servers answer 401 in the provider's own error shape unless the real key
arrives in the provider's real place, and otherwise answer in the JSON and SSE shapes the
official SDKs parse. They never echo a credential back.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "AnthropicHandler",
    "OpenAIHandler",
    "RecordingHandler",
    "SeenRequest",
    "Upstream",
    "reply_text",
]


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str  # as sent, query included
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, looked up case-insensitively."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def raw(self) -> bytes:
        """Everything this request carried, for searching."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.method} {self.path}\n{head}\n\n".encode() + self.body


def reply_text(prompt: str) -> str:
    """What the fake models answer, so a test can check the request body made it through."""
    return f"local upstream heard: {prompt}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    upstream: Upstream

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response is normal here (SDKs close streams early).
        pass


class Upstream:
    """One server on 127.0.0.1:<free port>, HTTPS when given an SSL context."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        ssl_context: ssl.SSLContext | None = None,
        real_key: str | None = None,
    ) -> None:
        self.real_key = real_key
        self._requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.upstream = self
        if ssl_context is not None:
            # The handshake runs on first read, in the request's own thread, so one stuck
            # client cannot block accept().
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if ssl_context is not None else "http"
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._requests)

    def record(self, request: SeenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has Content-Length or is chunked
    server: _Server
    server_version = "local-upstream/1"
    timeout = 30  # seconds a silent connection may hold a thread
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        body = self._read_body()
        seen = SeenRequest(self.command, self.path, tuple(self.headers.items()), body)
        self.server.upstream.record(seen)
        self.respond(seen)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    @property
    def real_key(self) -> str:
        key = self.server.upstream.real_key
        assert key, "this upstream was started without a real key"
        return key

    def respond(self, request: SeenRequest) -> None:
        raise NotImplementedError

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_sse(self, events: Iterable[tuple[str | None, str]]) -> None:
        """Server-sent events, one HTTP/1.1 chunk per event, flushed as it is written."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event, data in events:
            text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
            chunk = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def json_body(self, request: SeenRequest) -> dict[str, Any]:
        try:
            obj = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return obj if isinstance(obj, dict) else {}


def _last_user_text(messages: Any) -> str:
    """The text of the last user message, in either provider's message shape."""
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _words(text: str) -> list[str]:
    """Split so that joining the pieces gives the text back: how models stream."""
    pieces = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(pieces)]


class OpenAIHandler(_Handler):
    """api.openai.com: the key is only accepted as ``Authorization: Bearer <key>``."""

    MODEL = "gpt-4o-mini"

    def respond(self, request: SeenRequest) -> None:
        if request.header("Authorization") != f"Bearer {self.real_key}":
            self.openai_error(
                401,
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
            return
        path = request.path.split("?", 1)[0]
        if request.method == "GET" and path == "/v1/models":
            self.send_json(200, self.models())
        elif request.method == "POST" and path == "/v1/chat/completions":
            body = self.json_body(request)
            text = reply_text(_last_user_text(body.get("messages")))
            if body.get("stream"):
                self.send_sse((None, data) for data in self.chunks(text))
            else:
                self.send_json(200, self.completion(text))
        else:
            self.openai_error(
                404, f"Invalid URL ({request.method} {path})", "invalid_request_error", None
            )

    def openai_error(self, status: int, message: str, kind: str, code: str | None) -> None:
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self.send_json(status, body, {"x-request-id": "req_local"})

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1686935002, "owned_by": "openai"}
                for m in (self.MODEL, "gpt-4o")
            ],
        }

    def completion(self, text: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-local0001",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.MODEL,
            "system_fingerprint": "fp_local",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
        }

    def chunks(self, text: str) -> list[str]:
        def chunk(delta: dict[str, Any], finish: str | None) -> str:
            return json.dumps(
                {
                    "id": "chatcmpl-local0002",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": self.MODEL,
                    "system_fingerprint": "fp_local",
                    "choices": [
                        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                    ],
                }
            )

        return [
            chunk({"role": "assistant", "content": "", "refusal": None}, None),
            *(chunk({"content": word}, None) for word in _words(text)),
            chunk({}, "stop"),
            "[DONE]",
        ]


class AnthropicHandler(_Handler):
    """api.anthropic.com: the key is accepted as ``x-api-key`` or ``Authorization: Bearer``."""

    MODEL = "claude-sonnet-4-5"

    def respond(self, request: SeenRequest) -> None:
        if self.real_key not in (
            request.header("x-api-key"),
            (request.header("Authorization") or "").removeprefix("Bearer "),
        ):
            self.anthropic_error(401, "authentication_error", "invalid x-api-key")
            return
        path = request.path.split("?", 1)[0]
        if request.method == "POST" and path == "/v1/messages":
            body = self.json_body(request)
            text = reply_text(_last_user_text(body.get("messages")))
            if body.get("stream"):
                self.send_sse(self.events(text))
            else:
                self.send_json(200, self.message(text))
        else:
            self.anthropic_error(404, "not_found_error", f"Not found: {request.method} {path}")

    def anthropic_error(self, status: int, kind: str, message: str) -> None:
        body = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_local",
        }
        self.send_json(status, body, {"request-id": "req_local"})

    def message(self, text: str, *, streaming: bool = False) -> dict[str, Any]:
        return {
            "id": "msg_local0001",
            "type": "message",
            "role": "assistant",
            "model": self.MODEL,
            "content": [] if streaming else [{"type": "text", "text": text, "citations": None}],
            "stop_reason": None if streaming else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1 if streaming else 9},
        }

    def events(self, text: str) -> list[tuple[str, str]]:
        def event(kind: str, **fields: Any) -> tuple[str, str]:
            return kind, json.dumps({"type": kind, **fields})

        return [
            event("message_start", message=self.message(text, streaming=True)),
            event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            event("ping"),
            *(
                event("content_block_delta", index=0, delta={"type": "text_delta", "text": w})
                for w in _words(text)
            ),
            event("content_block_stop", index=0),
            event(
                "message_delta",
                delta={"stop_reason": "end_turn", "stop_sequence": None},
                usage={"output_tokens": 9},
            ),
            event("message_stop"),
        ]


class RecordingHandler(_Handler):
    """Any other host: answers every request with 200 and records it."""

    def respond(self, request: SeenRequest) -> None:
        self.send_json(200, {"ok": True, "path": request.path.split("?", 1)[0]})
