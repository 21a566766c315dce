"""Incremental parser for halext's chat stream (halext-api.md §5.4).

The server writes each provider chunk raw as ``data: <chunk>\\n\\n`` (no escaping), then
``data: [DONE]\\n\\n``. A chunk containing newlines produces extra lines, so a spec SSE
parser (or a line parser) loses them. The exact-reconstruction rule is: take the whole
body, strip the leading ``data: ``, split on ``\\n\\ndata: ``; the last piece is
``[DONE]\\n\\n``; the others are the chunks, verbatim (a chunk's own leading space is kept:
only the one space after ``data:`` is framing).

This parser applies that rule to bytes as they arrive, split anywhere, and hands text on
as soon as it cannot be framing: it holds back only

- the last few bytes while they could begin a separator (``\\n``, ``\\n\\nda``, up to
  seven bytes of ``\\n\\ndata: ``),
- at the start of a piece, up to eight bytes while they could still be the closing
  ``[DONE]\\n\\n``,
- the first bytes of a UTF-8 character whose remaining bytes have not arrived
  (an incremental decoder).

So a reply reaches the user at the server's pace (not one chunk late), memory stays flat
however long a chunk is, and Stop, a timeout or a dropped connection lose nothing that
arrived complete (``finish`` hands on what is held back when the body ends). Working on
bytes is safe: the separator is ASCII, and UTF-8 multi-byte sequences never contain ASCII
bytes.
"""

from __future__ import annotations

import codecs

PREFIX = b"data: "
SEPARATOR = b"\n\ndata: "
DONE_PIECE = b"[DONE]"
_DONE_END = DONE_PIECE + b"\n\n"

# The mock provider's canned reply (halext-api.md §4); the server streams it word by word
# when it silently falls back, while the header still names the model that was asked.
MOCK_SENTENCE = "I am a mock AI assistant. Connect me to a real backend to get started!"


class StreamFormatError(ValueError):
    """The body does not start with ``data: ``: not a halext chat stream."""


def _separator_prefix_len(data: bytes | bytearray, start: int) -> int:
    """How many trailing bytes of ``data[start:]`` could be the beginning of a separator."""
    for n in range(min(len(SEPARATOR) - 1, len(data) - start), 0, -1):
        if data.endswith(SEPARATOR[:n]):
            return n
    return 0


