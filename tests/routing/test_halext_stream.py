"""The halext stream parser: exact reconstruction (halext-api.md §5.4), fed in any split,
with text handed on as soon as it cannot be framing."""

from __future__ import annotations

import random

import pytest

from halext_desktop.routing.halext_stream import (
    MOCK_SENTENCE,
    SEPARATOR,
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
    "[DONE]x",
    "[DO",
    "ünïcødé ✓ 日本語",
    "\n",
]


def frame(chunks: list[str], done: bool = True) -> bytes:
    """What the server writes: ``data: <raw chunk>\\n\\n`` per chunk, then ``[DONE]``."""
    body = b"".join(b"data: " + c.encode() + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def feed_in_pieces(body: bytes, cuts: list[int]) -> tuple[str, HalextStreamParser]:
    parser = HalextStreamParser()
    out: list[str] = []
    start = 0
    for cut in [*sorted(cuts), len(body)]:
        out += parser.feed(body[start:cut])
        start = cut
    out += parser.finish()
    return "".join(out), parser


def test_whole_body_reconstructs_every_chunk_exactly() -> None:
    chunks, done = reconstruct(frame(TRICKY))
    assert chunks == TRICKY
    assert done is True


def test_one_byte_at_a_time_gives_the_same_text() -> None:
    body = frame(TRICKY)
    parser = HalextStreamParser()
    out: list[str] = []
    for i in range(len(body)):
        out += parser.feed(body[i : i + 1])
        assert parser.pending_bytes <= len(b"[DONE]\n\n") + 3  # never more than a few bytes
    out += parser.finish()
    assert "".join(out) == "".join(TRICKY)
    assert parser.done
    assert parser.chunks_emitted == len(TRICKY)


def test_random_splits_give_the_same_text() -> None:
    body = frame(TRICKY)
    rng = random.Random(1234)
    for _ in range(200):
        cuts = rng.sample(range(1, len(body)), rng.randint(1, 12))
        text, parser = feed_in_pieces(body, cuts)
        assert text == "".join(TRICKY), cuts
        assert parser.done


def test_every_single_cut_point_of_a_small_body() -> None:
    chunks = ["a\n", "\nb", " c", "[DONE]"]
    body = frame(chunks)
    for cut in range(len(body) + 1):
        text, parser = feed_in_pieces(body, [cut])
        assert text == "".join(chunks), cut
        assert parser.done


def test_text_goes_on_before_the_next_separator_arrives() -> None:
    """halext sends a chunk and then nothing for a while: the chunk must not wait for the
    next one (it used to, so every reply reached the user one chunk late)."""
    parser = HalextStreamParser()
    assert parser.feed(b"data: hello") == ["hello"]
    assert parser.feed(b" world") == [" world"]
    assert parser.feed(b"\n\n") == []  # maybe the start of the next separator: held
    assert parser.feed(b"data: ") == []
    assert parser.feed(b"next") == ["next"]
    assert parser.feed(b"\n\ndata: [DONE]\n\n") == []
    assert parser.finish() == []
    assert parser.done


def test_only_what_could_be_a_separator_is_held_back() -> None:
    parser = HalextStreamParser()
    assert parser.feed(b"data: line one\n") == ["line one"]
    assert parser.pending_bytes == 1
    # The newline was text after all: it goes on with what follows.
    assert parser.feed(b"line two") == ["\nline two"]
    assert parser.feed(b"\n\ndat") == []
    assert parser.pending_bytes == len(b"\n\ndat")
    assert parser.feed(b"a: more") == ["more"]


def test_a_piece_that_may_be_the_closing_done_is_held_until_the_end_tells() -> None:
    parser = HalextStreamParser()
    assert parser.feed(b"data: [DON") == []
    assert parser.feed(b"E]\n\n") == []
    assert parser.finish() == []
    assert parser.done
    parser = HalextStreamParser()
    assert parser.feed(b"data: [DONE] is what I said") == ["[DONE] is what I said"]
    parser = HalextStreamParser()
    assert parser.feed(b"data: [DONE]\n\ndata: after") == ["[DONE]after"]


def test_flat_memory_for_a_huge_unterminated_chunk() -> None:
    """A 40 MB chunk that never ends (a 400 MB one reached 3.3 GB RSS) streams through a
    parser that holds a handful of bytes, never the chunk."""
    parser = HalextStreamParser()
    piece = b"x" * 65536
    assert parser.feed(b"data: ") == []
    total = 0
    for _ in range(640):
        (text,) = parser.feed(piece)
        total += len(text)
        assert parser.pending_bytes == 0
    assert total == 640 * 65536


def test_multibyte_character_split_across_reads_is_decoded_whole() -> None:
    body = frame(["é✓"])
    cut = body.index("✓".encode()) + 1  # inside the 3-byte sequence
    parser = HalextStreamParser()
    first = parser.feed(body[:cut])
    assert first == ["é"]  # the half character waits for its other bytes
    assert parser.feed(body[cut:]) == ["✓"]
    parser.finish()
    assert parser.done


def test_stream_without_done_is_not_done_and_keeps_the_partial_text() -> None:
    text, parser = feed_in_pieces(frame(["one ", "two "], done=False), [])
    assert text == "one two "
    assert parser.done is False


def test_cut_inside_a_chunk_returns_what_arrived() -> None:
    body = frame(["first ", "second chunk"])
    cut = body.index(b"chunk")
    text, parser = feed_in_pieces(body[:cut], [])
    assert text == "first second "
    assert parser.done is False


def test_finish_hands_on_what_was_held_of_a_complete_chunk() -> None:
    """A stall or a dropped connection right after a chunk: its text is all there."""
    parser = HalextStreamParser()
    assert parser.feed(b"data: almost done\n\n") == ["almost done"]
    assert parser.finish() == []  # the "\n\n" was framing, nothing is lost
    parser = HalextStreamParser()
    assert parser.feed(b"data: two lines\n") == ["two lines"]
    assert parser.finish() == []  # a lone trailing newline cannot be told from framing


def test_cut_inside_a_character_drops_only_that_character() -> None:
    body = "data: ok ✓".encode()
    text, parser = feed_in_pieces(body[:-1], [])
    assert text == "ok "
    assert not parser.done


def test_cut_inside_a_separator_does_not_leak_framing() -> None:
    text, parser = feed_in_pieces(b"data: first\n\nda", [])
    assert text == "first"
    assert not parser.done
    assert reconstruct(b"data: first\n\nda") == (["first"], False)


def test_done_as_text_followed_by_more_is_content() -> None:
    chunks, done = reconstruct(frame(["[DONE]", "after"]))
    assert chunks == ["[DONE]", "after"]
    assert done


def test_empty_stream_with_only_done() -> None:
    assert reconstruct(b"data: [DONE]\n\n") == ([], True)
    text, parser = feed_in_pieces(b"data: [DONE]\n\n", [3, 9])
    assert text == "" and parser.done


def test_empty_body_is_not_done() -> None:
    assert reconstruct(b"") == ([], False)


def test_body_that_is_not_a_halext_stream_is_rejected() -> None:
    with pytest.raises(StreamFormatError):
        HalextStreamParser().feed(b'{"detail":"x"}')
    parser = HalextStreamParser()
    assert parser.feed(b"da") == []  # still a possible prefix
    with pytest.raises(StreamFormatError):
        parser.feed(b"ta:x")
    with pytest.raises(StreamFormatError):
        reconstruct(b"<html>")


def test_chunks_emitted_counts_chunks() -> None:
    parser = HalextStreamParser()
    parser.feed(frame(["a", "b", "c"]))
    parser.finish()
    assert parser.chunks_emitted == 3


def test_the_separator_is_what_the_document_says() -> None:
    assert SEPARATOR == b"\n\ndata: "


def test_mock_sentence_detection() -> None:
    streamed = "".join(w + " " for w in MOCK_SENTENCE.split())
    assert is_mock_reply(streamed)
    assert is_mock_reply(MOCK_SENTENCE)
    assert not is_mock_reply("I am a mock AI assistant.")
    assert not is_mock_reply("[ollama:llama3] echo: " + MOCK_SENTENCE)
