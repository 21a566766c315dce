"""What each route carries of a conversation's parameters and images, against the test
server's native and ``/v1`` APIs (real HTTP), and the note for what a route cannot carry."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend
from halext_desktop.routing.types import ChatMessage, ChatOptions, ImagePart, not_sent_note
from tests.helpers.aio import collect, run
from tests.servers.ollama_server import DEFAULT_MODELS, VISION_MODEL, OllamaServer

IMAGE = ImagePart("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(40)))
OPTIONS = ChatOptions(temperature=0.7, top_p=0.5, num_ctx=2048, max_tokens=5, seed=3)


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer(models=[*DEFAULT_MODELS, VISION_MODEL]) as s:
        yield s
    assert s.errors == []


def test_native_ollama_gets_options_and_bare_base64_images(server: OllamaServer) -> None:
    backend = OllamaBackend("ollama", server.url, is_default=True)

    async def go() -> None:
        try:
            messages = [ChatMessage("system", "s"), ChatMessage("user", "see", (IMAGE,))]
            await collect(backend.stream_chat("llava:7b", messages, OPTIONS))
        finally:
            await backend.aclose()

    run(go())
    (body,) = [r.json for r in server.requests_to("/api/chat")]
    assert body["options"] == {
        "temperature": 0.7, "top_p": 0.5, "num_ctx": 2048, "num_predict": 5, "seed": 3,
    }  # fmt: skip
    assert body["messages"][0] == {"role": "system", "content": "s"}
    (image,) = body["messages"][1]["images"]
    assert not image.startswith("data:") and base64.b64decode(image) == IMAGE.data


def test_openai_compatible_gets_its_parameters_and_image_url_parts(server: OllamaServer) -> None:
    backend = OpenAICompatBackend("lab", f"{server.url}/v1", None, max_retries=0)

    async def go() -> None:
        try:
            messages = [ChatMessage("user", "see", (IMAGE,))]
            await collect(backend.stream_chat("llava:7b", messages, OPTIONS))
        finally:
            await backend.aclose()

    run(go())
    (body,) = [r.json for r in server.requests_to("/v1/chat/completions")]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.7, 0.5, 5, 3,
    )  # fmt: skip
    assert "num_ctx" not in body and "options" not in body
    url = "data:image/png;base64," + base64.b64encode(IMAGE.data).decode()
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def test_no_options_sends_no_options(server: OllamaServer) -> None:
    backend = OllamaBackend("ollama", server.url, is_default=True)

    async def go() -> None:
        try:
            await collect(
                backend.stream_chat("qwen2.5:7b", [ChatMessage("user", "hi")], ChatOptions())
            )
        finally:
            await backend.aclose()

    run(go())
    (body,) = [r.json for r in server.requests_to("/api/chat")]
    assert "options" not in body and body["messages"] == [{"role": "user", "content": "hi"}]


def test_the_note_names_what_a_route_cannot_carry() -> None:
    assert not_sent_note("ollama", OPTIONS) is None
    assert not_sent_note("openai", OPTIONS) == (
        "Not sent to openai: context length (OpenAI-compatible endpoints cannot set it)"
    )
    assert not_sent_note("halext", OPTIONS) == (
        "Not sent to halext: temperature, top-p, context length, max tokens, seed "
        "(the halext API has no such fields)"
    )
    assert not_sent_note("halext", ChatOptions()) is None
    assert not_sent_note("openai", ChatOptions(temperature=1.0)) is None
