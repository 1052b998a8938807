"""What goes to the agent in place of an upstream's response body.

Either the body decoded and scrubbed chunk by chunk (:class:`StreamBody`, a
``flow.response.stream`` callable), or a refusal that replaces all of it (:class:`Refusal`).
Kept apart from :mod:`seks.addon.responses`, which decides which of these a response gets.
"""

from __future__ import annotations

import logging
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import brotli
import zstandard
from mitmproxy import http
from mitmproxy.proxy.layers.http._events import ResponseEndOfMessage

from seks.addon.scrub import StreamScrubber
from seks.errors import UpstreamError, agent_error_body

__all__ = [
    "DECODABLE",
    "Refusal",
    "StreamBody",
    "decoder",
    "refuse_unscanned",
    "replace_with_refusal",
]

log = logging.getLogger("seks")

DECODABLE = ("gzip", "deflate", "br", "zstd", "identity")


def decoder(encoding: str) -> Callable[[bytes], bytes] | None:
    """An incremental decoder for a Content-Encoding in DECODABLE; None for identity."""
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if encoding == "deflate":
        return _Deflate().decompress
    if encoding == "br":
        return brotli.Decompressor().process  # type: ignore[no-any-return]
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress
    return None


class _Deflate:
    """HTTP 'deflate' is zlib-wrapped by the standard, raw deflate in practice: accept both."""

    def __init__(self) -> None:
        self._obj: zlib._Decompress | None = None
        self._head = b""

    def decompress(self, data: bytes) -> bytes:
        if self._obj is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            zlib_wrapped = (self._head[0] & 0x0F) == 8 and int.from_bytes(self._head[:2]) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        return self._obj.decompress(data)


def _at_end_of_message() -> bool:
    """mitmproxy calls a stream callable with b"" at the end of the message, and also for an
    empty HTTP/2 DATA frame mid-stream; only its caller's event tells the two apart. Releasing
    held bytes at a false end could let a secret split across that frame through."""
    caller = sys._getframe(2)  # StreamBody.__call__ <- mitmproxy's state_stream_response_body
    event = caller.f_locals.get("event")
    return event is None or isinstance(event, ResponseEndOfMessage)


@dataclass
class StreamBody:
    """The ``flow.response.stream`` callable: decode, scrub, pass on."""

    scrubber: StreamScrubber
    decode: Callable[[bytes], bytes] | None
    broken: bool = False  # decoding or scanning failed: nothing more is passed on

    def __call__(self, chunk: bytes) -> bytes | list[bytes]:
        if self.broken:
            return []
        if chunk:
            try:
                data = self.decode(chunk) if self.decode else chunk
            except (zlib.error, brotli.error, zstandard.ZstdError):
                # Headers are gone already: the agent sees a cut body, never raw bytes.
                self.broken = True
                log.warning("SEKS: a compressed response stopped decoding; the rest is dropped")
                return []
            return self._scrubbed(self.scrubber.feed, data)
        if not _at_end_of_message():
            return []
        return self._scrubbed(lambda _: self.scrubber.finish(), b"")

    def _scrubbed(self, step: Callable[[bytes], bytes], data: bytes) -> bytes | list[bytes]:
        try:
            out = step(data)
        except Exception:
            # Not raised into mitmproxy's layers: the rest of the body is dropped, as for a
            # body that stops decoding, and the proxy says why.
            self.broken = True
            log.exception("SEKS: internal error while scanning a streamed response; cut off")
            return []
        return out if out else []  # b"" would end an HTTP/1.1 chunked body (notes)


@dataclass
class Refusal:
    """Replaces an upstream body we must not pass on unscanned."""

    body: bytes
    sent: bool = False

    def __call__(self, chunk: bytes) -> bytes | list[bytes]:
        if self.sent:
            return []
        self.sent = True
        return self.body


def replace_with_refusal(response: http.Response, err: UpstreamError) -> None:
    body = agent_error_body(err)
    response.status_code = err.status
    response.reason = "Bad Gateway"
    for name in ("content-encoding", "content-length", "transfer-encoding"):
        response.headers.pop(name, None)
    response.headers["content-type"] = "application/json"
    if response.http_version == "HTTP/1.1":
        response.headers["transfer-encoding"] = "chunked"
    response.stream = Refusal(body)


def refuse_unscanned(response: http.Response, err: UpstreamError, *, streaming: bool) -> None:
    """Nothing the upstream sent goes on: status, headers and body are all replaced."""
    body = agent_error_body(err)
    response.status_code = err.status
    response.reason = "Bad Gateway"
    response.headers = http.Headers(content_type="application/json")
    if not streaming:  # the body is in: replace it whole
        response.stream = False
        response.content = body  # sets Content-Length
        return
    if response.http_version == "HTTP/1.1":
        response.headers["transfer-encoding"] = "chunked"
    response.stream = Refusal(body)
