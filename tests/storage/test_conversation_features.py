"""The pieces of the conversation features that need no server: settings validation and
their tolerant reading, reply versions, attachments (kinds, limits, fences), the export
document's checks, and the migration to 0005."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from halext_desktop.storage import transfer, versions
from halext_desktop.storage.attachments import (
    MAX_TEXT_BYTES,
    AttachmentError,
    inline_text,
    prepare_bytes,
    prepare_file,
    refs_of,
)
from halext_desktop.storage.chat_settings import ChatSettings, load, parse_value
from halext_desktop.storage.conversations import MessageRow

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def reply(content: str, **meta: object) -> MessageRow:
    return MessageRow(
        1, 1, "assistant", content, "ok", "ollama/a", "ollama/a", None, dict(meta), WHEN
    )


def test_settings_validate_and_name_the_field() -> None:
    assert ChatSettings(temperature=0, top_p=1, num_ctx=8192, max_tokens=1, seed=-5).summary() == (
        "temp 0 · top-p 1 · ctx 8192 · max 1 · seed -5"
    )
    for bad, line in (
        ({"temperature": 2.5}, "temperature: 2.5 is not between 0 and 2"),
        ({"num_ctx": 1.5}, "num_ctx: 1.5 is not a whole number"),
        ({"seed": True}, "seed: True is not a number"),
        ({"top_p": float("nan")}, "top_p: nan is not a finite number"),
    ):
        with pytest.raises(ValueError, match=line):
            ChatSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown chat setting"):
        ChatSettings.from_dict({"temp": 1})
    assert parse_value("seed", " 42 ") == 42 and parse_value("temperature", "") is None
    with pytest.raises(ValueError, match="max_tokens: 'lots' is not a whole number"):
        parse_value("max_tokens", "lots")


def test_settings_written_by_a_newer_or_damaged_app_read_as_what_is_valid() -> None:
    assert load('{"system": "hi", "temperature": 9, "future": 1}') == ChatSettings(system="hi")
    assert load("not json") == ChatSettings() and load("[1]") == ChatSettings()


def test_versions_regenerate_and_flip_keep_every_answer_once() -> None:
    first = reply("one")
    kept = versions.for_regenerate([first])
    assert kept["version"] == 1 and kept["versions"][1] is None
    assert kept["versions"][0]["content"] == "one"
    second = dataclasses.replace(first, content="two", meta={"ttft_ms": 5, **kept})
    assert versions.info(second.meta) == (1, 2)
    back = versions.flip(second, 0)
    assert back.content == "one" and back.meta["version"] == 0
    assert back.meta["versions"][0] is None and back.meta["versions"][1]["content"] == "two"
    assert back.meta["versions"][1]["meta"] == {"ttft_ms": 5}  # no nesting of versions
    third_base = dataclasses.replace(second, content=back.content, meta=back.meta)
    again = versions.for_regenerate([third_base])
    assert [v and v["content"] for v in again["versions"]] == ["one", "two", None]
    with pytest.raises(ValueError, match="versions 1 to 2"):
        versions.flip(second, 2)
    with pytest.raises(ValueError, match="only one version"):
        versions.flip(first, 0)
    assert versions.for_regenerate([]) == {}


def test_attachments_are_images_or_text_within_limits(tmp_path: Path) -> None:
    image = prepare_bytes("a.png", PNG)
    assert (image.ref.kind, image.ref.mime) == ("image", "image/png")
    text = prepare_bytes("notes.md", b"# hi\n")
    assert (text.ref.kind, text.ref.mime) == ("text", "text/markdown")
    with pytest.raises(AttachmentError, match="neither an image"):
        prepare_bytes("x.bin", b"\xff\xfe\xfd")
    with pytest.raises(AttachmentError, match="looks like a binary file"):
        prepare_bytes("x.dat", b"ab\x00cd")
    with pytest.raises(AttachmentError, match="text files can be at most 512 KB"):
        prepare_bytes("big.txt", b"a" * (MAX_TEXT_BYTES + 1))
    with pytest.raises(AttachmentError, match="cannot read"):
        prepare_file(tmp_path / "missing.txt")
    assert refs_of({"attachments": [image.ref.to_dict(), {"name": "broken"}]}) == [image.ref]


def test_text_attachments_go_in_fenced_blocks_longer_than_any_fence_inside() -> None:
    code = prepare_bytes("x.py", b"a = '````'")
    image = prepare_bytes("a.png", PNG)
    assert inline_text("look", [code, image]) == "look\n\nx.py:\n\n`````python\na = '````'\n`````"
    assert inline_text("just text", [image]) == "just text"
    assert inline_text("", [code]) == "x.py:\n\n`````python\na = '````'\n`````"


def test_an_export_that_lies_is_refused_before_anything_is_written() -> None:
    good = {
        "format": transfer.FORMAT_ONE,
        "version": 1,
        "title": "t",
        "created_at": WHEN.isoformat(),
        "messages": [],
    }
    assert transfer.parse_document(good)[0].title == "t"
    for change, line in (
        ({"format": "other"}, "not a Halext Desktop export"),
        ({"version": 7}, "export version 7 is not supported"),
        ({"title": " "}, "non-empty title"),
        ({"settings": {"temperature": 7}}, "temperature"),
        ({"attachments": {"ab": {"mime": "image/png", "data": "AAAA"}}}, "does not match"),
        (
            {"messages": [{"role": "user", "content": "x", "created_at": "yesterday"}]},
            "'yesterday' is not a time",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": "x",
                        "created_at": WHEN.isoformat(),
                        "meta": {"attachments": [prepare_bytes("a.png", PNG).ref.to_dict()]},
                    }
                ]
            },
            "attachment a.png is not in the file",
        ),
    ):
        with pytest.raises(transfer.BadExport, match=line):
            transfer.parse_document({**good, **change})
    with pytest.raises(transfer.BadExport, match="not JSON"):
        transfer.read_document(Path(__file__))  # a Python file is not JSON
    assert json.loads(transfer.to_json(good)) == good


def test_settings_and_attachment_changes_can_wait_in_the_spool_file() -> None:
    from halext_desktop.storage.ops import PutAttachment, SetChatSettings, op_from_json

    image = prepare_bytes("a.png", PNG)
    put = PutAttachment(image.ref.sha256, "image/png", len(PNG), "iVBORw0KGgo=", WHEN)
    setting = SetChatSettings(-7, {"system": "hi", "seed": 1})
    for op in (put, setting):
        assert op_from_json(json.loads(json.dumps(op.to_json()))) == op
    assert setting.remap(lambda pid: 42) == SetChatSettings(42, {"system": "hi", "seed": 1})


def test_undo_of_a_delete_brings_the_settings_back_and_unused_attachments_are_swept(
    tmp_path: Path,
) -> None:
    import asyncio

    from halext_desktop.storage.attachments import AttachmentStore
    from halext_desktop.storage.chats import Conversations
    from halext_desktop.storage.db import Database
    from halext_desktop.storage.store import Storage

    path = tmp_path / "data" / "halext.db"
    st = Storage(Database(path))
    st.wait_open()
    chats = Conversations(st.owner)
    kept_image = prepare_bytes("kept.png", PNG)
    gone_image = prepare_bytes("gone.png", PNG + b"\x01")

    async def setup() -> tuple[int, int]:
        keep = await chats.create("keep")
        gone = await chats.create("gone")
        await chats.set_chat_settings(keep.id, ChatSettings(system="Be brief.", seed=2))
        for cid, image in ((keep.id, kept_image), (gone.id, gone_image)):
            chats.queue_attachment(image)
            meta = {"attachments": [image.ref.to_dict()]}
            await chats.add_message(cid, "user", "look", meta=meta)
        return keep.id, gone.id

    keep_id, gone_id = asyncio.run(setup())

    async def delete_and_undo() -> ChatSettings:
        snapshot = await chats.delete(keep_id)
        assert await chats.chat_settings(keep_id) == ChatSettings()
        await chats.restore(snapshot)
        return await chats.chat_settings(keep_id)

    assert asyncio.run(delete_and_undo()) == ChatSettings(system="Be brief.", seed=2)
    asyncio.run(chats.delete(gone_id))
    store = AttachmentStore(st.db)
    assert st.owner.call(store.sweep) == 1
    assert st.owner.call(store.get, kept_image.ref.sha256) is not None
    assert st.owner.call(store.get, gone_image.ref.sha256) is None
    st.close()
