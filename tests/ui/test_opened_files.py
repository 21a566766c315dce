"""Files handed to the app at start become a draft for the message box (ui.opened_files):
plain pytest, no Qt."""

from __future__ import annotations

from pathlib import Path

import pytest

from halext_desktop.ui.opened_files import MAX_TEXT_BYTES, draft_from_files, local_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_text_file_becomes_a_fenced_block_named_after_it(tmp_path: Path) -> None:
    f = write(tmp_path / "main.py", "def f():\n    return 1\n\n")
    draft = draft_from_files([str(f)])
    assert draft.text == "main.py:\n```python\ndef f():\n    return 1\n```"
    assert draft.problems == []


def test_several_files_keep_their_order_and_an_unknown_suffix_has_no_language(
    tmp_path: Path,
) -> None:
    a = write(tmp_path / "a.toml", "x = 1\n")
    b = write(tmp_path / "b.txt", "plain\n")
    draft = draft_from_files([str(a), str(b)])
    assert draft.text == "a.toml:\n```toml\nx = 1\n```\n\nb.txt:\n```\nplain\n```"


def test_a_file_url_is_decoded_to_its_path(tmp_path: Path) -> None:
    f = write(tmp_path / "read me.md", "# Hi\n")
    url = f.as_uri()
    assert "%20" in url
    assert local_path(url) == f
    assert local_path(url.replace("file://", "file://localhost")) == f
    assert draft_from_files([url]).text == "read me.md:\n```markdown\n# Hi\n```"


def test_a_file_that_holds_a_fence_gets_a_longer_one(tmp_path: Path) -> None:
    f = write(tmp_path / "notes.md", "```py\nx\n```\n")
    assert draft_from_files([str(f)]).text == "notes.md:\n````markdown\n```py\nx\n```\n````"


def test_what_cannot_go_into_a_message_is_named(tmp_path: Path) -> None:
    binary = tmp_path / "logo.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff")
    missing = tmp_path / "nope.txt"
    big = write(tmp_path / "huge.log", "x" * (MAX_TEXT_BYTES + 1))
    ok = write(tmp_path / "ok.txt", "fine\n")
    draft = draft_from_files(
        [
            str(binary),
            str(missing),
            "http://example.com/a.txt",
            "file://otherhost/etc/hosts",
            str(big),
            str(ok),
        ]
    )
    assert draft.text == "ok.txt:\n```\nfine\n```"  # the usable file still goes in
    assert draft.problems == [
        "logo.png is not a text file",
        f"{missing} was not found",
        "http://example.com/a.txt is not a local file; only files can be opened",
        "file://otherhost/etc/hosts is not a local file; only files can be opened",
        f"huge.log is 256 KB; files up to {MAX_TEXT_BYTES // 1024} KB can go into a message",
    ]


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    f = write(tmp_path / "todo.md", "- one\n")
    assert local_path("~/todo.md") == f
    assert draft_from_files(["~/todo.md"]).text == "todo.md:\n```markdown\n- one\n```"


def test_nothing_opened_is_an_empty_draft() -> None:
    draft = draft_from_files([])
    assert draft.text == "" and draft.problems == []
