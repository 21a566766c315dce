"""The halext stream parser: exact reconstruction (halext-api.md §5.4), fed in any split."""

from __future__ import annotations

import random

import pytest

from halext_desktop.routing.halext_stream import (
    MOCK_SENTENCE,
    HalextStreamParser,
    StreamFormatError,
    is_mock_reply,
    reconstruct,
)

# Chunks the server's unescaped framing makes hard: newlines inside and at the edges,
# blank lines, leading spaces, an empty chunk, "[DONE]" as text, and non-ASCII text.
TRICKY = [
    "line one\nline two",
    "a\nb",
    " leading space",
    "  two spaces",
    "ends with blank line\n\n",
    "\n\nstarts with one",
    "",
    "[DONE]",
    "data: looks like framing",
    "ünïcødé ✓ 日本語",
    "\n",
]


def frame(chunks: list[str], done: bool = True) -> bytes:
    """What the server writes: ``data: <raw chunk>\\n\\n`` per chunk, then ``[DONE]``."""
    body = b"".join(b"data: " + c.encode() + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def feed_in_pieces(body: bytes, cuts: list[int]) -> tuple[list[str], HalextStreamParser]:
    parser = HalextStreamParser()
    out: list[str] = []
    start = 0
    for cut in [*sorted(cuts), len(body)]:
        out += parser.feed(body[start:cut])
        start = cut
    out += parser.finish()
    return out, parser


def test_whole_body_reconstructs_every_chunk_exactly() -> None:
    chunks, done = reconstruct(frame(TRICKY))
    assert chunks == TRICKY
    assert done is True


def test_one_byte_at_a_time_gives_the_same_chunks() -> None:
    body = frame(TRICKY)
    parser = HalextStreamParser()
    out: list[str] = []
    for i in range(len(body)):
        out += parser.feed(body[i : i + 1])
    out += parser.finish()
    assert out == TRICKY
    assert parser.done


def test_random_splits_give_the_same_chunks() -> None:
    body = frame(TRICKY)
    rng = random.Random(1234)
    for _ in range(200):
        cuts = rng.sample(range(1, len(body)), rng.randint(1, 12))
        out, parser = feed_in_pieces(body, cuts)
        assert out == TRICKY, cuts
        assert parser.done


def test_every_single_cut_point_of_a_small_body() -> None:
    chunks = ["a\n", "\nb", " c"]
    body = frame(chunks)
    for cut in range(len(body) + 1):
        out, parser = feed_in_pieces(body, [cut])
        assert out == chunks, cut
        assert parser.done


def test_a_chunk_is_emitted_only_when_its_end_is_certain() -> None:
    parser = HalextStreamParser()
    assert parser.feed(b"data: hello\n\n") == []  # could still be "hello\n\n..." text
    assert parser.feed(b"data") == []
    assert parser.feed(b": ") == ["hello"]
    assert parser.feed(b" world\n\ndata: [DONE]\n\n") == [" world"]
    assert parser.finish() == []
    assert parser.done


def test_multibyte_character_split_across_reads_is_decoded_whole() -> None:
    body = frame(["é✓"])
    cut = body.index("✓".encode()) + 1  # inside the 3-byte sequence
    out, parser = feed_in_pieces(body, [cut])
    assert out == ["é✓"]
    assert parser.done


def test_stream_without_done_is_not_done_and_keeps_the_partial_text() -> None:
    out, parser = feed_in_pieces(frame(["one ", "two "], done=False), [])
    assert out == ["one ", "two "]
    assert parser.done is False


def test_cut_inside_a_chunk_returns_what_arrived() -> None:
    body = frame(["first ", "second chunk"])
    cut = body.index(b"chunk")
    out, parser = feed_in_pieces(body[:cut], [])
    assert out == ["first ", "second "]
    assert parser.done is False


def test_cut_inside_a_separator_does_not_leak_framing() -> None:
    body = b"data: first\n\nda"
    out, parser = feed_in_pieces(body, [])
    assert out == ["first"]
    assert not parser.done


def test_done_as_text_followed_by_more_is_content() -> None:
    chunks, done = reconstruct(frame(["[DONE]", "after"]))
    assert chunks == ["[DONE]", "after"]
    assert done


def test_empty_stream_with_only_done() -> None:
    assert reconstruct(b"data: [DONE]\n\n") == ([], True)


def test_empty_body_is_not_done() -> None:
    assert reconstruct(b"") == ([], False)


def test_body_that_is_not_a_halext_stream_is_rejected() -> None:
    with pytest.raises(StreamFormatError):
        HalextStreamParser().feed(b'{"detail":"x"}')
    parser = HalextStreamParser()
    assert parser.feed(b"da") == []  # still a possible prefix
    with pytest.raises(StreamFormatError):
        parser.feed(b"ta:x")


def test_chunks_emitted_counts_chunks() -> None:
    parser = HalextStreamParser()
    parser.feed(frame(["a", "b", "c"]))
    parser.finish()
    assert parser.chunks_emitted == 3


def test_mock_sentence_detection() -> None:
    streamed = "".join(w + " " for w in MOCK_SENTENCE.split())
    assert is_mock_reply(streamed)
    assert is_mock_reply(MOCK_SENTENCE)
    assert not is_mock_reply("I am a mock AI assistant.")
    assert not is_mock_reply("[ollama:llama3] echo: " + MOCK_SENTENCE)
