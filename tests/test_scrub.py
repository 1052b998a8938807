"""The scrubber: every encoding is caught, streaming equals whole-body scrubbing equals a naive
reference for any split into chunks, and nothing is held back that cannot begin a secret."""

from __future__ import annotations

import base64
import json
import secrets

from hypothesis import given, settings
from hypothesis import strategies as st

from seks.addon.scrub import MIN_SECRET_LEN, Matcher, StreamScrubber, encodings_of, scrub


def canary() -> bytes:
    return ("sk-canary-" + secrets.token_hex(12)).encode()


# -- a naive reference: every occurrence by bytes.find, merged, masked ----------------------


def reference_scrub(named: list[tuple[str, bytes]], body: bytes) -> bytes:
    matcher = Matcher(named)  # only for its patterns' masks
    patterns = matcher._patterns
    found = []
    for p in patterns:
        at = body.find(p.data)
        while at != -1:
            found.append((at, at + len(p.data), p))
            at = body.find(p.data, at + 1)
    found.sort(key=lambda m: (m[0], -m[1]))
    out = bytearray()
    pos = 0
    i = 0
    while i < len(found):
        start, end, p = found[i]
        i += 1
        while i < len(found) and found[i][0] < end:
            end = max(end, found[i][1])
            i += 1
        if start < pos:
            continue
        backslashes = 0
        while start - backslashes - 1 >= 0 and body[start - backslashes - 1] == ord("\\"):
            backslashes += 1
        out += body[pos:start] + p.mask(end - start, backslashes % 2 == 1)
        pos = end
    return bytes(out + body[pos:])


def stream(matcher: Matcher, chunks: list[bytes]) -> bytes:
    scrubber = StreamScrubber(matcher)
    return b"".join(scrubber.feed(c) for c in chunks) + scrubber.finish()


# Secrets and filler from a small alphabet, so that encodings overlap and near-misses happen.
secret_values = st.binary(min_size=MIN_SECRET_LEN, max_size=24).filter(lambda b: b"\0" not in b)
filler = st.sampled_from([b"", b"x", b"\\", b"\\\\", b"\n\n", b"data: ", b'"', b"sk-", b"A", b"="])


@st.composite
def bodies(draw: st.DrawFn) -> tuple[list[tuple[str, bytes]], bytes, list[int]]:
    values = draw(st.lists(secret_values, min_size=1, max_size=3, unique=True))
    named = [(f"s{i}", v) for i, v in enumerate(values)]
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        parts.append(draw(filler))
        value = draw(st.sampled_from(values))
        forms = encodings_of(value)
        form = draw(st.sampled_from(forms))[1]
        # Sometimes only a piece of a form: a near miss that must pass unchanged.
        if draw(st.booleans()):
            form = form[: draw(st.integers(0, len(form)))]
        parts.append(form)
    parts.append(draw(filler))
    body = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=6)))
    return named, body, cuts


@settings(max_examples=300, deadline=None)
@given(bodies())
def test_streamed_equals_whole_equals_reference(
    case: tuple[list[tuple[str, bytes]], bytes, list[int]],
) -> None:
    named, body, cuts = case
    matcher = Matcher(named)
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    whole, _ = scrub(matcher, body)
    assert stream(matcher, chunks) == whole
    assert whole == reference_scrub(named, body)
    assert len(whole) == len(body)  # masks keep the length: Content-Length stays true


def test_every_encoding_is_masked_and_the_rest_is_untouched() -> None:
    value = canary()
    matcher = Matcher([("openai-main", value)])
    for encoding, form in encodings_of(value):
        body = b"before " + form + b" after"
        out, counts = scrub(matcher, body)
        assert form not in out, encoding
        assert out.startswith(b"before ") and out.endswith(b" after"), encoding
        assert sum(counts.values()) >= 1
        assert {name for name, _ in counts} == {"openai-main"}


def test_a_secret_inside_a_larger_base64_blob_is_caught_at_every_alignment() -> None:
    value = canary()
    matcher = Matcher([("k", value)])
    for lead in range(6):
        blob = base64.b64encode(b"u" * lead + b"user:" + value + b"tail")
        out, counts = scrub(matcher, b'{"auth": "Basic ' + blob + b'"}')
        assert counts, lead
        decoded = base64.b64decode(out.split(b"Basic ")[1].split(b'"')[0] + b"==", validate=False)
        assert value not in decoded


def test_json_stays_valid_when_the_secret_follows_a_backslash() -> None:
    value = canary()
    matcher = Matcher([("k", value)])
    for prefix in ("\\", "\\\\", "\\\\\\"):
        document = json.dumps({"echo": prefix + value.decode()}).encode()
        out, _ = scrub(matcher, document)
        parsed = json.loads(out)  # no invalid escape such as \[
        assert value.decode() not in parsed["echo"]


def test_json_unicode_escapes_of_a_secret_are_caught() -> None:
    value = canary()
    matcher = Matcher([("k", value)])
    document = json.dumps({"echo": value.decode()}, ensure_ascii=True).encode()
    escaped = "".join(f"\\u{ord(c):04x}" for c in value.decode()).encode()
    out, counts = scrub(matcher, document.replace(value, escaped))
    assert escaped not in out and counts
    json.loads(out)


def test_a_chunk_ending_in_a_whole_sse_event_is_passed_on_at_once() -> None:
    matcher = Matcher([("k", canary())])
    scrubber = StreamScrubber(matcher)
    event = b'data: {"choices": [{"delta": {"content": "sk-"}}]}\n\n'
    assert scrubber.feed(event) == event


def test_only_a_possible_beginning_of_a_secret_is_held_back() -> None:
    value = canary()
    scrubber = StreamScrubber(Matcher([("k", value)]))
    assert scrubber.feed(b"hello " + value[:10]) == b"hello "
    assert (
        scrubber.feed(value[10:] + b" bye\n")
        == b"[REDACTED:k]" + b"*" * (len(value) - len("[REDACTED:k]")) + b" bye\n"
    )


def test_an_empty_chunk_releases_nothing_and_finish_releases_the_rest() -> None:
    value = canary()
    scrubber = StreamScrubber(Matcher([("k", value)]))
    assert scrubber.feed(b"x" + value[:5]) == b"x"
    assert scrubber.feed(b"") == b""
    assert scrubber.finish() == value[:5]  # a piece of a secret is not the secret


def test_short_values_are_not_patterns_and_reprs_hold_no_secret() -> None:
    value = canary()
    matcher = Matcher([("short", b"abc"), ("k", value)])
    out, counts = scrub(matcher, b"abc abcdef")
    assert out == b"abc abcdef" and not counts
    for text in (repr(matcher), repr(matcher._patterns), str(matcher._patterns[0])):
        assert value.decode() not in text
        assert value.hex() not in text


def test_utf16_masks_keep_the_text_aligned() -> None:
    value = canary()
    matcher = Matcher([("k", value)])
    body = ("before " + value.decode() + " after").encode("utf-16-le")
    out, counts = scrub(matcher, body)
    assert counts and len(out) == len(body)
    text = out.decode("utf-16-le")
    assert text.startswith("before ") and text.endswith(" after")
    assert value.decode() not in text


def test_no_secrets_means_no_matcher_and_nothing_held() -> None:
    matcher = Matcher([])
    assert not matcher
    scrubber = StreamScrubber(matcher)
    assert scrubber.feed(b"anything") == b"anything"
