"""Signed chunked uploads re-signed with the real key: AWS's published vectors come out exactly,
whatever the split of the body, with and without a trailer; bad framing is refused by name.

Vectors: the "Example: PUT Object" sections of AWS's S3 API reference pages
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html and
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
(secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z, us-east-1, s3; 66560 bytes
of "a" sent as 64 KiB, 1 KiB and the final empty chunk), and the signing key example of
https://docs.aws.amazon.com/general/latest/gr/sigv4-calculate-signature.html.
"""

from __future__ import annotations

import pytest

from seks.addon.sigv4_chunked import (
    ChunkResigner,
    MalformedChunkedBody,
    chunk_signature,
    signing_key,
    trailer_signature,
)

TIMESTAMP = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
KEY = signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3")
FAKE_KEY = signing_key("the-fake-secret-an-agent-holds", "20130524", "us-east-1", "s3")
FAKE_SEED = "f" * 64

SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGS = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]
TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
TRAILER_CHUNK_SIGS = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
]
TRAILER_SIG = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
CHECKSUM = b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
SIZES = (65536, 1024, 0)


def example_body(signatures: list[str], trailer: bytes = b"\r\n") -> bytes:
    """The example's body with these chunk signatures; ``trailer`` follows the final chunk."""
    parts = []
    for size, signature in zip(SIZES, signatures, strict=True):
        parts.append(f"{size:x};chunk-signature={signature}\r\n".encode())
        if size:
            parts.append(b"a" * size + b"\r\n")
    return b"".join(parts) + trailer


def chain(key: bytes, seed: str) -> list[str]:
    signatures, previous = [], seed
    for size in SIZES:
        previous = chunk_signature(key, TIMESTAMP, SCOPE, previous, b"a" * size)
        signatures.append(previous)
    return signatures


def signed_trailer(signature: str, lines: bytes = CHECKSUM) -> bytes:
    return lines + f"x-amz-trailer-signature:{signature}\r\n\r\n".encode()


def resign(resigner: ChunkResigner, body: bytes, piece: int | None = None) -> bytes:
    step = piece or len(body)
    out: list[bytes] = []
    for at in range(0, len(body), step):
        out += resigner(body[at : at + step])
    out += resigner(b"")
    return b"".join(out)


def test_signing_key_derivation_matches_aws() -> None:
    # sigv4-calculate-signature.html: its IAM request of 2011-09-09, kSecret with a "+".
    key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20110909", "us-east-1", "iam")
    assert key.hex() == "98f1d889fec4f4421adc522bab0ce1f82e6929c262ed15e5a94c90efd1e3b0e7"
    # The key behind every S3 example signature below.
    assert KEY.hex() == "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378"


def test_each_chunk_signature_matches_aws() -> None:
    assert chain(KEY, SEED) == CHUNK_SIGS


def test_a_fake_signed_body_comes_out_as_aws_body() -> None:
    fake = example_body(chain(FAKE_KEY, FAKE_SEED))
    out = resign(ChunkResigner(KEY, TIMESTAMP, SCOPE, SEED, trailer=False), fake)
    assert out == example_body(CHUNK_SIGS)
    assert len(out) == len(fake) == 66824  # the example's Content-Length


@pytest.mark.parametrize("piece", [1, 7, 4096, None])
def test_any_split_of_the_body_gives_the_same_bytes(piece: int | None) -> None:
    fake = example_body(chain(FAKE_KEY, FAKE_SEED))
    resigner = ChunkResigner(KEY, TIMESTAMP, SCOPE, SEED, trailer=False)
    assert resign(resigner, fake, piece) == example_body(CHUNK_SIGS)


def test_each_chunk_goes_on_as_soon_as_its_data_is_complete() -> None:
    fake = example_body(chain(FAKE_KEY, FAKE_SEED))
    expected = example_body(CHUNK_SIGS)
    first_chunk = len(f"10000;chunk-signature={SEED}\r\n") + 65536 + 2
    resigner = ChunkResigner(KEY, TIMESTAMP, SCOPE, SEED, trailer=False)
    assert resigner(fake[: first_chunk - 1]) == []  # held: the header needs the data's hash
    assert resigner(fake[first_chunk - 1 : first_chunk]) == [expected[:first_chunk]]
    assert b"".join(resigner(fake[first_chunk:])) == expected[first_chunk:]
    assert resigner(b"") == []


def test_the_trailer_example_comes_out_as_aws_body() -> None:
    """AWS's trailer example: seed, chunk and trailer signatures all chain, the trailer signed
    over its canonical form ``x-amz-checksum-crc32c:sOO8/Q==\\n``. Some copies of the page quote
    63bddb24… as the trailer signature; it follows from none of the values above."""
    assert chain(KEY, TRAILER_SEED) == TRAILER_CHUNK_SIGS
    canonical = b"x-amz-checksum-crc32c:sOO8/Q==\n"
    assert trailer_signature(KEY, TIMESTAMP, SCOPE, TRAILER_CHUNK_SIGS[2], canonical) == TRAILER_SIG

    fake_sigs = chain(FAKE_KEY, FAKE_SEED)
    fake_trailer = trailer_signature(FAKE_KEY, TIMESTAMP, SCOPE, fake_sigs[2], canonical)
    fake = example_body(fake_sigs, signed_trailer(fake_trailer))
    expected = example_body(TRAILER_CHUNK_SIGS, signed_trailer(TRAILER_SIG))
    for piece in (1, 7, 4096, None):
        resigner = ChunkResigner(KEY, TIMESTAMP, SCOPE, TRAILER_SEED, trailer=True)
        assert resign(resigner, fake, piece) == expected


