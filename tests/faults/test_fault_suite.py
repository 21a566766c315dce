"""Every fault kind, end to end: the CLI (in process, or as a real process where the fault
is a process's fate) and the window, against the protocol test servers. Afterwards the
database must hold the user's message, the reply as far as it came, and exactly one usage
row per request; and the user must have been told once, in one clear line (no traceback,
no SQL, never their own words back in an error).

Timeouts are the app's own, shortened where a test would otherwise wait two minutes for a
black hole or a stalled server: the backends' timeout constants are patched, nothing else.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from halext_desktop.app.cli import main
from halext_desktop.routing.types import UsageRecord
from halext_desktop.storage import db as db_module
from halext_desktop.storage.conversations import ConversationStore, MessageRow
from halext_desktop.storage.db import Database
from halext_desktop.storage.paths import db_path
from halext_desktop.storage.settings import Settings
from halext_desktop.storage.usage import UsageLog
from tests.helpers.storage import LockHolder
from tests.servers.blackhole import Blackhole
from tests.servers.halext_server import NGINX_502, HalextServer
from tests.servers.ollama_server import OllamaServer

ROOT = Path(__file__).resolve().parents[2]
# Long enough for a reply of many tokens (the Ollama test server echoes the prompt).
LONG = "please tell me a long story about " + " ".join(f"word{i}" for i in range(40))
OLLAMA_REF = "ollama/qwen2.5:7b"
HALEXT_REF = "halext/ollama:llama3.1:8b"
# Words that would mean the user saw our internals instead of a sentence.
INTERNALS = ("Traceback", "sqlalchemy", "SELECT ", "INSERT ", "UPDATE ", "[SQL", 'File "')


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, halext_server: HalextServer, ollama_server: OllamaServer
) -> None:
    monkeypatch.setenv("HALEXT_URL", halext_server.url)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)


@pytest.fixture
def halext_user(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed in for each command from the environment (re-login on a 401 possible)."""
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def process(*argv: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        env={**os.environ, **(env_extra or {}), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(p: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    try:
        return p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def one_clear_line(err: str) -> str:
    """The one ``halext-desktop:`` line a command printed about what went wrong."""
    lines = [line for line in err.splitlines() if line.startswith("halext-desktop:")]
    assert len(lines) == 1, f"expected one clear line, got:\n{err}"
    for word in INTERNALS:
        assert word not in err, f"{word!r} reached the user:\n{err}"
    assert len(lines[0]) < 600
    return lines[0]


@dataclass
class Turn:
    user: MessageRow
    reply: MessageRow | None
    usage: list[UsageRecord]


def stored_turns() -> list[Turn]:
    """Every (user message, reply, its usage rows) in the database, oldest first. Read on
    a thread of its own: in a window test the test's thread is the GUI thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_stored_turns).result(30)


def _stored_turns() -> list[Turn]:
    with Database() as db:
        store, usage = ConversationStore(db), UsageLog(db)
        rows = usage.recent(None)
        turns = []
        for conv in reversed(store.list()):
            messages = store.messages(conv.id)
            for i, m in enumerate(messages):
                if m.role != "user":
                    continue
                reply = messages[i + 1] if i + 1 < len(messages) else None
                mine = [r for r in rows if r.conversation_id == conv.id]
                turns.append(Turn(m, reply, mine))
        return turns


def the_turn(prompt: str) -> Turn:
    (turn,) = [t for t in stored_turns() if t.user.content == prompt]
    return turn


def nothing_lost(
    prompt: str,
    *,
    status: str,
    text: str | None = None,
    prefix_of: str | None = None,
    usage: list[str],
) -> Turn:
    """The user's message is stored, the reply has ``status`` and the text that arrived,
    and the request has exactly its usage rows (statuses, in any order)."""
    turn = the_turn(prompt)
    assert turn.user.status == "ok"
    assert turn.reply is not None and turn.reply.role == "assistant"
    assert turn.reply.status == status, turn.reply
    if text is not None:
        assert turn.reply.content == text
    if prefix_of is not None:
        assert turn.reply.content and prefix_of.startswith(turn.reply.content), turn.reply.content
    assert sorted(r.status.value for r in turn.usage) == sorted(usage)
    return turn


def wait_until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Another program holding the database's write lock."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.close()


def short_timeouts(monkeypatch: pytest.MonkeyPatch, seconds: float = 1.0) -> None:
    from halext_desktop.routing.backends import halext, ollama_backend

    t = httpx.Timeout(seconds)
    monkeypatch.setattr(ollama_backend, "CHAT_TIMEOUT", t)
    monkeypatch.setattr(halext, "STREAM_TIMEOUT", t)
    monkeypatch.setattr(halext, "DEFAULT_TIMEOUT", t)


def ollama_reply(server: OllamaServer, prompt: str) -> str:
    return server.expected_reply("qwen2.5:7b", [{"role": "user", "content": prompt}])


# ---- the network misbehaves --------------------------------------------------------------


@pytest.mark.fault("connection refused")
def test_connection_refused(env: None, capsys: Any, ollama_server: OllamaServer) -> None:
    ollama_server.stop()
    code, out, err = cli(capsys, "ask", "-m", OLLAMA_REF, "are you there?")
    assert code == 1 and out == ""
    line = one_clear_line(err)
    assert "Connection refused" in line and "ollama serve" in line
    nothing_lost("are you there?", status="error", text="", usage=["error"])


@pytest.mark.fault("blackhole")
def test_blackhole(env: None, capsys: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    short_timeouts(monkeypatch)
    with Blackhole() as hole:
        monkeypatch.setenv("OLLAMA_HOST", hole.url)
        code, out, err = cli(capsys, "ask", "-m", OLLAMA_REF, "hello, anyone?")
        assert hole.connections >= 1
    assert code == 1 and out == ""
    line = one_clear_line(err)
    assert "within 1 s" in line or "Timed out" in line, line
    nothing_lost("hello, anyone?", status="error", text="", usage=["error"])


@pytest.mark.fault("drop mid-stream")
def test_drop_mid_stream_halext(
    halext_user: None, capsys: Any, halext_server: HalextServer
) -> None:
    halext_server.stream_script(["first ", "second ", "third"], drop_after=2)
    code, out, err = cli(capsys, "ask", "-m", HALEXT_REF, "keep what came")
    assert code == 1 and out == "first second \n"
    line = one_clear_line(err)
    assert "cut off" in line and "partial reply kept" in line
    nothing_lost("keep what came", status="error", text="first second ", usage=["error"])


@pytest.mark.fault("drop mid-stream")
def test_drop_mid_stream_ollama(env: None, capsys: Any, ollama_server: OllamaServer) -> None:
    ollama_server.drop_after(2)
    code, out, err = cli(capsys, "ask", "-m", OLLAMA_REF, "tell me more")
    assert code == 1 and out.strip()
    assert "partial reply kept" in one_clear_line(err)
    reply = ollama_reply(ollama_server, "tell me more")
    turn = nothing_lost("tell me more", status="error", prefix_of=reply, usage=["error"])
    assert out == turn.reply.content + "\n"  # type: ignore[union-attr]


@pytest.mark.fault("401 mid-session")
def test_401_mid_session(env: None, capsys: Any, halext_server: HalextServer) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO("dev123\n"))
        assert cli(capsys, "login", "--username", "dev", "--password-stdin")[0] == 0
    assert cli(capsys, "ask", "-m", HALEXT_REF, "first, signed in")[0] == 0
    halext_server.expire_all_tokens()  # the 30-minute token ran out mid-session
    code, out, err = cli(capsys, "ask", "-m", HALEXT_REF, "second, after it expired")
    assert code == 1 and out == ""
    line = one_clear_line(err)
    assert "session expired" in line and "Sign in again" in line
    nothing_lost("first, signed in", status="ok", usage=["ok"])
    nothing_lost("second, after it expired", status="error", text="", usage=["error"])


@pytest.mark.fault("plain-text 5xx")
def test_plain_text_5xx(halext_user: None, capsys: Any, halext_server: HalextServer) -> None:
    halext_server.fail_next("/ai/chat/stream")  # "Internal Server Error", text/plain
    code, out, err = cli(capsys, "ask", "-m", HALEXT_REF, "please work")
    assert code == 1 and out == ""
    assert "500" in one_clear_line(err)
    nothing_lost("please work", status="error", text="", usage=["error"])


@pytest.mark.fault("HTML 5xx")
def test_html_5xx(halext_user: None, capsys: Any, halext_server: HalextServer) -> None:
    halext_server.fail_next("/ai/chat/stream", 502, NGINX_502, "text/html")
    code, out, err = cli(capsys, "ask", "-m", HALEXT_REF, "through the proxy")
    assert code == 1 and out == ""
    line = one_clear_line(err)
    assert "502" in line and "<html" not in err and "nginx/1.24" not in err
    nothing_lost("through the proxy", status="error", text="", usage=["error"])


@pytest.mark.fault("malformed frames")
def test_malformed_halext_frames(
    halext_user: None, capsys: Any, halext_server: HalextServer
) -> None:
    halext_server.fail_next(
        "/ai/chat/stream", 200, 'event: message\n{"text": "hi"}\n\n', "text/event-stream"
    )
    code, out, err = cli(capsys, "ask", "-m", HALEXT_REF, "frame me")
    assert code == 1 and out == ""
    assert "not in the expected `data: ` format" in one_clear_line(err)
    nothing_lost("frame me", status="error", text="", usage=["error"])


@pytest.mark.fault("malformed frames")
def test_malformed_ollama_line_mid_stream(
    env: None, capsys: Any, ollama_server: OllamaServer
) -> None:
    ollama_server.raw_line_after(2, "{this is not json\n")
    code, out, err = cli(capsys, "ask", "-m", OLLAMA_REF, "and then garbage")
    assert code == 1
    line = one_clear_line(err)
    assert "partial reply kept" in line
    reply = ollama_reply(ollama_server, "and then garbage")
    nothing_lost("and then garbage", status="error", prefix_of=reply, usage=["error"])


@pytest.mark.fault("stall")
def test_halext_stall_keeps_the_chunk_that_came_before_it(
    halext_user: None, capsys: Any, monkeypatch: pytest.MonkeyPatch, halext_server: HalextServer
) -> None:
    """The first chunk arrives, then the server says nothing for longer than the read
    timeout: the chunk is the partial reply (it used to be held back, waiting for the next
    separator, and lost with the timeout)."""
    short_timeouts(monkeypatch)
    halext_server.stream_script(["a whole first chunk ", "never arrives"], delay_s=3.0)
    code, out, err = cli(capsys, "ask", "-m", HALEXT_REF, "then silence")
    assert code == 1 and out == "a whole first chunk \n"
    line = one_clear_line(err)
    assert "stopped sending the reply within 1 s" in line and "partial reply kept" in line
    nothing_lost("then silence", status="error", text="a whole first chunk ", usage=["error"])


@pytest.mark.fault("stall")
def test_ollama_stall(
    env: None, capsys: Any, monkeypatch: pytest.MonkeyPatch, ollama_server: OllamaServer
) -> None:
    short_timeouts(monkeypatch)
    ollama_server.set_token_delay(3.0)
    code, out, err = cli(capsys, "ask", "-m", OLLAMA_REF, "slowly now")
    assert code == 1
    assert "partial reply kept" in one_clear_line(err)
    reply = ollama_reply(ollama_server, "slowly now")
    turn = nothing_lost("slowly now", status="error", prefix_of=reply, usage=["error"])
    assert out == turn.reply.content + "\n"  # type: ignore[union-attr]


# ---- the database misbehaves -------------------------------------------------------------


@pytest.mark.fault("lock during a stream")
def test_lock_taken_mid_stream_and_held_past_the_end(
    env: None, capsys: Any, ollama_server: OllamaServer
) -> None:
    """Another program takes the write lock while the reply streams and keeps it: the reply
    still streams at the server's pace, and everything is kept for the next start."""
    assert cli(capsys, "ask", "-m", OLLAMA_REF, "warm up")[0] == 0
    ollama_server.set_token_delay(0.15)
    p = process("halext_desktop.app.cli", "ask", "-m", OLLAMA_REF, "lock me out")
    try:
        assert ollama_server.wait_for(
            lambda: any(r.lines_sent >= 2 for r in ollama_server.requests_to("/api/chat")[1:]),
            30,
        )
        with write_lock(db_path()):
            out, err = finish(p)
    finally:
        finish(p)
    assert p.returncode == 0, err
    assert out == ollama_reply(ollama_server, "lock me out") + "\n"
    line = one_clear_line(err)
    assert "locked by another program" in line and "spool" in line and "next time" in line
    assert cli(capsys, "usage", "--json")[0] == 0  # the next start writes what was kept
    turn = nothing_lost(
        "lock me out", status="ok", text=ollama_reply(ollama_server, "lock me out"), usage=["ok"]
    )
    with Database() as db:
        assert UsageLog(db).has_row_for_message(turn.reply.id)  # type: ignore[union-attr]


@pytest.mark.fault("lock during a stream")
def test_lock_taken_and_released_mid_stream_lands_without_a_word(
    env: None, capsys: Any, ollama_server: OllamaServer
) -> None:
    assert cli(capsys, "ask", "-m", OLLAMA_REF, "warm up")[0] == 0
    ollama_server.set_token_delay(0.15)
    p = process("halext_desktop.app.cli", "ask", "-m", OLLAMA_REF, "brief lock")
    try:
        assert ollama_server.wait_for(
            lambda: any(r.lines_sent >= 1 for r in ollama_server.requests_to("/api/chat")[1:]),
            30,
        )
        with write_lock(db_path()):
            assert ollama_server.wait_for(
                lambda: ollama_server.requests_to("/api/chat")[-1].lines_sent >= 4, 30
            )
        out, err = finish(p)
    finally:
        finish(p)
    assert p.returncode == 0, err
    assert "halext-desktop:" not in err  # nothing to tell: it all landed
    nothing_lost(
        "brief lock", status="ok", text=ollama_reply(ollama_server, "brief lock"), usage=["ok"]
    )


@pytest.mark.fault("corrupt page")
def test_corrupt_page(env: None, capsys: Any, ollama_server: OllamaServer) -> None:
    from tests.storage.test_owner import corrupt_fts

    assert cli(capsys, "ask", "-m", OLLAMA_REF, "stored before")[0] == 0
    with Database() as db:
        backup = db.backup("daily", verify=True)
    corrupt_fts(db_path())
    sent = len(ollama_server.requests_to("/api/chat"))
    code, out, err = cli(capsys, "ask", "-m", OLLAMA_REF, "my words stay mine")
    assert code == 1 and out == ""
    line = one_clear_line(err)
    assert "is damaged" in line and str(backup) in line and "was not sent" in line
    assert "my words stay mine" not in line
    assert len(ollama_server.requests_to("/api/chat")) == sent  # nothing went out
    # What was stored before is in the good copy.
    with contextlib.closing(sqlite3.connect(backup)) as conn:
        assert conn.execute("SELECT content FROM messages WHERE role='user'").fetchall() == [
            ("stored before",)
        ]


@pytest.mark.fault("disk full")
def test_disk_full_at_the_final_save(
    env: None, capsys: Any, monkeypatch: pytest.MonkeyPatch, ollama_server: OllamaServer
) -> None:
    """The database cannot grow (SQLite's SQLITE_FULL, simulated with max_page_count): the
    reply is shown whole, its final save waits and is kept in the spool file, and the next
    start — with room again — writes it."""
    assert cli(capsys, "ask", "-m", OLLAMA_REF, "warm up")[0] == 0
    big = "lorem ipsum dolor sit amet " * 4000  # ~108 KB: needs new pages
    ollama_server.queue_reply(big)
    real = db_module._pragmas

    def no_room(busy_timeout_ms: int) -> Any:
        inner = real(busy_timeout_ms)

        def on_connect(conn: sqlite3.Connection, record: Any) -> None:
            inner(conn, record)
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            conn.execute(f"PRAGMA max_page_count = {pages}")

        return on_connect

    with monkeypatch.context() as mp:
        mp.setattr(db_module, "_pragmas", no_room)
        code, out, err = cli(capsys, "ask", "-m", OLLAMA_REF, "write a lot")
    assert code == 0 and out == big + "\n"
    line = one_clear_line(err)
    assert "disk holding" in line and "is full" in line and "kept in" in line
    assert cli(capsys, "usage", "--json")[0] == 0  # room again: written now
    nothing_lost("write a lot", status="ok", text=big, usage=["ok"])


@pytest.mark.fault("reply past the size limit")
def test_reply_past_the_size_limit(
    halext_user: None, capsys: Any, halext_server: HalextServer
) -> None:
    assert cli(capsys, "config", "set", "max_reply_mb", "1")[0] == 0
    chunk = "x" * (256 * 1024)
    halext_server.stream_script([chunk] * 8)  # 2 MB, one unterminated-looking chunk at a time
    code, out, err = cli(capsys, "ask", "-m", HALEXT_REF, "say everything")
    assert code == 1
    assert len(out.rstrip("\n")) == 1024 * 1024
    assert "passed the 1 MB limit" in one_clear_line(err)
    turn = nothing_lost("say everything", status="error", usage=["error"])
    assert turn.reply is not None and turn.reply.content == "x" * (1024 * 1024)


# ---- the process dies, or is told to go -------------------------------------------------


def _streaming(server: OllamaServer, lines: int) -> Callable[[], bool]:
    return lambda: any(r.lines_sent >= lines for r in server.requests_to("/api/chat"))


@pytest.mark.fault("kill -9 mid-stream and restart")
def test_kill_9_mid_stream_then_restart(
    env: None, capsys: Any, ollama_server: OllamaServer
) -> None:
    ollama_server.set_token_delay(0.2)
    p = process("halext_desktop.app.cli", "ask", "-m", OLLAMA_REF, LONG)
    try:
        # Long enough that the partial reply was saved (at least once a second).
        assert ollama_server.wait_for(_streaming(ollama_server, 8), 30)
        p.kill()  # SIGKILL: no handler, no flush, nothing
    finally:
        finish(p)
    code, _, err = cli(capsys, "usage", "--json")  # the next start recovers the reply
    assert code == 0 and "halext-desktop:" not in err
    reply = ollama_reply(ollama_server, LONG)
    nothing_lost(LONG, status="interrupted", prefix_of=reply, usage=["interrupted"])


@pytest.mark.fault("kill -9 mid-stream and restart")
def test_kill_9_while_the_database_is_locked_then_restart(
    env: None, capsys: Any, ollama_server: OllamaServer
) -> None:
    """Even the rows that were only waiting (another program held the lock) survive kill -9:
    they are in the spool file."""
    assert cli(capsys, "ask", "-m", OLLAMA_REF, "warm up")[0] == 0
    ollama_server.set_token_delay(0.2)
    with write_lock(db_path()):
        p = process("halext_desktop.app.cli", "ask", "-m", OLLAMA_REF, "locked and killed " + LONG)
        try:
            assert ollama_server.wait_for(
                lambda: any(r.lines_sent >= 12 for r in ollama_server.requests_to("/api/chat")[1:]),
                30,
            )
            p.kill()
        finally:
            finish(p)
    assert cli(capsys, "usage", "--json")[0] == 0
    reply = ollama_reply(ollama_server, "locked and killed " + LONG)
    nothing_lost(
        "locked and killed " + LONG, status="interrupted", prefix_of=reply, usage=["interrupted"]
    )


@pytest.mark.fault("kill -9 mid-stream and restart")
def test_kill_9_the_window_mid_reply_then_restart(
    env: None, capsys: Any, ollama_server: OllamaServer
) -> None:
    Settings.load().set("default_model", OLLAMA_REF)
    ollama_server.set_token_delay(0.2)
    p = process("tests.helpers.window_child", "a story for the window " + LONG)
    try:
        assert ollama_server.wait_for(_streaming(ollama_server, 8), 60)
        p.kill()
    finally:
        finish(p)
    assert cli(capsys, "usage", "--json")[0] == 0
    reply = ollama_reply(ollama_server, "a story for the window " + LONG)
    nothing_lost(
        "a story for the window " + LONG,
        status="interrupted",
        prefix_of=reply,
        usage=["interrupted"],
    )


@pytest.mark.fault("SIGTERM / SIGHUP mid-stream")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_to_the_window_mid_reply(
    env: None, capsys: Any, ollama_server: OllamaServer, signame: str
) -> None:
    Settings.load().set("default_model", OLLAMA_REF)
    ollama_server.set_token_delay(0.2)
    p = process("tests.helpers.window_child", "a reply to interrupt " + LONG)
    try:
        assert ollama_server.wait_for(_streaming(ollama_server, 3), 60)
        p.send_signal(getattr(signal, signame))
        out, err = finish(p)
    finally:
        finish(p)
    assert p.returncode == 0, err
    assert "sent" in out and "Traceback" not in err
    reply = ollama_reply(ollama_server, "a reply to interrupt " + LONG)
    nothing_lost(
        "a reply to interrupt " + LONG, status="interrupted", prefix_of=reply, usage=["interrupted"]
    )
    ollama_server.wait_closed_early()  # the window closed the stream on its way out


@pytest.mark.fault("SIGTERM / SIGHUP mid-stream")
def test_sigterm_to_the_cli_mid_reply(env: None, ollama_server: OllamaServer) -> None:
    ollama_server.set_token_delay(0.2)
    p = process("halext_desktop.app.cli", "ask", "-m", OLLAMA_REF, "cut me short " + LONG)
    try:
        assert ollama_server.wait_for(_streaming(ollama_server, 3), 30)
        p.send_signal(signal.SIGTERM)
        out, err = finish(p)
    finally:
        finish(p)
    assert p.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in one_clear_line(err)
    turn = nothing_lost(
        "cut me short " + LONG,
        status="interrupted",
        prefix_of=ollama_reply(ollama_server, "cut me short " + LONG),
        usage=["interrupted"],
    )
    assert out.rstrip("\n") == turn.reply.content  # type: ignore[union-attr]


@pytest.mark.fault("four concurrent streams into one database")
def test_four_concurrent_streams_into_one_new_database(ollama_server: OllamaServer) -> None:
    """Four commands start together on a database that does not exist yet (a concurrent
    first start) and stream at once."""
    ollama_server.set_token_delay(0.05)
    extra = {"OLLAMA_HOST": ollama_server.url, "HALEXT_URL": ""}
    procs = [
        process("halext_desktop.app.cli", "ask", "-m", OLLAMA_REF, f"stream {i}", env_extra=extra)
        for i in range(4)
    ]
    results = [finish(p) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "halext-desktop:" not in err
    for i in range(4):
        prompt = f"stream {i}"
        turn = nothing_lost(
            prompt, status="ok", text=ollama_reply(ollama_server, prompt), usage=["ok"]
        )
        assert turn.usage[0].id is not None
    assert len(stored_turns()) == 4


# ---- the window --------------------------------------------------------------------------


@pytest.fixture
def window(qtbot: Any, make_core: Any) -> Iterator[Any]:
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread

    core = make_core(halext_url="", default_model=OLLAMA_REF)
    lt = LoopThread().start()
    win: Any = build_window(core, lt)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win._listing is not None and bool(win.picker.current()), timeout=10_000)
    yield win
    win.close()
    lt.run(core.aclose(), timeout=5)
    lt.stop()
    core.close()


@pytest.fixture
def make_core(ollama_server: OllamaServer) -> Iterator[Callable[..., Any]]:
    from halext_desktop.app.core import Core

    made: list[Any] = []

    def factory(**overrides: Any) -> Any:
        settings = Settings.load()
        settings.set("ollama_hosts", [{"name": "local", "url": ollama_server.url}])
        for key, value in overrides.items():
            settings.set(key, value)
        core = Core(settings=settings)
        made.append(core)
        return core

    yield factory
    for core in made:
        core.close()


@pytest.mark.fault("lock during a stream")
def test_the_window_streams_through_a_lock_and_says_when_all_is_saved(
    qtbot: Any, window: Any, ollama_server: OllamaServer
) -> None:
    ollama_server.set_token_delay(0.1)
    path = window._svc.storage.db.path
    with qtbot.waitSignal(window.controller.sig_streaming, timeout=10_000):
        window.composer.set_text("through the lock")
        window._on_send("through the lock")
    qtbot.waitUntil(lambda: window.chat_view.is_streaming(), timeout=10_000)
    holder = LockHolder(path)  # another process takes the write lock mid-reply
    qtbot.waitUntil(lambda: not window.controller.streaming, timeout=20_000)
    # The reply came in full; the database note says changes wait and nothing is lost.
    reply = window.chat_view.model.item(window.chat_view.model.rowCount() - 1)
    assert reply.content == ollama_reply(ollama_server, "through the lock")
    qtbot.waitUntil(
        lambda: "locked by another program" in window.database_state.text(), timeout=10_000
    )
    assert "nothing is lost" in window.database_state.text()
    holder.release()
    qtbot.waitUntil(
        lambda: "Everything waiting was saved" in window.database_state.text(), timeout=20_000
    )
    nothing_lost("through the lock", status="ok", text=reply.content, usage=["ok"])


@pytest.mark.fault("corrupt page")
def test_the_window_offers_a_restore_and_keeps_the_unsent_text(
    qtbot: Any, make_core: Any, ollama_server: OllamaServer
) -> None:
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.ui.main_window import MainWindow
    from tests.storage.test_owner import corrupt_fts

    core = make_core(halext_url="", default_model=OLLAMA_REF)
    core.wait_open()
    store = core.storage.owner
    cid = store.call(store.conversations.create, "Kept in the copy").id
    store.call(store.conversations.add_message, cid, "user", "an old question")
    store.call(core.db.backup, "daily", verify=True)
    core.close()
    corrupt_fts(db_path())

    core = make_core(halext_url="", default_model=OLLAMA_REF)
    lt = LoopThread().start()
    win = build_window(core, lt)
    assert isinstance(win, MainWindow)
    qtbot.addWidget(win)
    win.show()
    try:
        qtbot.waitUntil(lambda: bool(win.picker.current()), timeout=10_000)
        win.composer.set_text("do not lose this")
        win._on_send("do not lose this")
        qtbot.waitUntil(lambda: win.repair.dialog is not None, timeout=10_000)
        # The dialog may come first (the owner reports the damage as it finds it); the
        # turn's own failure, which words the banner, follows through the loop thread.
        qtbot.waitUntil(lambda: bool(win.chat_view.banner.text), timeout=10_000)
        assert win.composer.text() == "do not lose this"
        banner = win.chat_view.banner.text
        assert "is damaged" in banner and "not sent" in banner and "INSERT" not in banner
        assert "do not lose this" not in banner
        assert win.repair.restore_button is not None
        with qtbot.waitSignal(win.repair.sig_repaired, timeout=20_000):
            win.repair.restore_button.click()
        qtbot.waitUntil(
            lambda: win.sidebar.visible_titles() == ["Kept in the copy"], timeout=10_000
        )
        assert win.composer.text() == "do not lose this"
        assert list(db_path().parent.glob("halext.db.damaged-*"))  # moved aside, not deleted
        assert len(ollama_server.requests_to("/api/chat")) == 0
    finally:
        win.close()
        lt.run(core.aclose(), timeout=5)
        lt.stop()
