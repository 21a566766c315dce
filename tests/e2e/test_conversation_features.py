"""Conversation features end to end, through ``halext-desktop`` in-process against the
protocol servers: the system prompt and parameters reach each route as its protocol allows
(and are kept with the conversation), what a route cannot carry is said, images reach a
vision model and are refused before sending for a text-only one, regenerated replies keep
their versions and the one shown is sent as history, and export/import round-trips."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from halext_desktop.app.cli import main
from halext_desktop.app.core import Core
from halext_desktop.routing.refs import ModelRef
from halext_desktop.storage.chat_settings import ChatSettings
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import DEFAULT_MODELS, VISION_MODEL, OllamaServer


@pytest.fixture
def ollama_server() -> Iterator[OllamaServer]:
    """The default models plus a vision one (``/api/show`` lists "vision")."""
    with OllamaServer(models=[*DEFAULT_MODELS, VISION_MODEL]) as server:
        yield server
    assert server.errors == [], f"ollama test server errors: {server.errors}"


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, halext_server: HalextServer, ollama_server: OllamaServer
) -> None:
    monkeypatch.setenv("HALEXT_URL", halext_server.url)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def png_bytes(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real (tiny) PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def ask_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run(capsys, "ask", "--json", *argv)
    return code, (json.loads(out) if out.strip() else {}), err


def test_system_prompt_and_parameters_reach_ollama_and_stay_with_the_conversation(
    env, capsys, ollama_server: OllamaServer
) -> None:
    code, obj, _ = ask_json(
        capsys, "-m", "ollama/qwen2.5:7b", "--system", "You are terse.",
        "--temperature", "0.3", "--top-p", "0.8", "--num-ctx", "8192",
        "--max-tokens", "3", "--seed", "42", "hello there",
    )  # fmt: skip
    assert code == 0
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["messages"][-1] == {"role": "user", "content": "hello there"}
    assert body["options"] == {
        "temperature": 0.3, "top_p": 0.8, "num_ctx": 8192, "num_predict": 3, "seed": 42,
    }  # fmt: skip
    # num_predict was honoured: the reply stopped at 3 tokens.
    assert obj["usage"]["response_tokens"] == 3
    # A later process (a restart) continues the conversation with the same settings.
    ollama_server.clear_requests()
    code, _, _ = ask_json(capsys, "-c", str(obj["conversation_id"]), "and again")
    assert code == 0
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["options"]["seed"] == 42 and body["options"]["num_ctx"] == 8192
    # A flag changes only that setting; an empty --system clears the prompt.
    ollama_server.clear_requests()
    code, _, _ = ask_json(
        capsys, "-c", str(obj["conversation_id"]), "--system", "", "--seed", "7", "x"
    )
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert body["messages"][0]["role"] == "user"
    assert body["options"] == {
        "temperature": 0.3, "top_p": 0.8, "num_ctx": 8192, "num_predict": 3, "seed": 7,
    }  # fmt: skip


def test_openai_compatible_gets_its_parameters_and_says_num_ctx_was_not_sent(
    env, capsys, monkeypatch, ollama_server: OllamaServer
) -> None:
    code, _, err = run(
        capsys, "config", "set", "openai_endpoints",
        json.dumps([{"name": "lm", "url": f"{ollama_server.url}/v1"}]),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(
        capsys, "ask", "-m", "openai@lm/qwen2.5:7b", "--system", "Be brief.",
        "--temperature", "0.5", "--top-p", "0.9", "--num-ctx", "4096",
        "--max-tokens", "50", "--seed", "1", "hi",
    )  # fmt: skip
    assert code == 0, err
    (body,) = [r.json for r in ollama_server.requests_to("/v1/chat/completions")]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.5, 0.9, 50, 1,
    )  # fmt: skip
    assert "num_ctx" not in json.dumps(body)
    assert "⚠ Not sent to openai: context length" in err


def test_halext_gets_the_system_prompt_in_history_and_the_rest_is_said_not_sent(
    env, capsys, monkeypatch, halext_server: HalextServer
) -> None:
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")
    code, obj, _ = ask_json(
        capsys, "-m", "halext/ollama:llama3.1:8b", "--system", "Answer in French.",
        "--temperature", "0.2", "--seed", "9", "bonjour",
    )  # fmt: skip
    assert code == 0
    (req,) = halext_server.requests_to("/ai/chat/stream")
    assert req.json == {
        "prompt": "bonjour",
        "history": [{"role": "system", "content": "Answer in French."}],
        "model": "ollama:llama3.1:8b",
    }
    assert (
        "Not sent to halext: temperature, seed (the halext API has no such fields)" in obj["notes"]
    )
    # The window shows the same note under the reply: it is kept with it.
    core = Core()
    try:
        rows = asyncio.run(_messages(core, obj["conversation_id"]))
    finally:
        core.close()
    assert any("Not sent to halext" in n for n in rows[-1].meta["notes"])


async def _messages(core: Core, cid: int) -> list[Any]:
    try:
        return await core.conversations.messages(cid)
    finally:
        await core.aclose()


def test_an_image_reaches_a_vision_model_in_both_protocols(
    env, capsys, tmp_path: Path, ollama_server: OllamaServer
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(png_bytes())
    code, obj, err = ask_json(capsys, "-m", "ollama/llava:7b", "--attach", str(image), "what is it")
    assert code == 0, err
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    (user,) = body["messages"]
    assert user["content"] == "what is it"
    assert [base64.b64decode(i) for i in user["images"]] == [image.read_bytes()]
    # OpenAI-compatible: an image_url content part with a data: URL (when the listing says
    # the model takes images; Ollama's /v1 listing does not say, so it is refused there).
    run(capsys, "config", "set", "openai_endpoints",
        json.dumps([{"name": "lm", "url": f"{ollama_server.url}/v1"}]))  # fmt: skip
    code, out, err = run(capsys, "ask", "-m", "openai@lm/llava:7b", "--attach", str(image), "x")
    assert code == 1 and out == ""
    assert "Not sent: llava:7b cannot take images" in err
    assert ollama_server.requests_to("/v1/chat/completions") == []
    assert obj["conversation_id"]


def test_a_follow_up_sends_earlier_images_to_a_vision_model_and_text_to_others(
    env, capsys, tmp_path: Path, ollama_server: OllamaServer
) -> None:
    """A question about a picture asked before: a vision model gets that picture again with
    the history (the newest four at most), a text-only model the text alone."""
    images = []
    for n in range(5):
        image = tmp_path / f"dot{n}.png"
        image.write_bytes(png_bytes(rgb=(40 * n, 30, 30)))
        images.append(image)
    attach = [arg for image in images for arg in ("--attach", str(image))]
    code, obj, err = ask_json(capsys, "-m", "ollama/llava:7b", *attach, "what are these?")
    assert code == 0, err
    cid = str(obj["conversation_id"])
    code, _, err = ask_json(capsys, "-c", cid, "-m", "ollama/llava:7b", "which one is red?")
    assert code == 0, err
    first, follow_up = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert len(first["messages"][0]["images"]) == 5
    earlier, answer, question = follow_up["messages"]
    assert earlier["content"] == "what are these?" and answer["role"] == "assistant"
    sent = [base64.b64decode(i) for i in earlier["images"]]
    assert sent == [image.read_bytes() for image in images[:4]]  # four at most
    assert "images" not in answer and "images" not in question
    # A model that does not take images: the same history, its text alone.
    code, _, err = ask_json(capsys, "-c", cid, "-m", "ollama/qwen2.5:7b", "and the blue one?")
    assert code == 0, err
    last = ollama_server.requests_to("/api/chat")[-1].json
    assert [m["content"] for m in last["messages"][:1]] == ["what are these?"]
    assert all("images" not in m for m in last["messages"])


def test_an_image_is_refused_before_sending_for_a_text_only_model_and_halext(
    env, capsys, monkeypatch, tmp_path: Path, ollama_server: OllamaServer, halext_server
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(png_bytes())
    code, out, err = run(capsys, "ask", "-m", "ollama/qwen2.5:7b", "--attach", str(image), "hi")
    assert code == 1 and out == ""
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("halext-desktop: Not sent: qwen2.5:7b cannot take images")
    )
    assert ollama_server.requests_to("/api/chat") == []
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")
    code, _, err = run(
        capsys, "ask", "-m", "halext/openai:gpt-4o-mini", "--attach", str(image), "hi"
    )
    assert code == 1 and "the halext API cannot carry images" in err
    assert halext_server.requests_to("/ai/chat/stream") == []
    # Nothing was stored.
    code, out, _ = run(capsys, "conversations", "--json")
    assert json.loads(out) == []


def test_a_text_file_is_inlined_as_a_fenced_block_and_listed(
    env, capsys, tmp_path: Path, ollama_server: OllamaServer
) -> None:
    code_file = tmp_path / "main.py"
    code_file.write_text("print('```')\n")
    code, obj, _ = ask_json(capsys, "-m", "ollama/qwen2.5:7b", "--attach", str(code_file), "review")
    assert code == 0
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert body["messages"][-1]["content"] == "review\n\nmain.py:\n\n````python\nprint('```')\n````"
    assert "images" not in body["messages"][-1]


def test_too_large_and_binary_attachments_are_one_line(env, capsys, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * (600 * 1024))
    code, _, err = run(capsys, "ask", "-m", "ollama/qwen2.5:7b", "--attach", str(big), "hi")
    assert code == 2 and "big.txt is 600 KB; text files can be at most 512 KB" in err
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\xff\xfe\x00\x01" * 10)
    code, _, err = run(capsys, "ask", "-m", "ollama/qwen2.5:7b", "--attach", str(blob), "hi")
    assert code == 2 and "blob.bin is neither an image" in err
    assert len(err.strip().splitlines()) == 1


def test_regenerate_keeps_versions_and_the_one_shown_is_sent_as_history(
    make_core: Any, ollama_server: OllamaServer
) -> None:
    core = make_core()
    ref = ModelRef.parse("ollama/qwen2.5:7b")
    for text in ("first answer", "second answer", "third answer", "next"):
        ollama_server.queue_reply(text)

    async def go() -> tuple[Any, ...]:
        try:
            cid = None
            async for ev in core.turns.send(None, "question", ref):
                if hasattr(ev, "assistant"):
                    cid = ev.assistant.conversation_id
            assert cid is not None
            for _ in range(2):
                async for _ev in core.turns.regenerate(cid, ref):
                    pass
            rows = await core.conversations.messages(cid)
            reply = rows[-1]
            shown = await core.conversations.select_version(reply.id, 0)
            ollama_server.clear_requests()
            async for _ev in core.turns.send(cid, "follow up", ref):
                pass
            return cid, rows, shown, await core.conversations.messages(cid)
        finally:
            await core.aclose()

    cid, rows, shown, after = asyncio.run(go())
    assert [r.role for r in rows] == ["user", "assistant"]
    reply = rows[-1]
    assert reply.content == "third answer" and reply.meta["version"] == 2
    assert [v and v["content"] for v in reply.meta["versions"]] == [
        "first answer", "second answer", None,
    ]  # fmt: skip
    assert shown.content == "first answer" and shown.meta["version"] == 0
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert body["messages"] == [
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "follow up"},
    ]
    # The choice is in the database (a restart shows it).
    kept = after[1]
    assert kept.content == "first answer"
    assert [v and v["content"] for v in kept.meta["versions"]] == [
        None, "second answer", "third answer",
    ]  # fmt: skip


def test_export_json_imports_back_exactly_with_settings_versions_and_attachments(
    env, capsys, tmp_path: Path, ollama_server: OllamaServer
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(png_bytes())
    note = tmp_path / "notes.md"
    note.write_text("# Notes\n\n- one\n")
    code, obj, _ = ask_json(
        capsys, "-m", "ollama/llava:7b", "--system", "Be kind.", "--temperature", "0.4",
        "--attach", str(image), "--attach", str(note), "look",
    )  # fmt: skip
    assert code == 0
    cid = obj["conversation_id"]
    core = Core()
    try:

        async def regen() -> None:
            try:
                async for _ev in core.turns.regenerate(cid, ModelRef.parse("ollama/llava:7b")):
                    pass
            finally:
                await core.aclose()

        asyncio.run(regen())
    finally:
        core.close()
    # The regenerated reply sent the image again.
    bodies = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert (
        len(bodies) == 2
        and bodies[1]["messages"][-1]["images"] == bodies[0]["messages"][-1]["images"]
    )

    code, exported, _ = run(capsys, "export", str(cid), "--format", "json")
    assert code == 0
    doc = json.loads(exported)
    assert doc["settings"] == {"system": "Be kind.", "temperature": 0.4}
    (sha,) = [
        a["sha256"] for a in doc["messages"][0]["meta"]["attachments"] if a["kind"] == "image"
    ]
    assert base64.b64decode(doc["attachments"][sha]["data"]) == image.read_bytes()
    assert len(doc["messages"][1]["meta"]["versions"]) == 2

    path = tmp_path / "export.json"
    path.write_text(exported)
    code, out, _ = run(capsys, "import", str(path))
    assert code == 0 and out.startswith("Imported conversation ")
    new_id = int(out.split()[2].rstrip(":"))
    assert new_id != cid
    code, again, _ = run(capsys, "export", str(new_id), "--format", "json")
    assert json.loads(again) == doc

    # The imported conversation goes on with its settings.
    ollama_server.clear_requests()
    code, _, _ = ask_json(capsys, "-c", str(new_id), "more")
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert body["messages"][0] == {"role": "system", "content": "Be kind."}
    assert body["options"] == {"temperature": 0.4}


def test_markdown_export_has_every_text_exactly_and_the_attachments_beside_it(
    env, capsys, tmp_path: Path, ollama_server: OllamaServer
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(png_bytes())
    code, obj, _ = ask_json(capsys, "-m", "ollama/llava:7b", "--attach", str(image), "a *b* `c`")
    cid = obj["conversation_id"]
    target = tmp_path / "chat.md"
    code, _, err = run(capsys, "export", str(cid), "-o", str(target))
    assert code == 0 and "1 attachment file" in err
    text = target.read_text()
    assert "\na *b* `c`\n" in text and "\n" + obj["text"] + "\n" in text
    (written,) = (tmp_path / "chat_files").iterdir()
    assert written.read_bytes() == image.read_bytes()
    assert f"![dot.png](chat_files/{written.name})" in text
    assert oct(written.stat().st_mode & 0o777) == "0o600"


def test_conversations_lists_ids_and_export_all_and_bad_imports(
    env, capsys, tmp_path: Path
) -> None:
    for prompt in ("one", "two"):
        assert ask_json(capsys, "-m", "ollama/qwen2.5:7b", prompt)[0] == 0
    code, out, _ = run(capsys, "conversations", "--json")
    listed = json.loads(out)
    assert [c["title"] for c in listed] == ["two", "one"]
    code, out, _ = run(capsys, "conversations")
    assert (
        code == 0
        and len(out.splitlines()) == 2
        and out.splitlines()[0].split()[0] == str(listed[0]["id"])
    )
    code, out, _ = run(capsys, "export", "--all", "--format", "json")
    doc = json.loads(out)
    assert [c["title"] for c in doc["conversations"]] == ["one", "two"]
    path = tmp_path / "all.json"
    path.write_text(out)
    code, out, _ = run(capsys, "import", str(path))
    assert code == 0 and len(out.splitlines()) == 2
    bad = tmp_path / "bad.json"
    when = "2026-01-01T00:00:00+00:00"
    message = {"role": "robot", "content": "x", "created_at": when}
    doc = {"format": "halext-desktop/conversation", "version": 1, "title": "x"}
    bad.write_text(json.dumps({**doc, "created_at": when, "messages": [message]}))
    code, _, err = run(capsys, "import", str(bad))
    assert code == 1 and "message 1" in err and "robot" in err
    code, out, _ = run(capsys, "conversations", "--json")
    assert len(json.loads(out)) == 4  # nothing of the bad file was written
    code, _, err = run(capsys, "export", "999")
    assert code == 2 and "no conversation 999" in err


def test_chat_settings_validate_before_anything_is_sent(env, capsys, ollama_server) -> None:
    code, _, err = run(capsys, "ask", "-m", "ollama/qwen2.5:7b", "--temperature", "5", "hi")
    assert code == 2 and "temperature: 5.0 is not between 0 and 2" in err
    assert ollama_server.requests_to("/api/chat") == []
    assert ChatSettings(temperature=1).summary() == "temp 1"


def test_ask_starts_from_a_preset_and_flags_override_it(env, capsys, ollama_server) -> None:
    code, _, err = run(capsys, "ask", "-m", "ollama/qwen2.5:7b", "--preset", "Nope", "hi")
    assert code == 2 and "no preset named 'Nope'; presets: none saved yet" in err
    core = Core()
    try:

        async def save() -> None:
            try:
                await core.conversations.save_preset(
                    "Terse", ChatSettings(system="Be terse.", temperature=0.1, seed=5)
                )
            finally:
                await core.aclose()

        asyncio.run(save())
    finally:
        core.close()
    code, obj, _ = ask_json(
        capsys, "-m", "ollama/qwen2.5:7b", "--preset", "Terse", "--seed", "6", "hi"
    )
    assert code == 0
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["options"] == {"temperature": 0.1, "seed": 6}
    # Kept with the conversation: the next turn needs no preset.
    ollama_server.clear_requests()
    ask_json(capsys, "-c", str(obj["conversation_id"]), "again")
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert body["options"] == {"temperature": 0.1, "seed": 6}


def test_the_conversations_context_length_bounds_the_history_sent(
    env, capsys, ollama_server: OllamaServer
) -> None:
    from tests.helpers.storage import on_owner

    core = Core()
    try:
        store = on_owner(core).conversations
        conv = store.create("long chat", "ollama/qwen2.5:7b")
        words = " ".join(f"word{i}" for i in range(80))
        rows = [("user" if i % 2 == 0 else "assistant", f"{i} {words}") for i in range(100)]
        store.add_messages_bulk(conv.id, rows)
    finally:
        core.close()
    code, _, _ = ask_json(capsys, "-c", str(conv.id), "first")
    assert code == 0
    code, _, _ = ask_json(capsys, "-c", str(conv.id), "--num-ctx", "4096", "second")
    assert code == 0
    wide, narrow = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert "options" not in wide and narrow["options"] == {"num_ctx": 4096}
    # qwen2.5 takes 32k tokens: the whole chat went; 4096 tokens hold only its newest turns.
    assert len(wide["messages"]) == 101
    assert 2 < len(narrow["messages"]) < 40
    assert narrow["messages"][-1] == {"role": "user", "content": "second"}