def test_trailer_lines_pass_unchanged_and_all_are_signed() -> None:
    lines = b"x-amz-checksum-crc32c:sOO8/Q==\r\nX-Amz-Meta-Note: kept as sent\r\n"
    canonical = b"x-amz-checksum-crc32c:sOO8/Q==\nx-amz-meta-note:kept as sent\n"
    fake = example_body(chain(FAKE_KEY, FAKE_SEED), signed_trailer("0" * 64, lines))
    out = resign(ChunkResigner(KEY, TIMESTAMP, SCOPE, SEED, trailer=True), fake, 7)
    expected_sig = trailer_signature(KEY, TIMESTAMP, SCOPE, CHUNK_SIGS[2], canonical)
    assert out == example_body(CHUNK_SIGS, signed_trailer(expected_sig, lines))


def test_resigning_back_with_the_first_key_restores_the_body() -> None:
    canonical = b"x-amz-checksum-crc32c:sOO8/Q==\n"
    sigs = chain(FAKE_KEY, FAKE_SEED)
    fake_trailer = trailer_signature(FAKE_KEY, TIMESTAMP, SCOPE, sigs[2], canonical)
    original = example_body(sigs, signed_trailer(fake_trailer))
    real = resign(ChunkResigner(KEY, TIMESTAMP, SCOPE, SEED, trailer=True), original, 4096)
    back = resign(ChunkResigner(FAKE_KEY, TIMESTAMP, SCOPE, FAKE_SEED, trailer=True), real, 7)
    assert real != original
    assert back == original


SIG = "e" * 64
GOOD = example_body([SIG] * 3)
FIRST = len(f"10000;chunk-signature={SIG}\r\n") + 65536 + 2


@pytest.mark.parametrize(
    ("body", "trailer", "message"),
    [
        (b"zz;chunk-signature=" + SIG.encode() + b"\r\n", False, "chunk size is not a hex number"),
        (b"0x10;chunk-signature=" + SIG.encode() + b"\r\n", False, "chunk size is not a hex"),
        (b"10000\r\n", False, "chunk header without ;chunk-signature="),
        (b"400;chunk-signature=abc\r\n", False, "chunk-signature is not 64 hex digits"),
        (b"400;chunk-signature=" + SIG.encode() + b"\n", False, "does not end with CRLF"),
        (b"1" * 5000, False, "chunk header line too long"),
        (GOOD[: FIRST - 2] + b"a\r\n", False, "missing CRLF after chunk data"),
        (GOOD[:-2] + b"x-amz-checksum-crc32c:sOO8/Q==\r\n", False, "missing CRLF after the final"),
        (GOOD + b"more", False, "data after the final chunk"),
        (GOOD[:1000], False, "body ended while expecting the chunk data"),
        (GOOD[:FIRST], False, "body ended while expecting the chunk header"),
        (GOOD[:-2], False, "body ended while expecting the CRLF after the final chunk"),
        (GOOD[:-2] + CHECKSUM + b"\r\n", True, "trailer without x-amz-trailer-signature"),
        (GOOD[:-2] + b"no colon\r\n", True, "trailer line is not name:value"),
        (GOOD[:-2] + signed_trailer("abc"), True, "x-amz-trailer-signature is not 64 hex"),
        (GOOD[:-2] + signed_trailer(SIG) + b"x", True, "data after the final chunk"),
    ],
)
def test_malformed_framing_is_refused_by_name(body: bytes, trailer: bool, message: str) -> None:
    for piece in (1, None):
        resigner = ChunkResigner(KEY, TIMESTAMP, SCOPE, SEED, trailer=trailer)
        with pytest.raises(MalformedChunkedBody, match=message) as caught:
            resign(resigner, body, piece)
        assert SIG not in str(caught.value)
        assert "aaaa" not in str(caught.value)


def test_a_chunk_over_max_chunk_is_refused_before_its_data_is_held() -> None:
    resigner = ChunkResigner(KEY, TIMESTAMP, SCOPE, SEED, trailer=False, max_chunk=1024)
    header = f"10000;chunk-signature={SIG}\r\n".encode()
    with pytest.raises(MalformedChunkedBody, match="chunk of 65536 bytes is over the 1024 limit"):
        resigner(header)


def test_repr_does_not_show_the_key() -> None:
    text = repr(ChunkResigner(KEY, TIMESTAMP, SCOPE, SEED, trailer=True))
    assert "key=<redacted>" in text
    assert SCOPE in text
    assert KEY.hex() not in text
    assert repr(KEY) not in text
    assert repr(KEY)[2:-1] not in text
