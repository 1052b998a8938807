"""What an agent received, checked against what the echo upstream sent.

The leak search is written independently of seks.addon.scrub: the harness's forms (raw, hex,
percent, base64 at each alignment) plus JSON ``\\uXXXX`` escapes, HTML entities, UTF-16 and
base64 with ``/`` written ``\\/``.
"""

from __future__ import annotations

import base64
import queue
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import brotli
from echo_upstream import Echo
from harness import AGENTS, Seks, encoded_forms


def leak_forms(secret: str) -> dict[str, bytes]:
    forms = encoded_forms(secret)
    for name, form in list(forms.items()):
        if name.startswith("base64") and b"/" in form:
            forms[name + "-json"] = form.replace(b"/", b"\\/")
    escapes = "".join(f"\\u{ord(c):04x}" for c in secret)
    forms |= {
        "json-unicode": escapes.encode(),
        "JSON-UNICODE": escapes.upper().replace("\\U", "\\u").encode(),
        "html-decimal": "".join(f"&#{ord(c)};" for c in secret).encode(),
        "html-hex": "".join(f"&#x{ord(c):x};" for c in secret).encode(),
        "utf-16le": secret.encode("utf-16-le"),
        "utf-16be": secret.encode("utf-16-be"),
    }
    return forms


def find_all_leaks(secrets: Iterable[str], places: dict[str, bytes]) -> list[str]:
    """Where each secret appears, in any form: an empty list means no leak."""
    return [
        f"{secret[:6]}… as {form} in {where}"
        for secret in secrets
        for form, needle in leak_forms(secret).items()
        for where, data in places.items()
        if needle in data
    ]


def leniently_decoded(body: bytes, encoding: str) -> bytes:
    """What an agent gets out of a damaged gzip or br body with a forgiving decoder."""
    try:
        if encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body)
        return brotli.Decompressor().process(body)
    except (zlib.error, brotli.error):
        return b""  # not that encoding: the proxy passed it on decoded


def _spans(sent: Echo) -> list[tuple[bytes, bool]]:
    """Adjacent parts of the same kind merged: a form sent in two pieces is one span."""
    spans: list[tuple[bytes, bool]] = []
    for data, secret in sent.parts:
        if spans and spans[-1][1] == secret:
            spans[-1] = (spans[-1][0] + data, secret)
        else:
            spans.append((data, secret))
    return spans


def assert_masked(received: bytes | str, sent: Echo, where: str) -> None:
    """Every secret span masked by something of its own length, every other byte unchanged.
    Failure messages quote only literal parts, never a secret."""
    got = received.encode() if isinstance(received, str) else received
    assert len(got) == len(sent.data), (
        f"{where}: {len(got)} bytes received, {len(sent.data)} sent: a mask changed the length"
    )
    pos = 0
    for data, secret in _spans(sent):
        piece = got[pos : pos + len(data)]
        if secret:
            assert piece != data, f"{where}: the secret span at byte {pos} arrived unmasked"
        else:
            assert piece == data, f"{where}: at byte {pos} expected {data!r}, got {piece!r}"
        pos += len(data)


def body_of(response: dict[str, Any]) -> bytes:
    return base64.b64decode(response["body"])


def header_values(response: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in response["headers"] if k.lower() == name.lower()]


def token_rows(seks: Seks, token_id: str, event: str, count: int) -> list[dict[str, Any]]:
    """Audit rows of one event for one token, once ``count`` are there (or after 10 s). The
    proxy commits a response's rows shortly after answering, so rows of an earlier test may
    still arrive: the token tells this test's rows apart."""
    deadline = time.monotonic() + 10
    while True:
        rows = [r for r in seks.audit(5000) if r["token_id"] == token_id and r["event"] == event]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows


def first_line_then_rest(
    agent_python: Path,
    args: list[str],
    env: dict[str, str],
    release: Callable[[], None],
    timeout: float,
) -> tuple[str | None, list[str], str, int]:
    """Run an agent script; wait up to ``timeout`` for its first stdout line, then call
    ``release`` (whether the line came or not) and collect the rest. Returns the first line
    (None if none came in time), the other lines, stderr and the exit code."""
    lines: queue.Queue[str | None] = queue.Queue()
    with subprocess.Popen(
        [str(agent_python), str(AGENTS / args[0]), *args[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    ) as agent:
        assert agent.stdout is not None and agent.stderr is not None
        out = agent.stdout

        def read() -> None:
            for line in out:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            first = lines.get(timeout=timeout)
        except queue.Empty:
            first = None
        finally:
            release()
            reader.join(60)
            stderr = agent.stderr.read()
    rest = list(iter(lines.get_nowait, None)) if first is not None else []
    return first, rest, stderr, agent.returncode
