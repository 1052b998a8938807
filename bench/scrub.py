"""What does scrubbing responses cost? (issue 4, "Benchmark")

Two parts, in one run:

1. **Scrubber throughput**, in this process: ``scrub(matcher, body)`` on a 10 MB body (MB/s)
   and ``StreamScrubber.feed`` per 200-byte chunk (µs), for 10, 100 and 1,000 secrets, against
   a naive ``bytes.find`` loop over the same patterns (``encodings_of``); and the matcher's
   build (compile) time. The body is SSE-like JSON with base64 blobs, and a few of the secrets
   planted in several encodings. Medians over ``--reps`` repetitions.
2. **SSE inter-event delay** through ``seks proxy`` against bare mitmproxy (streaming) and
   direct: a local HTTPS upstream sends an event every ~20 ms stamped with its
   ``time.monotonic()``; the client (stdlib ``http.client`` through a CONNECT tunnel) stamps
   each arrival; delay = arrival - send. Streams alternate between the targets.

Targets (issue 4): at 1,000 secrets at least 300 MB/s and at most 10 µs per chunk; SSE delay
within 1 ms of bare mitmproxy.

    .venv/bin/python bench/scrub.py            # full run, a few minutes
    .venv/bin/python bench/scrub.py --quick    # smoke run
    .venv/bin/python bench/scrub.py --part sse --json bench/results/scrub.json
"""

from __future__ import annotations

import argparse
import base64
import gc
import http.client
import importlib.metadata
import json
import os
import platform
import random
import shutil
import ssl
import statistics
import string
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from overhead import (
    CLK_TCK,
    BenchError,
    Service,
    find_tool,
    make_certs,
    percentile,
    proc_cpu_seconds,
    run_checked,
    start_mitmdump,
    start_seks,
    start_upstream,
)

from seks.addon.scrub import Matcher, StreamScrubber, encodings_of, scrub

TARGET_MBPS = 300.0  # at 1,000 secrets
TARGET_CHUNK_US = 10.0  # at 1,000 secrets
TARGET_SSE_MS = 1.0  # seks - bare
SECRET_COUNTS = (10, 100, 1000)
CHUNK = 200
SEED = 4  # the body and the secrets are the same in every run
# A naive run is cut to about this many pattern-bytes (bytes scanned x patterns) per repetition
# and scaled: 1,000 secrets' ~14k patterns over 10 MB would take minutes per repetition.
NAIVE_BUDGET = 3e9
NAIVE_CHUNK_BUDGET = 4e6  # pattern-chunks per repetition for the naive streamer


# =========================================================================== part 1: scrubber


PREFIXES = ("sk-proj-", "sk-ant-api03-", "sk-", "ghp_", "github_pat_", "xoxb-", "")
KEY_ALPHABET = string.ascii_letters + string.digits
_WORDS = (
    "the of and to in is that for it as with was on be by this are from or have an they "
    "which one you were her all she there would their we him been has when who will more no "
    "if out so said what up its about into than them can only other new some could time these "
    "two may then do first any my now such like our over man me even most made after also did "
    "model token stream delta content function call arguments tool result response request"
)
WORDS = _WORDS.split()


