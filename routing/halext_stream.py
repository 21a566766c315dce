"""Incremental parser for halext's chat stream (halext-api.md §5.4).

The server writes each provider chunk raw as ``data: <chunk>\\n\\n`` (no escaping), then
``data: [DONE]\\n\\n``. A chunk containing newlines produces extra lines, so a spec SSE
parser (or a line parser) loses them. The exact-reconstruction rule is: take the whole
body, strip the leading ``data: ``, split on ``\\n\\ndata: ``; the last piece is
``[DONE]\\n\\n``; the others are the chunks, verbatim (a chunk's own leading space is kept:
only the one space after ``data:`` is framing).

This parser applies that rule to bytes as they arrive, split anywhere. A chunk is emitted
only once the separator after it has arrived, because until then it is not certain
where the chunk ends. Working on bytes is safe: the separator is ASCII and UTF-8
multi-byte sequences never contain ASCII bytes, so a split never cuts a character, and
each chunk is decoded whole.
"""

from __future__ import annotations

PREFIX = b"data: "
SEPARATOR = b"\n\ndata: "
DONE_PIECE = b"[DONE]"

# The mock provider's canned reply (halext-api.md §4); the server streams it word by word
# when it silently falls back, while the header still names the model that was asked.
MOCK_SENTENCE = "I am a mock AI assistant. Connect me to a real backend to get started!"


class StreamFormatError(ValueError):
    """The body does not start with ``data: ``: not a halext chat stream."""


class HalextStreamParser:
    """Feed bytes with ``feed``; call ``finish`` at the end of the body.

    Attributes:
        done: True once the body ended with the ``[DONE]`` piece.
        chunks_emitted: how many chunks ``feed``/``finish`` have returned so far.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._started = False  # the leading "data: " has been consumed
        self._scan_from = 0  # where the next separator search starts (avoids rescanning)
        self.done = False
        self.chunks_emitted = 0

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the chunks whose end is now certain, in order."""
        if not data:
            return []
        self._buffer += data
        if not self._started:
            if len(self._buffer) < len(PREFIX):
                if not PREFIX.startswith(bytes(self._buffer)):
                    raise StreamFormatError("the halext stream does not start with 'data: '")
                return []
            if not self._buffer.startswith(PREFIX):
                raise StreamFormatError("the halext stream does not start with 'data: '")
            del self._buffer[: len(PREFIX)]
            self._started = True
            self._scan_from = 0
        out: list[str] = []
        while True:
            idx = self._buffer.find(SEPARATOR, self._scan_from)
            if idx < 0:
                # The separator may straddle this read and the next: rescan its length - 1.
                self._scan_from = max(0, len(self._buffer) - len(SEPARATOR) + 1)
                break
            out.append(self._buffer[:idx].decode("utf-8", errors="replace"))
            del self._buffer[: idx + len(SEPARATOR)]
            self._scan_from = 0
        self.chunks_emitted += len(out)
        return out

    def finish(self) -> list[str]:
        """The body ended (normally or not). Sets ``done`` when ``[DONE]`` was the last
        piece. Otherwise the stream was cut: whatever text of the last chunk did arrive
        is returned, so a caller can keep the partial reply."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        if not self._started:
            return []
        # The final piece is "[DONE]\n\n"; tolerate a proxy that trimmed the blank line.
        if rest.rstrip(b"\n") == DONE_PIECE:
            self.done = True
            return []
        if (DONE_PIECE + b"\n\n").startswith(rest):
            return []  # cut inside "[DONE]" (or nothing after the last separator)
        if rest.endswith(b"\n\n"):
            text = rest[:-2]  # a whole chunk arrived, only [DONE] is missing
        else:
            # Cut inside a chunk. A trailing "\n" or "\n\nda" may be the start of the next
            # separator rather than text: drop it, since it cannot be told apart.
            text = rest
            for n in range(len(SEPARATOR) - 1, 0, -1):
                if text.endswith(SEPARATOR[:n]):
                    text = text[:-n]
                    break
        decoded = text.decode("utf-8", errors="ignore")  # the cut may split a character
        if not decoded:
            return []
        self.chunks_emitted += 1
        return [decoded]

    @property
    def pending_bytes(self) -> int:
        """Bytes held back because their chunk's end is not certain yet."""
        return len(self._buffer)


def reconstruct(body: bytes | str) -> tuple[list[str], bool]:
    """One-shot form of the rule: (chunks, ended with [DONE]) for a whole body."""
    parser = HalextStreamParser()
    data = body.encode("utf-8") if isinstance(body, str) else body
    chunks = parser.feed(data)
    chunks += parser.finish()
    return chunks, parser.done


def is_mock_reply(text: str) -> bool:
    """True when ``text`` is the mock provider's canned sentence (streamed word by word,
    each word with a trailing space, so compare without surrounding whitespace)."""
    return " ".join(text.split()) == MOCK_SENTENCE


def ends_with_mock_reply(text: str) -> bool:
    """True when the mock sentence closes ``text``: what the server appends when the
    provider fails mid-stream (halext-api.md §5.4), or the whole reply when it failed first."""
    return " ".join(text.split()).endswith(MOCK_SENTENCE)
