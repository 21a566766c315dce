"""What goes into an Ollama ``/api/chat`` request and what one line of its stream says.

The ``ollama`` client builds a pydantic ``ChatRequest`` per request and a ``ChatResponse``
(with its ``Message``) per streamed line. A reply of 2,000 chunks pays that validation
2,000 times for lines that all look alike, so the Ollama route reads them here: a plain
chunk (``model``, ``created_at``, ``message`` with ``role`` and ``content``, ``done:
false`` — every line but the last) is taken from the parsed JSON as it is, and any other
line (the done line, thinking, tool calls, anything unusual) goes through the library's own
``ChatResponse``, so it is validated, and fails, exactly as the library would. An error
line raises the library's ``ResponseError`` (status -1), as the client does
(ollama-protocol.md §5).
"""

from __future__ import annotations

import json
from base64 import b64encode
from typing import Any

from halext_desktop.routing.backends.ollama_import import ollama
from halext_desktop.routing.types import ChatMessage

# The keys of a plain chunk, and of its message: with anything else the library reads it.
_PLAIN_KEYS = frozenset({"model", "created_at", "message", "done"})
_PLAIN_MESSAGE_KEYS = frozenset({"role", "content"})


def chat_body(model: str, messages: list[ChatMessage], extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a streamed chat: the wire format of ollama-protocol.md §2 (images as
    bare base64), with ``extra`` (``format``, ``options``) as given."""
    payload: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.images:
            item["images"] = [b64encode(p.data).decode("ascii") for p in m.images]
        payload.append(item)
    return {"model": model, "messages": payload, "stream": True, **extra}


def plain_text(part: Any) -> str | None:
    """The text of a plain chunk (possibly empty), or None when ``part`` is any other line."""
    if type(part) is not dict or part.get("done") is not False or not part.keys() <= _PLAIN_KEYS:
        return None
    message = part.get("message")
    if type(message) is not dict or not message.keys() <= _PLAIN_MESSAGE_KEYS:
        return None
    text = message.get("content")
    if (
        type(text) is not str
        or type(message.get("role")) is not str
        or type(part.get("model", "")) is not str
        or type(part.get("created_at", "")) is not str
    ):
        return None
    return text


def chat_response(part: Any, line: str) -> ollama.ChatResponse:
    """Any line but a plain chunk, read as the library reads it: an ``error`` line raises
    ``ResponseError`` (status -1), a line that is no JSON object raises
    ``json.JSONDecodeError`` (a bad reply), a missing or ill-typed field the library's
    ``pydantic.ValidationError``."""
    if type(part) is not dict:
        raise json.JSONDecodeError("expected a JSON object", line[:80], 0)
    if err := part.get("error"):
        raise ollama.ResponseError(err)
    return ollama.ChatResponse(**part)