def make_secrets(n: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """``n`` API-key-like values of 40-60 characters, some with common provider prefixes
    (patterns that share a head are the expensive case for the hold-back check)."""
    out = []
    for i in range(n):
        prefix = rng.choice(PREFIXES)
        length = rng.randint(40, 60)
        tail = "".join(rng.choices(KEY_ALPHABET, k=length - len(prefix)))
        out.append((f"key{i:04d}", (prefix + tail).encode()))
    return out


@dataclass
class Body:
    data: bytes
    events: int
    blobs: int
    blob_bytes: int
    planted: list[tuple[str, str]]  # (secret name, encoding) of every planted occurrence


def _plant(value: bytes, encoding: str, rng: random.Random) -> bytes:
    """``value`` written in ``encoding`` the way an upstream might echo it, as an SSE event."""
    if encoding.startswith("base64"):
        # Inside a larger base64 blob, at a random byte alignment: only the aligned patterns
        # can find it there.
        blob = rng.randbytes(rng.randint(0, 40)) + value + rng.randbytes(rng.randint(0, 40))
        enc = base64.urlsafe_b64encode if encoding == "base64url" else base64.b64encode
        text = enc(blob)
        if encoding == "base64-json":
            text = text.replace(b"/", b"\\/")
        return b'data: {"type":"file","b64_json":"' + text + b'"}\n\n'
    forms = {
        "raw": value,
        "hex": value.hex().encode(),
        "percent": "".join(f"%{b:02X}" for b in value).encode(),
        "json-unicode": "".join(f"\\u{b:04x}" for b in value).encode(),
        "html-entity": "".join(f"&#{b};" for b in value).encode(),
        "utf-16le": value.decode().encode("utf-16-le"),
    }
    return b'data: {"type":"echo","debug":"' + forms[encoding] + b'"}\n\n'


PLANT_ENCODINGS = (
    "raw",
    "base64",
    "base64url",
    "base64-json",
    "hex",
    "percent",
    "json-unicode",
    "html-entity",
    "utf-16le",
)


def make_body(size: int, planted_secrets: list[tuple[str, bytes]], rng: random.Random) -> Body:
    """About ``size`` bytes of OpenAI-like SSE events, a base64 blob every ~25 events (~20% of
    the bytes), and each of ``planted_secrets`` once, each in the next of PLANT_ENCODINGS."""
    parts: list[bytes] = []
    total = events = blobs = blob_bytes = 0
    plants = [
        (name, value, PLANT_ENCODINGS[i % len(PLANT_ENCODINGS)])
        for i, (name, value) in enumerate(planted_secrets)
    ]
    # Spread the planted events evenly over the body.
    plant_at = {int(size * (i + 0.5) / len(plants)): p for i, p in enumerate(plants)}
    next_plants = sorted(plant_at)
    planted: list[tuple[str, str]] = []
    while total < size:
        if next_plants and total >= next_plants[0]:
            name, value, encoding = plant_at[next_plants.pop(0)]
            part = _plant(value, encoding, rng)
            planted.append((name, encoding))
        elif rng.random() < 0.04:
            raw = rng.randbytes(rng.randint(300, 3000))
            part = b'data: {"type":"image","b64_json":"' + base64.b64encode(raw) + b'"}\n\n'
            blobs += 1
            blob_bytes += len(part)
        else:
            doc = {
                "id": f"chatcmpl-{rng.getrandbits(64):016x}",
                "object": "chat.completion.chunk",
                "created": 1731000000 + events,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": " ".join(rng.choices(WORDS, k=rng.randint(1, 12)))},
                        "finish_reason": None,
                    }
                ],
            }
            part = b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"
            events += 1
        parts.append(part)
        total += len(part)
    return Body(b"".join(parts), events, blobs, blob_bytes, planted)