class HalextStreamParser:
    """Feed bytes with ``feed``; call ``finish`` when the body ends (or is cut).

    ``feed`` and ``finish`` return the text that became certain, as a list of at most one
    string (empty when nothing new is certain); concatenated, everything they return is the
    reply, exactly.

    Attributes:
        done: True once the body ended with the ``[DONE]`` piece.
        chunks_emitted: how many of the server's chunks have been read to their end.
    """

    def __init__(self) -> None:
        self._held = bytearray()  # bytes that could still be framing
        self._started = False  # the leading "data: " has been consumed
        self._piece_start = True  # the held bytes (if any) begin a piece: maybe [DONE]
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._chars = 0
        self.done = False
        self.chunks_emitted = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes held back because they could still be framing (a handful at most)."""
        return len(self._held) + len(self._decoder.getstate()[0])

    @property
    def chars_emitted(self) -> int:
        """Characters of text handed on so far."""
        return self._chars

    def _text(self, raw: bytes | bytearray, *, final: bool = False) -> list[str]:
        text = self._decoder.decode(bytes(raw), final=final)
        self._chars += len(text)
        return [text] if text else []

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the text that can no longer be framing."""
        if not data:
            return []
        buf = self._held + data
        self._held = bytearray()
        pos = 0
        if not self._started:
            if len(buf) < len(PREFIX):
                if not PREFIX.startswith(bytes(buf)):
                    raise StreamFormatError("the halext stream does not start with 'data: '")
                self._held = buf
                return []
            if not buf.startswith(PREFIX):
                raise StreamFormatError("the halext stream does not start with 'data: '")
            pos = len(PREFIX)
            self._started = True
            self._piece_start = True
        out = bytearray()
        end = len(buf)
        while pos < end:
            if self._piece_start:
                rest = buf[pos : pos + len(_DONE_END) + 1]
                if len(rest) <= len(_DONE_END) and _DONE_END.startswith(bytes(rest)):
                    # Maybe the closing "[DONE]\n\n": only the end of the body will tell.
                    self._held = buf[pos:]
                    break
                self._piece_start = False
            idx = buf.find(SEPARATOR, pos)
            if idx >= 0:
                out += buf[pos:idx]
                pos = idx + len(SEPARATOR)
                self._piece_start = True
                self.chunks_emitted += 1
                continue
            keep = _separator_prefix_len(buf, pos)
            out += buf[pos : end - keep]
            self._held = buf[end - keep :]
            break
        return self._text(out)

    def finish(self) -> list[str]:
        """The body ended, normally or not. Sets ``done`` when ``[DONE]`` was the last
        piece. Otherwise the stream was cut: the text that did arrive is returned (a
        trailing ``\\n`` or ``\\n\\nda`` that may have been the start of the next separator
        is dropped, as is a character cut in half), so a caller can keep the partial reply."""
        rest = bytes(self._held)
        self._held = bytearray()
        if not self._started:
            return []
        if self._piece_start:
            # The final piece is "[DONE]\n\n"; tolerate a proxy that trimmed the blank line.
            if rest.rstrip(b"\n") == DONE_PIECE:
                self.done = True
                return self._drop_partial_character()
            if _DONE_END.startswith(rest):
                return self._drop_partial_character()  # cut inside "[DONE]", or nothing after
        if rest.endswith(b"\n\n"):
            text = rest[:-2]  # a whole chunk arrived, only [DONE] is missing
            self.chunks_emitted += 1
        else:
            # Cut inside a chunk. A trailing "\n" or "\n\nda" may be the start of the next
            # separator rather than text: drop it, since it cannot be told apart.
            text = rest[: len(rest) - _separator_prefix_len(rest, 0)]
            if text or self._chars:
                self.chunks_emitted += 1
        out = self._text(text) if text else []
        return out + self._drop_partial_character()

    def _drop_partial_character(self) -> list[str]:
        # A character cut in half by a dropped connection is not text; an invalid byte in
        # the middle of the stream was already replaced by U+FFFD.
        self._decoder.reset()
        return []


def reconstruct(body: bytes | str) -> tuple[list[str], bool]:
    """The exact rule on a whole body: (chunks, ended with [DONE])."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    if not data.startswith(PREFIX):
        if PREFIX.startswith(data):
            return [], False
        raise StreamFormatError("the halext stream does not start with 'data: '")
    pieces = data[len(PREFIX) :].split(SEPARATOR)
    last = pieces[-1]
    if last.rstrip(b"\n") == DONE_PIECE:
        return [p.decode("utf-8", errors="replace") for p in pieces[:-1]], True
    # Cut: the last piece is what arrived of a chunk (framing at its end dropped).
    if _DONE_END.startswith(last):
        pieces = pieces[:-1]
    elif last.endswith(b"\n\n"):
        pieces[-1] = last[:-2]
    else:
        pieces[-1] = last[: len(last) - _separator_prefix_len(last, 0)]
    return [p.decode("utf-8", errors="ignore") for p in pieces], False


def is_mock_reply(text: str) -> bool:
    """True when ``text`` is the mock provider's canned sentence (streamed word by word,
    each word with a trailing space, so compare without surrounding whitespace)."""
    return " ".join(text.split()) == MOCK_SENTENCE


def ends_with_mock_reply(text: str) -> bool:
    """True when the mock sentence closes ``text``: what the server appends when the
    provider fails mid-stream (halext-api.md §5.4), or the whole reply when it failed first."""
    return " ".join(text.split()).endswith(MOCK_SENTENCE)
