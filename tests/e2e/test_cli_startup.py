"""What ``halext-desktop ask`` loads: the command's start-up is most of what it costs (issue
13), so what a chat does not need stays unimported — Alembic (the schema is checked with
one query), SQLAlchemy (a chat turn's statements are plain SQL), the openai package and
the assistants' command, model management, and the keyring when no secret is needed (the
keyring's "none" for a name is remembered)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from halext_desktop.app.core import KEYRING_CACHE
from halext_desktop.storage.db import Database
from halext_desktop.storage.paths import config_dir, data_dir, db_path
from halext_desktop.storage.settings import Settings
from tests.servers.ollama_server import OllamaServer

ROOT = Path(__file__).resolve().parents[2]
DRIVER = """
import json, sys
from halext_desktop.app.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
NOT_FOR_A_CHAT = (
    "alembic",
    "mako",
    "sqlalchemy",
    "openai",
    "keyring",
    "halext_desktop.app.cli_assist",
    "halext_desktop.routing.assistants",
    "halext_desktop.routing.backends.ollama_models",
    "halext_desktop.routing.backends.halext_admin",
)


def test_ask_loads_nothing_a_chat_does_not_need(
    ollama_server: OllamaServer, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    hosts = Settings.load().effective_ollama_hosts()
    with Database():
        pass  # an existing database at the newest schema: an ordinary start
    # An earlier start asked a working keyring for the host's key and it had none.
    names = {f"ollama-key:{h.name}": time.time() for h in hosts}
    (data_dir() / KEYRING_CACHE).write_text(json.dumps({"absent": names}))
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, "ask", "--model", "ollama/qwen2.5:7b", "hello"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    loaded = set(report["modules"])
    unwanted = sorted(m for m in loaded if m in NOT_FOR_A_CHAT or m.split(".")[0] in NOT_FOR_A_CHAT)
    assert unwanted == []
    assert "halext_desktop.storage.owner" in loaded and "ollama" in loaded
    assert len(ollama_server.requests_to("/api/chat")) == 1
    # It did use the database: the turn and its usage row are stored.
    with contextlib.closing(sqlite3.connect(db_path())) as conn:
        stored = conn.execute("SELECT role, status FROM messages ORDER BY id").fetchall()
        usage = conn.execute("SELECT status FROM ai_usage_logs").fetchall()
    assert stored == [("user", "ok"), ("assistant", "ok")]
    assert usage == [("ok",)]


def _modules_of(*argv: str) -> set[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    return set(report["modules"])


def test_usage_and_a_keyless_ask_never_ask_the_keyring(
    ollama_server: OllamaServer, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No patching: whatever keyring this machine has (a working one, or none at all), a
    command that contacts no host never loads it, and an ask to a host without a key loads
    it at most at the first start: what it found is remembered next to the database."""
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    with Database():
        pass
    assert not (data_dir() / KEYRING_CACHE).exists()
    assert "keyring" not in _modules_of("usage")
    assert "keyring" not in _modules_of("usage", "--json")
    _modules_of("ask", "--model", "ollama/qwen2.5:7b", "hello")  # the first start may ask
    assert (data_dir() / KEYRING_CACHE).exists()
    loaded = _modules_of("ask", "--model", "ollama/qwen2.5:7b", "hello again")
    assert "keyring" not in loaded and "ollama" in loaded
    assert "keyring" not in _modules_of("usage")
    assert len(ollama_server.requests_to("/api/chat")) == 2


def test_commands_that_contact_no_host_build_no_route(
    ollama_server: OllamaServer, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``usage`` and ``conversations`` read the database only: the routes (the ollama and
    HTTP clients, ~0.4 s of imports) are built by the commands that send something."""
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    with Database():
        pass
    _modules_of("ask", "--model", "ollama/qwen2.5:7b", "hello")
    for command in (["usage"], ["conversations"]):
        loaded = _modules_of(*command)
        routes = sorted(m for m in ("ollama", "httpx", "halext_desktop.routing.backends.halext")
                        if m in loaded)  # fmt: skip
        assert routes == [], f"{command[0]} loaded {routes}"
    assert len(ollama_server.requests_to("/api/chat")) == 1


def test_continuing_a_conversation_with_settings_and_a_file_loads_no_sqlalchemy(
    ollama_server: OllamaServer,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A follow-up ``ask`` (the history, the conversation's system prompt and parameters,
    an attached file) runs plain SQL too; the turns are stored."""
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    with Database():
        pass  # an existing database at the newest schema (creating it runs Alembic)
    notes = tmp_path / "notes.txt"
    notes.write_text("the plan", encoding="utf-8")
    first = _modules_of("ask", "--model", "ollama/qwen2.5:7b", "--system", "be brief", "hello")
    again = _modules_of(
        "ask", "--model", "ollama/qwen2.5:7b", "-c", "1", "--temperature", "0.5",
        "--attach", str(notes), "and then?",
    )  # fmt: skip
    assert "sqlalchemy" not in first | again
    last = ollama_server.requests_to("/api/chat")[-1].json
    assert [m["role"] for m in last["messages"]] == ["system", "user", "assistant", "user"]
    assert last["options"]["temperature"] == 0.5
    with contextlib.closing(sqlite3.connect(db_path())) as conn:
        rows = conn.execute("SELECT conversation_id, role FROM messages ORDER BY id").fetchall()
    assert rows == [(1, "user"), (1, "assistant"), (1, "user"), (1, "assistant")]


def test_a_command_ends_at_once_with_everything_written(
    ollama_server: OllamaServer, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command as installed (``python -m halext_desktop``, the console script's ``run``)
    leaves without tearing the interpreter down, but only once its reply is printed, its
    rows are in the database and its log is written; the exit status is the command's."""
    from halext_desktop.storage.logfile import log_path
    from tests.servers.ollama_server import reply_text

    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)

    def command(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "halext_desktop", *argv],
            cwd=ROOT,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = command("ask", "--model", "ollama/qwen2.5:7b", "hello there")
    assert ok.returncode == 0, ok.stderr
    assert reply_text("qwen2.5:7b", "hello there") in ok.stdout
    failed = command("ask", "--model", "ollama/no-such-model:1b", "hello")
    assert failed.returncode == 1 and "no-such-model" in failed.stderr
    listed = command("usage", "--json")
    assert listed.returncode == 0, listed.stderr
    counts = {model: n for model, n in json.loads(listed.stdout)["requests_by_model"]}
    assert counts == {"ollama/qwen2.5:7b": 1, "ollama/no-such-model:1b": 1}

    con = sqlite3.connect(db_path())
    try:
        replies = con.execute(
            "SELECT content, status FROM messages WHERE role = 'assistant' ORDER BY id"
        ).fetchall()
        usage = con.execute("SELECT status FROM ai_usage_logs ORDER BY id").fetchall()
    finally:
        con.close()
    assert replies[0] == (reply_text("qwen2.5:7b", "hello there"), "ok")
    assert [s for (s,) in usage] == ["ok", "error"]
    # The first command created the database and logged it before leaving at once.
    assert "upgraded from empty to" in log_path().read_text(encoding="utf-8")


WINDOW_DRIVER = """
import json, os, sys
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
import halext_desktop.ui.start_shell as start_shell
def show(self):
    print(json.dumps(sorted(sys.modules)), flush=True)
    os._exit(0)
start_shell.StartShell.show = show
from halext_desktop.app.cli import main
main(sys.argv[1:])
"""
NOT_BEFORE_THE_WINDOW = (
    "logging.handlers",  # the log file is opened once the outline has painted
    "asyncio",
    "sqlalchemy",
    "httpx",
    "ollama",
    "halext_desktop.app.core",
    "halext_desktop.routing.router",
    "halext_desktop.storage.db",
    "halext_desktop.app.cli_models",
    "halext_desktop.ui.main_window",
)


@pytest.mark.parametrize("argv", [[], ["gui"], ["--debug", "gui"]])
def test_the_window_outline_shows_before_the_core_and_the_commands_load(
    isolated_home: Path, argv: list[str]
) -> None:
    """``halext-desktop`` (or ``gui``): its outline is shown before asyncio, the database
    layer, the HTTP clients and the routes are imported (they load behind it)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-c", WINDOW_DRIVER, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "halext_desktop.ui.start_shell" in loaded
    early = sorted(m for m in NOT_BEFORE_THE_WINDOW if m in loaded)
    assert early == [], f"imported before the window showed: {early}"


READY_DRIVER = """
import json, os, sys
from PySide6.QtCore import QTimer
from halext_desktop.app import gui
original = gui.build_window
def build(core, loop_thread):
    window = original(core, loop_thread)
    def check():
        # Ready: the sidebar filled and the last chat's messages shown.
        if window.sidebar.visible_titles() and window.chat_view.model.rowCount():
            print(json.dumps(sorted(sys.modules)), flush=True)
            os._exit(0)
        QTimer.singleShot(20, check)
    QTimer.singleShot(0, check)
    return window
gui.build_window = build
from halext_desktop.app.cli import main
main(["gui"])
"""


def test_the_window_fills_its_sidebar_and_reopens_the_last_chat_without_sqlalchemy(
    isolated_home: Path, ollama_server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy (~150 ms) is for reports, export and the rarer queries: the window's
    start (the sidebar's first page, the last chat's messages) reads with plain SQL."""
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    _modules_of("ask", "--model", "ollama/qwen2.5:7b", "hello")  # a chat to reopen
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"}
    with contextlib.closing(sqlite3.connect(db_path())) as con:
        (cid,) = con.execute("SELECT id FROM conversations").fetchone()
    # The chat the window had open last time, which it reopens.
    (config_dir() / "window.ini").write_text(f"[main]\nconversation={cid}\n")
    result = subprocess.run(
        [sys.executable, "-c", READY_DRIVER],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "halext_desktop.ui.main_window" in loaded
    assert "sqlalchemy" not in loaded
