"""Re-sign the body of a SigV4 signed chunked upload with the real key, as it streams.

Java, Go and .NET SDKs send ``x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``
bodies in which every chunk carries a signature chained from the one before it, starting at the
seed signature of the request headers (AWS S3 API reference, "Transferring Payload in Multiple
Chunks" and "Signature calculations for trailing headers"). Once the headers are re-signed with
the real key, every chunk-signature and the x-amz-trailer-signature must be recomputed from the
new seed. A signature is always 64 hex digits, so lengths, and Content-Length, do not change.

:class:`ChunkResigner` holds back at most one chunk's data: a chunk's header carries the
signature of the data after it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac

__all__ = [
    "ChunkResigner",
    "MalformedChunkedBody",
    "chunk_signature",
    "signing_key",
    "trailer_signature",
]

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SIG_LEN = 64
_CRLF = b"\r\n"
_EXTENSION = b";chunk-signature="
_MAX_LINE = 4096  # a chunk header is under 100 bytes, a trailer line a checksum
_MAX_TRAILER = 16 * 1024


class MalformedChunkedBody(ValueError):
    """The body does not follow the aws-chunked framing; the message names what is wrong."""


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """SigV4's kSigning: HMAC chain over ``date`` (YYYYMMDD), region, service, aws4_request."""
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _sign(key: bytes, *lines: str) -> str:
    return hmac.new(key, "\n".join(lines).encode(), hashlib.sha256).hexdigest()


def _chunk_signature(key: bytes, timestamp: str, scope: str, previous: str, sha256: str) -> str:
    return _sign(key, "AWS4-HMAC-SHA256-PAYLOAD", timestamp, scope, previous, _EMPTY_SHA256, sha256)


def chunk_signature(key: bytes, timestamp: str, scope: str, previous: str, data: bytes) -> str:
    """The chunk-signature of ``data``, chained from ``previous`` (the seed or the last chunk's)."""
    return _chunk_signature(key, timestamp, scope, previous, hashlib.sha256(data).hexdigest())


def trailer_signature(key: bytes, timestamp: str, scope: str, previous: str, trailer: bytes) -> str:
    """The x-amz-trailer-signature over canonical trailer headers, e.g.
    ``b"x-amz-checksum-crc32c:sOO8/Q==\\n"``, chained from the final chunk's signature."""
    trailer_sha256 = hashlib.sha256(trailer).hexdigest()
    return _sign(key, "AWS4-HMAC-SHA256-TRAILER", timestamp, scope, previous, trailer_sha256)


def _is_signature(value: bytes) -> bool:
    return len(value) == _SIG_LEN and _HEX.issuperset(value)


class _Expect(enum.Enum):
    """What comes next in the body; the value names it in error messages."""

    HEADER = "chunk header"
    DATA = "chunk data"
    DATA_END = "CRLF after chunk data"
    FINAL_END = "CRLF after the final chunk"
    TRAILER = "trailer"
    TRAILER_END = "CRLF after the trailer"
    DONE = "end of body"


_CRLF_ONLY = (_Expect.DATA_END, _Expect.FINAL_END, _Expect.TRAILER_END)


