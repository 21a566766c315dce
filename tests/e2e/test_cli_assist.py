"""``halext-desktop assist task|event|note`` end to end, in process: the real Core (settings
file, SQLite usage log, keyring over the test keyring, real backends) against the protocol
test servers, with HALEXT_DESKTOP_HOME and OLLAMA_HOST pointing at the test's own ones."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from halext_desktop.app.cli_assist import run_assist
from halext_desktop.app.cli_assist_args import add_assist_parser
from halext_desktop.app.core import Core
from halext_desktop.routing.assistants import (
    SCHEMAS,
    NoteInput,
    TaskInput,
    build_messages,
    schema_for,
)
from halext_desktop.routing.backends import ollama_backend
from halext_desktop.storage.logfile import log_path
from halext_desktop.storage.settings import Settings
from tests.helpers.storage import on_owner
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer

MODEL = "llama3.2"


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        # No halext server in these tests unless one asks for it: nothing may reach the internet.
        Settings.load().set("halext_url", "")
        yield server
    assert server.errors == [], f"ollama test server errors: {server.errors}"


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="halext-desktop")
    add_assist_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["assist", *argv])


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, list[Any]]:
    """Run one command like the entry point does; returns (code, stdout, stderr, usage rows)."""
    args = _args(argv)
    core = Core()
    try:
        code = run_assist(core, args)
        rows = on_owner(core).usage.recent()
    finally:
        core.close()
    out, err = capsys.readouterr()
    return code, out, err, rows


def _expected(server: OllamaServer, kind: str, data: Any) -> dict[str, Any]:
    msgs = [{"role": m.role, "content": m.content} for m in build_messages(kind, data)]
    return json.loads(server.expected_reply(MODEL, msgs, schema_for(kind)))


def test_task_human_output(ollama: OllamaServer, capsys: pytest.CaptureFixture[str]) -> None:
    reply = {
        "subtasks": ["Tag the release", "Write the notes\nwith highlights"],
        "labels": ["release", "v1"],
        "priority": "High",
        "priority_reasoning": "Customers wait for it",
        "estimated_hours": "1.5",
    }
    ollama.queue_reply(json.dumps(reply))
    argv = ["task", "--title", "Ship v1", "--description", "Tag and announce"]
    code, out, err, rows = _cli([*argv, "-m", f"ollama/{MODEL}"], capsys)
    assert code == 0, err
    assert out == (
        "Subtasks\n"
        "  • Tag the release\n"
        "  • Write the notes\n"
        "    with highlights\n"
        "\n"
        "Labels\n"
        "  • release\n"
        "  • v1\n"
        "\n"
        "Priority: high — Customers wait for it\n"
        "Estimate: 1.5 h\n"
    )
    assert err.startswith(f"AI • {MODEL}")
    (row,) = rows
    assert (row.endpoint, row.status.value, row.requested_model) == (
        "assist:task:/api/chat",
        "ok",
        f"ollama/{MODEL}",
    )
    (req,) = ollama.requests_to("/api/chat")
    assert req.json["format"] == SCHEMAS["task"]
    assert "Task title: Ship v1" in req.json["messages"][-1]["content"]


def test_task_json_matches_the_schema_filled_by_the_server(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, _ = _cli(["task", "-t", "Ship v1", "-m", f"ollama/{MODEL}", "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert obj["result"] == _expected(ollama, "task", TaskInput("Ship v1"))


def test_a_server_that_rejects_the_schema_is_asked_for_json_mode(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama.set_formats("json")
    answer = _expected(ollama, "task", TaskInput("Ship v1"))
    ollama.queue_reply(json.dumps(answer))
    code, out, err, rows = _cli(
        ["task", "-t", "Ship v1", "-m", f"ollama/{MODEL}", "--json"], capsys
    )
    assert code == 0, err
    obj = json.loads(out)
    assert obj["result"] == answer
    assert obj["json_mode"] == "json"
    assert obj["notes"] == [
        "The server does not take a JSON schema as the output format; JSON mode was used"
    ]
    assert sorted(r.status.value for r in rows) == ["error", "ok"]  # the rejected try, counted
    # Without --json the note is on stderr.
    ollama.queue_reply(json.dumps(answer))
    code, out, err, _ = _cli(["task", "-t", "Ship v1", "-m", f"ollama/{MODEL}"], capsys)
    assert code == 0, err
    assert "JSON mode was used" in err


def test_note_json_from_stdin(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Call Bob about the lease.\nBuy milk.\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out, err, rows = _cli(["note", "-", "--json", "--model", f"ollama/{MODEL}"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    assert obj["status"] == "ok"
    assert obj["result"] == _expected(ollama, "note", NoteInput(text))
    assert obj["model_asked"] == f"ollama/{MODEL}"
    assert obj["model_answered"].startswith("ollama/")
    assert obj["usage"]["endpoint"] == "assist:note:/api/chat"
    assert obj["usage"]["status"] == "ok" and obj["usage"]["tokens_exact"] is True
    assert [r.endpoint for r in rows] == ["assist:note:/api/chat"]


def test_note_from_file_and_default_model(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """No --model and no default_model: the first allowed local model the routes list."""
    note = tmp_path / "note.md"
    note.write_text("Renew passport before June.", encoding="utf-8")
    code, out, err, _ = _cli(["note", "--file", str(note), "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    first = ollama.requests_to("/api/tags")
    assert first, "the model list was not asked for"
    asked = obj["model_asked"]
    assert asked.startswith("ollama/")
    assert ollama.requests_to("/api/chat")[0].json["model"] == asked.split("/", 1)[1]


def test_event_json(ollama: OllamaServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err, _ = _cli(
        [
            "event",
            "--title",
            "Offsite",
            "--start",
            "2025-11-24T14:00+02:00",
            "--end",
            "2025-11-24T17:30+02:00",
            "-m",
            f"ollama/{MODEL}",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    obj = json.loads(out)
    assert set(obj["result"]) == {"summary", "preparation_steps", "suggestions"}
    prompt = ollama.requests_to("/api/chat")[0].json["messages"][-1]["content"]
    assert "Starts: Monday 2025-11-24 14:00 (UTC+02:00)" in prompt
    assert "(3 h 30 min)" in prompt


def test_unparseable_reply_exits_1_and_prints_the_raw_text(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = "Here are some thoughts:\n- pack early\n- label boxes"
    ollama.queue_reply(raw)
    code, out, err, rows = _cli(["task", "--title", "Move house", "-m", f"ollama/{MODEL}"], capsys)
    assert code == 1
    assert out == raw + "\n"
    problem = [line for line in err.splitlines() if line.startswith("halext-desktop:")]
    assert len(problem) == 1
    assert "could not be read as task suggestions" in problem[0]
    assert "contains no JSON object" in problem[0]
    assert [r.status.value for r in rows] == ["ok"]

    ollama.queue_reply(raw)
    code, out, _, _ = _cli(
        ["task", "--title", "Move house", "-m", f"ollama/{MODEL}", "--json"], capsys
    )
    assert code == 1
    obj = json.loads(out)
    assert (obj["status"], obj["result"], obj["raw_text"]) == ("unparseable", None, raw)
    assert "could not be read" in obj["error"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["event", "--title", "X", "--start", "next tuesday"], "not an ISO 8601 time"),
        (["event", "--title", "X", "--start", "2025-01-02T10:00", "--end", "2025-01-01"], "ends"),
        (["task", "--title", "  "], "needs a title"),
        (["note"], "exactly one of --text"),
        (["note", "--text", "  "], "the note is empty"),
        (["note", "--file", "/nonexistent/halext-note.txt"], "no such file"),
    ],
)
def test_bad_input_exits_2_without_a_request(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err, rows = _cli([*argv, "-m", f"ollama/{MODEL}"], capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert out == "" and rows == []
    assert ollama.requests == []


def test_unknown_model_exits_1_with_one_line(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, rows = _cli(["note", "--text", "hi", "-m", "ollama/nope:1b"], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "nope:1b" in err
    assert [(r.endpoint, r.status.value) for r in rows] == [("assist:note:/api/chat", "error")]


@pytest.mark.parametrize("as_json", [False, True])
def test_internal_error_names_the_log_file(
    ollama: OllamaServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    as_json: bool,
) -> None:
    def surprise(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")  # nothing the backend knows how to translate

    # Where the Ollama route reads the first line of the reply.
    monkeypatch.setattr(ollama_backend, "plain_text", surprise)
    argv = ["note", "--text", "hi", "-m", f"ollama/{MODEL}"] + (["--json"] if as_json else [])
    code, out, err, rows = _cli(argv, capsys)
    assert code == 1
    (line,) = [line for line in err.splitlines() if line.startswith("halext-desktop:")]
    names_the_log = f"please report it; details are in the log file {log_path()}"
    assert "Unexpected error talking to Ollama" in line and line.endswith(names_the_log)
    if as_json:
        obj = json.loads(out)
        assert obj["status"] == "error" and obj["error"].endswith(names_the_log)
    assert [r.status.value for r in rows] == ["error"]


def test_cloud_switch_refuses_a_halext_cloud_model_without_a_request(
    ollama: OllamaServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with HalextServer() as halext:
        monkeypatch.setenv("HALEXT_URL", halext.url)
        monkeypatch.setenv("HALEXT_USERNAME", "dev")
        monkeypatch.setenv("HALEXT_PASSWORD", "dev123")
        Settings.load().set("disable_cloud", True)
        code, out, err, rows = _cli(
            ["task", "--title", "Plan", "-m", "halext/openai:gpt-4o-mini", "--json"], capsys
        )
        assert halext.requests == []
    assert code == 1
    obj = json.loads(out)
    assert obj["status"] == "error" and "was not sent" in obj["error"]
    assert "cloud providers are disabled" in err
    assert [(r.endpoint, r.status.value) for r in rows] == [
        ("assist:task:/ai/chat/stream", "blocked")
    ]
