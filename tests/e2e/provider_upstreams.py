"""Local stand-ins for the providers beyond OpenAI and Anthropic (see upstreams.py).

Each accepts only the real key in the provider's real place (a header with its scheme, the
``key`` query parameter, the Basic password, the ``/bot<key>/`` path segment), answers 401 in
the provider's error shape otherwise, and records every request it gets.
"""

from __future__ import annotations

import base64
import os
import subprocess
from typing import Any
from urllib.parse import parse_qs, urlsplit

from upstreams import OpenAIHandler, SeenRequest, _Handler, reply_text

__all__ = ["HANDLERS", "HEADER_PLACES", "GitSmartHttpHandler"]

# provider → (header, value with {key}) where its local upstream accepts the key
HEADER_PLACES = {
    "brave": ("X-Subscription-Token", "{key}"),
    "notion": ("Authorization", "Bearer {key}"),
    "cloudflare": ("Authorization", "Bearer {key}"),
    "discord": ("Authorization", "Bot {key}"),
}


def _path(request: SeenRequest) -> str:
    return urlsplit(request.path).path


class _HeaderKeyHandler(_Handler):
    provider = ""

    def respond(self, request: SeenRequest) -> None:
        header, form = HEADER_PLACES[self.provider]
        if request.header(header) != form.format(key=self.real_key):
            self.send_json(401, {"message": "401: Unauthorized", "code": 0})
            return
        self.send_json(200, {"ok": True, "provider": self.provider, "path": _path(request)})


def _header_handler(name: str) -> type[_Handler]:
    return type(f"{name.title()}Handler", (_HeaderKeyHandler,), {"provider": name})


class DiscordHandler(_HeaderKeyHandler):
    provider = "discord"

    def respond(self, request: SeenRequest) -> None:
        if not _path(request).startswith("/api/"):
            self.send_json(404, {"message": "404: Not Found", "code": 0})
            return
        super().respond(request)


class TelegramHandler(_Handler):
    """api.telegram.org: the bot token only as the path segment ``/bot<token>/``."""

    def respond(self, request: SeenRequest) -> None:
        prefix = f"/bot{self.real_key}/"
        if not _path(request).startswith(prefix):
            self.send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        method = _path(request)[len(prefix) :]
        self.send_json(200, {"ok": True, "result": {"method": method, "is_bot": True}})


class GeminiHandler(_Handler):
    """generativelanguage.googleapis.com: ``x-goog-api-key`` or ``?key=``, nothing else."""

    def respond(self, request: SeenRequest) -> None:
        query = parse_qs(urlsplit(request.path).query)
        keys = [request.header("x-goog-api-key"), *query.get("key", [])]
        if self.real_key not in keys:
            self.send_json(
                400 if not any(keys) else 403,
                {"error": {"code": 403, "message": "API key not valid.", "status": "INVALID"}},
            )
            return
        body = self.json_body(request)
        prompt = "".join(
            part.get("text", "")
            for content in body.get("contents", [])
            for part in content.get("parts", [])
        )
        self.send_json(200, self.generated(reply_text(prompt)))

    @staticmethod
    def generated(text: str) -> dict[str, Any]:
        return {
            "candidates": [
                {
                    "content": {"parts": [{"text": text}], "role": "model"},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
            "modelVersion": "gemini-2.5-flash",
        }


class GroqHandler(OpenAIHandler):
    """api.groq.com: OpenAI's API under /openai/v1, ``Authorization: Bearer`` only."""

    def respond(self, request: SeenRequest) -> None:
        if not request.path.startswith("/openai/"):
            self.send_json(404, {"error": {"message": "Unknown request URL"}})
            return
        super().respond(
            SeenRequest(request.method, request.path[7:], request.headers, request.body)
        )


class GitHubHandler(_Handler):
    """api.github.com (``Bearer`` or ``token``) and github.com git over HTTPS (Basic
    ``x-access-token:<token>``, as git sends it), behind one upstream."""

    def respond(self, request: SeenRequest) -> None:
        basic = base64.b64encode(f"x-access-token:{self.real_key}".encode()).decode()
        accepted = {f"Bearer {self.real_key}", f"token {self.real_key}", f"Basic {basic}"}
        if request.header("Authorization") not in accepted:
            self.send_json(
                401,
                {"message": "Requires authentication"},
                {"WWW-Authenticate": 'Basic realm="GitHub"'},
            )
            return
        self.send_json(200, {"ok": True, "provider": "github", "path": _path(request)})


HANDLERS: dict[str, type[_Handler]] = {
    "gemini": GeminiHandler,
    "groq": GroqHandler,
    "brave": _header_handler("brave"),
    "notion": _header_handler("notion"),
    "cloudflare": _header_handler("cloudflare"),
    "discord": DiscordHandler,
    "telegram": TelegramHandler,
    "github": GitHubHandler,
}


class GitSmartHttpHandler(_Handler):
    """github.com's git smart HTTP (clone and push) through ``git http-backend``, for Basic
    ``x-access-token:<key>`` only, as GitHub takes an installation or personal token.

    ``server.upstream.git_root`` is the directory holding the bare repositories.
    """

    def respond(self, request: SeenRequest) -> None:
        basic = base64.b64encode(f"x-access-token:{self.real_key}".encode()).decode()
        if request.header("Authorization") != f"Basic {basic}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        url = urlsplit(request.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.upstream.git_root),  # type: ignore[attr-defined]
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "x-access-token",  # receive-pack (push) needs an authenticated user
            "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_METHOD": request.method,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": request.header("Content-Type") or "",
            "CONTENT_LENGTH": str(len(request.body)),
            "HTTP_CONTENT_ENCODING": request.header("Content-Encoding") or "",
            "HTTP_GIT_PROTOCOL": request.header("Git-Protocol") or "",
        }
        out = subprocess.run(
            ["git", "http-backend"], input=request.body, env=env, capture_output=True, check=True
        ).stdout
        head, _, body = out.partition(b"\r\n\r\n") if b"\r\n\r\n" in out else out.partition(b"\n\n")
        headers = [line.split(":", 1) for line in head.decode("latin-1").splitlines() if line]
        status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "status":
                self.send_header(name, value.strip())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