class ChunkResigner:
    """Callable for mitmproxy's ``flow.request.stream``: called with each piece of the body as it
    arrives (pieces split anywhere, even inside a chunk header), and once with b"" at the end.
    Returns the re-signed bytes ready so far; [] means nothing yet (mitmproxy's notes say never
    return b"" mid-stream on HTTP/1.1). Raises :class:`MalformedChunkedBody`.
    """

    def __init__(
        self,
        key: bytes,
        timestamp: str,
        scope: str,
        seed_signature: str,
        *,
        trailer: bool,
        max_chunk: int = 16 * 1024 * 1024,
    ) -> None:
        self._key = key
        self.timestamp = timestamp
        self.scope = scope
        self.trailer = trailer
        self.max_chunk = max_chunk
        self._previous = seed_signature
        self._expect = _Expect.HEADER
        self._line = bytearray()  # a header, CRLF or trailer line not yet complete
        self._size_text = b""  # the chunk size as sent: kept so lengths do not change
        self._need = 0
        self._data = bytearray()
        self._hash = hashlib.sha256()
        self._canonical = bytearray()  # trailer headers as signed: name:value\n

    def __repr__(self) -> str:
        return (
            f"ChunkResigner(scope={self.scope!r}, timestamp={self.timestamp!r}, "
            f"trailer={self.trailer!r}, key=<redacted>)"
        )

    def __call__(self, data: bytes) -> list[bytes]:
        if not data:
            if self._expect is not _Expect.DONE:
                raise MalformedChunkedBody(f"body ended while expecting the {self._expect.value}")
            return []
        out: list[bytes] = []
        view, pos, end = memoryview(data), 0, len(data)
        while pos < end:
            if self._expect is _Expect.DONE:
                raise MalformedChunkedBody("data after the final chunk")
            if self._expect is _Expect.DATA:
                piece = view[pos : pos + self._need]
                self._data += piece
                self._hash.update(piece)
                self._need -= len(piece)
                pos += len(piece)
                if not self._need:
                    self._expect = _Expect.DATA_END
                continue
            newline = data.find(b"\n", pos)
            stop = end if newline == -1 else newline + 1
            self._line += view[pos:stop]
            pos = stop
            if self._expect in _CRLF_ONLY and not _CRLF.startswith(self._line):
                raise MalformedChunkedBody(f"missing {self._expect.value}")
            if len(self._line) > _MAX_LINE:
                raise MalformedChunkedBody(f"{self._expect.value} line too long")
            if newline != -1:
                line = bytes(self._line)
                self._line.clear()
                out += self._on_line(line)
        return out

    def _on_line(self, line: bytes) -> list[bytes]:
        if not line.endswith(_CRLF):
            raise MalformedChunkedBody(f"{self._expect.value} does not end with CRLF")
        if self._expect is _Expect.HEADER:
            return self._on_header(line[:-2])
        if self._expect is _Expect.DATA_END:
            self._previous = _chunk_signature(
                self._key, self.timestamp, self.scope, self._previous, self._hash.hexdigest()
            )
            header = (self._size_text, _EXTENSION, self._previous.encode(), _CRLF)
            chunk = b"".join((*header, self._data, _CRLF))
            self._data, self._hash = bytearray(), hashlib.sha256()
            self._expect = _Expect.HEADER
            return [chunk]
        if self._expect is _Expect.TRAILER:
            return [self._on_trailer(line)]
        self._expect = _Expect.DONE  # FINAL_END or TRAILER_END: the line is CRLF
        return [line]

    def _on_header(self, header: bytes) -> list[bytes]:
        size_text, extension, signature = header.partition(_EXTENSION)
        if not extension:
            raise MalformedChunkedBody("chunk header without ;chunk-signature=")
        if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
            raise MalformedChunkedBody("chunk size is not a hex number")
        if not _is_signature(signature):
            raise MalformedChunkedBody("chunk-signature is not 64 hex digits")
        size = int(size_text, 16)
        if size > self.max_chunk:
            raise MalformedChunkedBody(f"chunk of {size} bytes is over the {self.max_chunk} limit")
        if size:
            self._size_text, self._need = size_text, size
            self._expect = _Expect.DATA
            return []
        self._previous = chunk_signature(self._key, self.timestamp, self.scope, self._previous, b"")
        self._expect = _Expect.TRAILER if self.trailer else _Expect.FINAL_END
        return [b"".join((size_text, _EXTENSION, self._previous.encode(), _CRLF))]

    def _on_trailer(self, line: bytes) -> bytes:
        if line == _CRLF:
            raise MalformedChunkedBody("trailer without x-amz-trailer-signature")
        name, colon, value = line[:-2].partition(b":")
        name = name.strip().lower()
        if not colon or not name:
            raise MalformedChunkedBody("trailer line is not name:value")
        if name == b"x-amz-trailer-signature":
            if not _is_signature(value.lstrip(b" \t")):
                raise MalformedChunkedBody("x-amz-trailer-signature is not 64 hex digits")
            signature = trailer_signature(
                self._key, self.timestamp, self.scope, self._previous, bytes(self._canonical)
            )
            self._expect = _Expect.TRAILER_END
            return line[: -2 - _SIG_LEN] + signature.encode() + _CRLF
        # Canonical form as in AWS's trailer example: lower-case name, trimmed value, LF, in the
        # order sent. The line itself goes on unchanged.
        self._canonical += name + b":" + value.strip() + b"\n"
        if len(self._canonical) > _MAX_TRAILER:
            raise MalformedChunkedBody("trailer too long")
        return line