def make_dense(data: bytes, value: bytes, n: int) -> bytes:
    """``data`` with ``n`` more events echoing ``value`` raw, spread evenly (at event ends)."""
    parts = []
    pos = 0
    for i in range(1, n + 1):
        cut = data.find(b"\n\n", len(data) * i // (n + 1))
        if cut < 0:
            break
        parts += [data[pos : cut + 2], b'data: {"type":"echo","debug":"' + value + b'"}\n\n']
        pos = cut + 2
    parts.append(data[pos:])
    return b"".join(parts)


def all_patterns(named: Sequence[tuple[str, bytes]]) -> list[bytes]:
    return [form for _, value in named for _, form in encodings_of(value)]


def naive_find(patterns: Sequence[bytes], data: bytes) -> list[tuple[int, int]]:
    """Every occurrence of every pattern, by ``bytes.find``: the baseline."""
    found = []
    for p in patterns:
        at = data.find(p)
        while at != -1:
            found.append((at, at + len(p)))
            at = data.find(p, at + 1)
    return found


def naive_stream(patterns: Sequence[bytes], chunks: Sequence[bytes], carry: int) -> int:
    """A naive streaming finder: each chunk plus the previous ``carry`` bytes searched with
    ``bytes.find`` for every pattern (finding only, no masking). Returns the number found."""
    n = 0
    tail = b""
    for chunk in chunks:
        data = tail + chunk
        for p in patterns:
            at = data.find(p)
            while at != -1:
                n += 1
                at = data.find(p, at + 1)
        tail = data[-carry:] if carry else b""
    return n


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def stream_all(matcher: Matcher, chunks: Sequence[bytes]) -> bytes:
    scrubber = StreamScrubber(matcher)
    out = [scrubber.feed(c) for c in chunks]
    out.append(scrubber.finish())
    return b"".join(out)


@dataclass
class MicroResult:
    secrets: int
    patterns: int
    reps: int
    build_ms: float
    scrub_mbps: float
    find_mbps: float
    dense_mbps: float
    chunk_us: float
    chunk_b64_us: float
    naive_mbps: float
    naive_chunk_us: float
    naive_bytes: int  # how much of the body the naive loop scanned per repetition
    naive_chunks: int
    matches: int
    build_ms_all: list[float] = field(default_factory=list)
    scrub_mbps_all: list[float] = field(default_factory=list)
    chunk_us_all: list[float] = field(default_factory=list)


def check_scrubbed(
    out: bytes, body: Body, planted_values: dict[str, bytes], counts: Counter[tuple[str, str]]
) -> None:
    """The scrubbed body has none of the planted secrets in any encoding, and every planted
    occurrence was counted."""
    for name, value in planted_values.items():
        for encoding, form in encodings_of(value):
            if form in out:
                raise BenchError(f"{name} survived scrubbing in {encoding}")
    # Counted by name: a form shared by two encodings (URL-safe base64 of a value whose base64
    # has no + or /) is counted under the first.
    found = Counter(name for name, _ in counts.elements())
    planted = Counter(name for name, _ in body.planted)
    missing = {name for name, n in planted.items() if found[name] < n}
    if missing:
        raise BenchError(f"planted but not counted: {sorted(missing)}")


def measure_micro(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(SEED)  # noqa: S311 (not for secrecy: a reproducible body)
    secrets_all = make_secrets(max(*args.secret_counts, len(PLANT_ENCODINGS)), rng)
    planted_secrets = secrets_all[: len(PLANT_ENCODINGS)]
    body = make_body(args.body_mb * 1_000_000, planted_secrets, rng)
    data = body.data
    mb = len(data) / 1e6
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    # The same chunk count out of the base64 blobs only: the hold-back check's worst case in
    # this body (long runs of bytes that occur in the patterns).
    b64_text = b"".join(
        line for line in data.split(b"\n") if line.startswith(b'data: {"type":"image"')
    )
    b64_chunks = [b64_text[i : i + CHUNK] for i in range(0, len(b64_text), CHUNK)][: len(chunks)]
    planted_values = dict(planted_secrets)
    dense = make_dense(data, planted_secrets[0][1], args.dense)
    print(
        f"body: {mb:.1f} MB, {body.events} SSE events, {body.blobs} base64 blobs "
        f"({body.blob_bytes / len(data):.0%} of the bytes), {len(body.planted)} planted secrets "
        f"({', '.join(e for _, e in body.planted)}); {len(chunks)} chunks of {CHUNK} bytes"
    )
    print(f"medians of {args.reps} repetitions per figure; seed {SEED}")
    header = (
        f"{'secrets':>7} {'patterns':>8} {'build':>8} {'scrub':>7} {'find':>7} {'dense':>7}"
        f" {'chunk':>7}"
        f" {'b64 chunk':>9}"
        f" | {'naive':>8} {'naive chunk':>11} | {'speed-up':>8} {'per chunk':>9}"
    )
    units = (
        f"{'':>7} {'':>8} {'ms':>8} {'MB/s':>7} {'MB/s':>7} {'MB/s':>7} {'µs':>7} {'µs':>9}"
        f" | {'MB/s':>8} {'µs':>11} | {'MB/s':>8} {'':>9}"
    )
    cases = []
    for count in args.secret_counts:
        named = secrets_all[:count]
        patterns = all_patterns(named)
        naive_bytes = min(len(data), max(CHUNK * 100, int(NAIVE_BUDGET / len(patterns))))
        naive_chunk_n = min(len(chunks), max(50, int(NAIVE_CHUNK_BUDGET / len(patterns))))
        cases.append((count, named, patterns, naive_bytes, naive_chunk_n))
    timings: dict[tuple[int, str], list[float]] = defaultdict(list)
    matches: dict[int, int] = {}
    # Repetitions outside, secret counts inside: a burst of load from elsewhere on the machine
    # then hits every secret count alike instead of all repetitions of one.
    for rep in range(args.reps):
        print(f"  repetition {rep + 1}/{args.reps}: secrets", end="", flush=True)
        for count, named, patterns, naive_bytes, naive_chunk_n in cases:
            print(f" {count}", end="", flush=True)
            max_len = max(len(p) for p in patterns)
            naive_slice = data[:naive_bytes]
            t, matcher = timed(lambda named=named: Matcher(named))
            timings[count, "build"].append(t)
            t, (out, counts) = timed(lambda m=matcher: scrub(m, data))
            timings[count, "scrub"].append(t)
            t, _ = timed(lambda m=matcher: m.find(data))
            timings[count, "find"].append(t)
            t, (_, dense_counts) = timed(lambda m=matcher: scrub(m, dense))
            timings[count, "dense"].append(t)
            t, streamed = timed(lambda m=matcher: stream_all(m, chunks))
            timings[count, "chunk"].append(t / len(chunks))
            t, _ = timed(lambda m=matcher: stream_all(m, b64_chunks))
            timings[count, "b64"].append(t / max(1, len(b64_chunks)))
            t, naive_found = timed(lambda p=patterns, d=naive_slice: naive_find(p, d))
            timings[count, "naive"].append(t)
            t, _ = timed(
                lambda p=patterns, n=naive_chunk_n, c=max_len - 1: naive_stream(p, chunks[:n], c)
            )
            timings[count, "naive_chunk"].append(t / naive_chunk_n)
            if rep == 0:
                # Checks, outside the timings: the scrubber caught everything planted, streaming
                # equals scrubbing whole, and hyperscan finds what bytes.find finds.
                check_scrubbed(out, body, planted_values, counts)
                if streamed != out:
                    raise BenchError(f"{count} secrets: streamed output != whole-body output")
                hs = {(s, e) for s, e, _ in matcher.find(naive_slice)}
                if hs != set(naive_found):
                    raise BenchError(f"{count} secrets: hyperscan and bytes.find disagree")
                matches[count] = counts.total()
                if dense_counts.total() != matches[count] + args.dense:
                    raise BenchError(f"{count} secrets: dense body: {dense_counts.total()} matches")
            del matcher, out, streamed
        print(flush=True)
    print(header)
    print(units)
    print("-" * len(header))
    results: list[MicroResult] = []
    for count, _, patterns, naive_bytes, naive_chunk_n in cases:

        def med(what: str, count: int = count) -> float:
            return statistics.median(timings[count, what])

        r = MicroResult(
            secrets=count,
            patterns=len(patterns),
            reps=args.reps,
            build_ms=med("build") * 1000,
            scrub_mbps=mb / med("scrub"),
            find_mbps=mb / med("find"),
            dense_mbps=len(dense) / 1e6 / med("dense"),
            chunk_us=med("chunk") * 1e6,
            chunk_b64_us=med("b64") * 1e6,
            naive_mbps=naive_bytes / 1e6 / med("naive"),
            naive_chunk_us=med("naive_chunk") * 1e6,
            naive_bytes=naive_bytes,
            naive_chunks=naive_chunk_n,
            matches=matches[count],
            build_ms_all=[t * 1000 for t in timings[count, "build"]],
            scrub_mbps_all=[mb / t for t in timings[count, "scrub"]],
            chunk_us_all=[t * 1e6 for t in timings[count, "chunk"]],
        )
        results.append(r)
        print(
            f"{r.secrets:>7} {r.patterns:>8} {r.build_ms:>8.1f} {r.scrub_mbps:>7.0f} "
            f"{r.find_mbps:>7.0f} {r.dense_mbps:>7.0f} "
            f"{r.chunk_us:>7.2f} {r.chunk_b64_us:>9.2f} | {r.naive_mbps:>8.2f} "
            f"{r.naive_chunk_us:>11.1f} | {r.scrub_mbps / r.naive_mbps:>7.0f}x "
            f"{r.naive_chunk_us / r.chunk_us:>8.0f}x",
            flush=True,
        )
    print()
    print(
        "scrub: scrub(matcher, body) on the whole body; find: Matcher.find alone (the hyperscan "
        "scan and its match list, no masking); dense: scrub on the same body with "
        f"{args.dense} more events echoing a secret raw (an echo endpoint); chunk: "
        f"StreamScrubber.feed per {CHUNK}-byte chunk over the whole body (mean per chunk); "
        "b64 chunk: the same over chunks of the base64 blobs only."
    )
    print(
        "naive: bytes.find for every pattern (finding only, no masking); the naive streamer "
        "searches each chunk plus the previous longest-pattern-minus-one bytes."
    )
    for r in results:
        if r.naive_bytes < len(data) or r.naive_chunks < len(chunks):
            print(
                f"  {r.secrets} secrets: naive measured on the first "
                f"{r.naive_bytes / 1e6:.2f} MB and the first {r.naive_chunks} chunks, "
                "scaled to MB/s and µs per chunk"
            )
    final = next((r for r in results if r.secrets == 1000), None)
    verdicts = {}
    if final is not None:
        verdicts = {
            "scrub_mbps": final.scrub_mbps >= TARGET_MBPS,
            "chunk_us": final.chunk_us <= TARGET_CHUNK_US,
        }
        print(
            f"1,000 secrets: {final.scrub_mbps:.0f} MB/s (target >= {TARGET_MBPS:.0f}: "
            f"{'met' if verdicts['scrub_mbps'] else 'NOT met'}), {final.chunk_us:.2f} µs per chunk "
            f"(target <= {TARGET_CHUNK_US:.0f}: {'met' if verdicts['chunk_us'] else 'NOT met'}; "
            f"base64-only chunks {final.chunk_b64_us:.2f} µs)"
        )
        print(
            f"  repetitions ranged {min(final.scrub_mbps_all):.0f}-{max(final.scrub_mbps_all):.0f}"
            f" MB/s and {min(final.chunk_us_all):.2f}-{max(final.chunk_us_all):.2f} µs per chunk"
        )
    return {
        "body_bytes": len(data),
        "events": body.events,
        "blobs": body.blobs,
        "blob_share": body.blob_bytes / len(data),
        "planted": body.planted,
        "chunk_bytes": CHUNK,
        "chunks": len(chunks),
        "b64_chunks": len(b64_chunks),
        "reps": args.reps,
        "results": [asdict(r) for r in results],
        "targets_met_at_1000": verdicts,
    }


# =========================================================================== part 2: SSE delay


@dataclass
class SseTarget:
    name: str
    connect: tuple[str, int]  # where the TCP connection goes (the proxy, or the upstream)
    tunnel: tuple[str, int] | None  # CONNECT target, through a proxy
    cacert: Path
    auth: str
    service: Service | None = None
    context: ssl.SSLContext | None = None


@dataclass
class StreamResult:
    target: str
    round: int
    events: int
    delays_ms: list[float]
    proxy_cpu_ms: float | None
    echo: str  # what the echo event's "echo" field arrived as (masked through seks)
    raw: bytes = field(default=b"", repr=False)  # the whole body as received


def proxy_target(
    name: str,
    proxy_url: str,
    tunnel: tuple[str, int],
    cacert: Path,
    auth: str,
    service: Service | None,
) -> SseTarget:
    u = urlsplit(proxy_url)
    assert u.hostname and u.port
    return SseTarget(name, (u.hostname, u.port), tunnel, cacert, auth, service)


def read_stream(t: SseTarget, n: int, interval_ms: int, echo_at: int, index: int) -> StreamResult:
    """One SSE request; each event's delay is its arrival here minus the upstream's stamp."""
    if t.context is None:
        t.context = ssl.create_default_context(cafile=str(t.cacert))
    conn = http.client.HTTPSConnection(*t.connect, context=t.context, timeout=30)
    if t.tunnel:
        conn.set_tunnel(*t.tunnel)
    pid = t.service.pid if t.service else None
    delays: list[float] = []
    indices: list[int] = []
    first_arrival = last_sent = 0.0
    echo = ""
    received = bytearray()
    try:
        cpu0 = proc_cpu_seconds(pid) if pid else 0.0
        conn.request(
            "GET",
            f"/v1/stream?n={n}&interval_ms={interval_ms}&echo={echo_at}",
            headers={"Authorization": t.auth, "Accept": "text/event-stream"},
        )
        resp = conn.getresponse()
        if resp.status != 200 or not resp.getheader("content-type", "").startswith(
            "text/event-stream"
        ):
            body = resp.read()[:300]
            raise BenchError(f"{t.name}: stream answered {resp.status}: {body!r}")
        while True:
            line = resp.readline()
            arrival = time.monotonic()
            if not line:
                break
            received += line
            if not line.startswith(b"data: {"):
                continue
            doc = json.loads(line[6:])
            delays.append((arrival - doc["t"]) * 1000)
            indices.append(doc["i"])
            if not first_arrival:
                first_arrival = arrival
            last_sent = doc["t"]
            if "echo" in doc:
                echo = doc["echo"]
        cpu1 = proc_cpu_seconds(pid) if pid else 0.0
    finally:
        conn.close()
    if indices != list(range(n)):
        raise BenchError(f"{t.name}: got events {indices[:5]}... ({len(indices)} of {n})")
    if n > 1 and first_arrival >= last_sent:
        raise BenchError(f"{t.name}: the first event arrived after the last was sent: buffered?")
    if not received.endswith(b"data: [DONE]\n\n"):
        raise BenchError(f"{t.name}: the stream did not end with [DONE]")
    cpu = (cpu1 - cpu0) * 1000 if pid else None
    return StreamResult(t.name, index, n, delays, cpu, echo, bytes(received))


def check_echo(t: SseTarget, r: StreamResult, real_key: str) -> None:
    """Through seks the real key (raw and base64) must arrive masked; elsewhere unchanged,
    which shows the echo really carries the key."""
    raw = r.raw
    key = real_key.encode()
    if t.name == "seks":
        for form in (key, base64.b64encode(key)):
            if form in raw:
                raise BenchError("seks: the real key reached the client unmasked")
        if not r.echo.startswith("[REDACTED:") or len(r.echo) != len(real_key):
            raise BenchError(f"seks: the echoed key arrived as {r.echo[:14]!r}…, not masked")
    elif r.echo != real_key:
        raise BenchError(f"{t.name}: the echo event did not carry the key")


def start_sse_targets(
    args: argparse.Namespace, workdir: Path, services: list[Service]
) -> tuple[list[SseTarget], str]:
    mitmdump = find_tool("mitmdump", args.mitmdump)
    seks = find_tool("seks", args.seks)
    real_key = "sk-bench-" + os.urandom(20).hex()
    ca_pem, cert_pem, key_pem = make_certs(workdir)
    upstream, up_port = start_upstream(workdir, cert_pem, key_pem, real_key)
    services.append(upstream)
    auth = f"Bearer {real_key}"
    targets = [SseTarget("direct", ("127.0.0.1", up_port), None, ca_pem, auth)]
    # Bare mitmproxy buffers whole bodies unless told to stream: stream_large_bodies=1 streams
    # a chunked body from its first chunk on, unchanged (no callable).
    bare = start_mitmdump("bare", mitmdump, workdir, ca_pem, ["--set", "stream_large_bodies=1"])
    services.append(bare.service)  # type: ignore[arg-type]
    assert bare.proxy
    targets.append(
        proxy_target("bare", bare.proxy, ("127.0.0.1", up_port), bare.cacert, auth, bare.service)
    )
    s = start_seks(seks, workdir, up_port, ca_pem, real_key)
    services.append(s.service)  # type: ignore[arg-type]
    if args.sse_secrets > 1:
        # More secrets for the tenant (for another provider, so the token's binding stays
        # unambiguous): the proxy's matcher holds all of the tenant's secrets' patterns.
        env = {**os.environ, "SEKS_HOME": str(workdir / "seks-home")}
        env = {k: v for k, v in env.items() if not k.lower().endswith("_proxy")}
        rng = random.Random(SEED + 1)  # noqa: S311
        for name, value in make_secrets(args.sse_secrets - 1, rng):
            run_checked(
                [seks, "secret", "add", name, "--provider", "github"], env, stdin=value.decode()
            )
    assert s.proxy
    targets.append(
        proxy_target("seks", s.proxy, ("api.openai.com", 443), s.cacert, s.auth, s.service)
    )
    return targets, real_key


def summarize_sse(results: list[StreamResult], names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        rs = [r for r in results if r.target == name]
        delays = sorted(d for r in rs for d in r.delays_ms)
        cpu = [r.proxy_cpu_ms for r in rs if r.proxy_cpu_ms is not None]
        out[name] = {
            "streams": len(rs),
            "events": len(delays),
            "median_ms": statistics.median(delays),
            "p99_ms": percentile(delays, 99),
            "max_ms": delays[-1],
            "per_stream_median_ms": [statistics.median(r.delays_ms) for r in rs],
            "per_stream_p99_ms": [percentile(sorted(r.delays_ms), 99) for r in rs],
            "proxy_cpu_ms_per_stream": statistics.median(cpu) if cpu else None,
        }
    if "seks" in out and "bare" in out:
        s, b = out["seks"], out["bare"]
        per_round = [
            x - y for x, y in zip(s["per_stream_median_ms"], b["per_stream_median_ms"], strict=True)
        ]
        per_round_p99 = [
            x - y for x, y in zip(s["per_stream_p99_ms"], b["per_stream_p99_ms"], strict=True)
        ]
        out["seks_minus_bare"] = {
            "median_ms": s["median_ms"] - b["median_ms"],
            "p99_ms": s["p99_ms"] - b["p99_ms"],
            "per_round_median_diff_ms": per_round,
            "median_of_round_diffs_ms": statistics.median(per_round),
            "per_round_p99_diff_ms": per_round_p99,
            "median_of_round_p99_diffs_ms": statistics.median(per_round_p99),
        }
    return out


def measure_sse(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    services: list[Service] = []
    try:
        targets, real_key = start_sse_targets(args, workdir, services)
        n, interval = args.events, args.interval_ms
        print(
            f"{n} events per stream, one every {interval} ms; {args.streams} streams per target, "
            "one new connection each; order per round: direct, then bare/seks alternating"
        )
        print(f"seks vault: {args.sse_secrets} secret(s); echo event {n // 2} carries the real key")
        print("warm-up stream per target (not counted)")
        echo_at = n // 2
        for t in targets:
            check_echo(t, read_stream(t, min(n, 10), interval, min(n, 10) // 2, -1), real_key)
        results: list[StreamResult] = []
        direct, proxies = targets[0], targets[1:]
        for i in range(args.streams):
            line = [f"round {i + 1:>2}/{args.streams}:"]
            for t in [direct, *proxies[:: 1 - 2 * (i % 2)]]:
                r = read_stream(t, n, interval, echo_at, i)
                check_echo(t, r, real_key)
                results.append(r)
                line.append(
                    f"{t.name} {statistics.median(r.delays_ms):.2f}/"
                    f"{percentile(sorted(r.delays_ms), 99):.2f}"
                )
            print("  " + "  ".join(line) + "  (median/p99 ms)", flush=True)
        names = [t.name for t in targets]
        summary = summarize_sse(results, names)
        print()
        print(f"SSE delay (arrival - send), all events of {args.streams} streams per target:")
        print(f"{'':<8} {'events':>7} {'median':>8} {'p99':>8} {'max':>8} {'proxy CPU':>10}")
        print(f"{'':<8} {'':>7} {'ms':>8} {'ms':>8} {'ms':>8} {'ms/stream':>10}")
        for name in names:
            s = summary[name]
            cpu = s["proxy_cpu_ms_per_stream"]
            print(
                f"{name:<8} {s['events']:>7} {s['median_ms']:>8.3f} {s['p99_ms']:>8.3f} "
                f"{s['max_ms']:>8.2f} {'-' if cpu is None else f'{cpu:.0f}':>10}"
            )
        print(
            "proxy CPU: median per stream, whole proxy process (CONNECT, two TLS handshakes, "
            f"{n} events), in {1000 / CLK_TCK:.0f} ms ticks"
        )
        d = summary["seks_minus_bare"]
        ok_med = d["median_ms"] <= TARGET_SSE_MS
        # A pooled p99 is a handful of events that a burst of load elsewhere decides; the
        # median over rounds of each round's p99 difference is the steadier figure to judge.
        ok_p99 = d["median_of_round_p99_diffs_ms"] <= TARGET_SSE_MS
        print(
            f"seks - bare: median {d['median_ms']:+.3f} ms (median of per-round differences "
            f"{d['median_of_round_diffs_ms']:+.3f}); p99 {d['p99_ms']:+.3f} ms pooled, "
            f"{d['median_of_round_p99_diffs_ms']:+.3f} ms median of per-round differences"
        )
        print(
            f"target: within {TARGET_SSE_MS:.0f} ms of bare: "
            f"median {'met' if ok_med else 'NOT met'}, "
            f"p99 (median of per-round differences) {'met' if ok_p99 else 'NOT met'}"
        )
        print(
            "seks path checked in every stream: fake token in, real key required upstream, "
            "the echoed key (raw and base64) arrived masked."
        )
        summary["config"] = {
            "events": n,
            "interval_ms": interval,
            "streams": args.streams,
            "sse_secrets": args.sse_secrets,
            "bare": "mitmdump -q --set stream_large_bodies=1 --set connection_strategy=lazy",
        }
        summary["targets_met"] = {"median": ok_med, "p99": ok_p99}
        return summary
    finally:
        for svc in reversed(services):
            svc.stop()


# =========================================================================== main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Scrubber throughput and SSE delay through seks (see bench/README.md)."
    )
    p.add_argument("--part", choices=("all", "micro", "sse"), default="all")
    p.add_argument("--reps", type=int, default=7, help="repetitions per micro figure (7)")
    p.add_argument("--body-mb", type=int, default=10, help="body size in MB (10)")
    p.add_argument(
        "--secrets",
        dest="secret_counts",
        type=lambda s: [int(x) for x in s.split(",")],
        default=list(SECRET_COUNTS),
        help="secret counts, comma-separated (10,100,1000)",
    )
    p.add_argument(
        "--dense", type=int, default=1000, help="echoed secrets added for the dense body (1000)"
    )
    p.add_argument("--streams", type=int, default=20, help="SSE streams per target (20)")
    p.add_argument("--events", type=int, default=100, help="events per stream (100)")
    p.add_argument("--interval-ms", type=int, default=20, help="upstream event interval (20)")
    p.add_argument(
        "--sse-secrets", type=int, default=1, help="secrets in the seks vault for the SSE part (1)"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: few reps, small, short")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    p.add_argument("--seks", help="seks executable (default: beside this Python, or PATH)")
    p.add_argument("--mitmdump", help="mitmdump executable (default: beside this Python, or PATH)")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.body_mb, args.streams, args.events = 2, 2, 2, 20
    if min(args.reps, args.body_mb, args.streams, args.events, args.sse_secrets) < 1:
        p.error("counts must be positive")
    return args


def load_line(when: str) -> str:
    """The machine's load: other work on the two cores skews every figure here."""
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    doc: dict[str, Any] = {
        "config": {
            "python": platform.python_version(),
            "mitmproxy": importlib.metadata.version("mitmproxy"),
            "hyperscan": importlib.metadata.version("hyperscan"),
            "cpus": os.cpu_count(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": sys.argv[1:] if argv is None else argv,
        }
    }
    print(
        f"Python {platform.python_version()}, mitmproxy {doc['config']['mitmproxy']}, "
        f"hyperscan {doc['config']['hyperscan']}, {os.cpu_count()} CPUs"
        + ("; --quick: smoke run, figures not comparable" if args.quick else "")
    )
    workdir = Path(tempfile.mkdtemp(prefix="seks-bench-scrub-"))
    try:
        if args.part in ("all", "micro"):
            print("\n== 1. scrubber throughput (this process, no proxies running)")
            print(load_line("before"))
            doc["micro"] = measure_micro(args)
            print(load_line("after"))
            doc["micro"]["loadavg_after"] = os.getloadavg()
        if args.part in ("all", "sse"):
            print("\n== 2. SSE inter-event delay: direct, bare mitmproxy, seks proxy")
            print(load_line("before"))
            doc["sse"] = measure_sse(args, workdir)
            print(load_line("after"))
            doc["sse"]["loadavg_after"] = os.getloadavg()
    except BenchError as exc:
        print(f"\nbenchmark FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")
            print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
