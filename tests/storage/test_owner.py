"""The database owner: one thread for every SQLite call, changes queued and batched, a lock
held by another program delaying writes (never reads, never a caller), the spool file,
exactly-once replay, damage, repair, crash recovery and owner-only files.

"Another program" is a second sqlite3 connection holding ``BEGIN IMMEDIATE`` (the write
lock), exactly what another process holds; a crashed process's reply is a row left
``streaming`` by a session whose lock file nobody holds any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.storage import threads
from halext_desktop.storage.conversations import ConversationStore, NotFoundError
from halext_desktop.storage.db import BUSY_TIMEOUT_MS, Database, DatabaseDamaged, Problem
from halext_desktop.storage.ops import EditMessage, NewMessage, NewUsage
from halext_desktop.storage.owner import BLOCKED, DAMAGED, OK, DbOwner, DbState
from halext_desktop.storage.recovery import INTERRUPTED_ERROR
from halext_desktop.storage.session import Session
from halext_desktop.storage.store import Storage, close_message
from halext_desktop.storage.usage import UsageLog
from tests.helpers.storage import on_owner


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    st = Storage(Database(tmp_path / "data" / "halext.db"))
    st.wait_open()
    yield st
    st.close()


@contextlib.contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program holding the database's write lock."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.close()


def states_of(owner: DbOwner) -> list[DbState]:
    seen: list[DbState] = []
    owner.add_listener(seen.append)
    return seen


def wait_state(owner: DbOwner, kind: str, timeout: float = 10) -> None:
    done = threading.Event()
    remove = owner.add_listener(lambda s: done.set() if s.kind == kind else None)
    try:
        if owner.state.kind != kind:
            assert done.wait(timeout), f"the database never became {kind}: {owner.state}"
    finally:
        remove()


def hold_owner(owner: DbOwner) -> threading.Event:
    """Keep the owner thread busy until the returned event is set (to queue up a batch)."""
    gate, busy = threading.Event(), threading.Event()

    def wait() -> None:
        busy.set()
        gate.wait(10)

    owner.control(wait)
    assert busy.wait(10)
    return gate


# ---- the thread rule ----------------------------------------------------------------------


def test_sqlite_refuses_the_gui_thread_and_any_event_loop(storage: Storage) -> None:
    store = ConversationStore(storage.db)
    assert threads.STRICT  # the whole suite runs strict (tests/conftest.py)
    threads.forbid_current_thread("the GUI thread")
    try:
        with pytest.raises(threads.WrongThreadError, match="the GUI thread"):
            store.list()
    finally:
        threads.allow_current_thread()

    async def on_a_loop() -> None:
        with pytest.raises(threads.WrongThreadError, match="asyncio event loop"):
            store.list()
        # The same read through the owner is fine from a loop: it waits without blocking.
        assert await storage.conversations.list() == []

    asyncio.run(on_a_loop())
    assert store.list() == []  # a plain thread (a test, a command's start) may


# ---- batching, merging, failures -------------------------------------------------------------


def test_changes_queued_together_are_written_in_one_transaction(storage: Storage) -> None:
    owner, chats = storage.owner, storage.conversations
    before = owner.stats["transactions"]
    gate = hold_owner(owner)
    conv, _ = chats.queue_conversation("Batch")
    rows = [chats.queue_message(conv.id, "user", f"m{i}") for i in range(20)]
    chats.set_default_model(conv.id, "ollama/qwen2.5:7b")
    gate.set()
    assert owner.flush(10)
    assert owner.stats["transactions"] == before + 1
    real = owner.resolve(conv.id)
    assert real > 0 and all(fut.result(5) > 0 for _, fut in rows)
    stored = on_owner(storage).conversations.messages(real)
    assert [m.content for m in stored] == [f"m{i}" for i in range(20)]


def test_a_bad_change_fails_alone_and_the_rest_commit(storage: Storage) -> None:
    gate = hold_owner(storage.owner)
    missing = storage.conversations.update_message(987654, content="nobody")
    conv, created = storage.conversations.queue_conversation("Still written")
    gate.set()
    with pytest.raises(NotFoundError):
        missing.result(10)
    assert created.result(10).title == "Still written"
    assert storage.owner.resolve(conv.id) == created.result().id


# ---- a lock held by another program ------------------------------------------------------------


def test_a_locked_database_delays_writes_never_reads_and_saves_them_when_free(
    storage: Storage,
) -> None:
    owner, chats = storage.owner, storage.conversations
    written = on_owner(storage).conversations.create("Before the lock")
    seen = states_of(owner)
    with write_lock_held(storage.db.path):
        conv, conv_fut = chats.queue_conversation("During the lock")
        user, _ = chats.queue_message(conv.id, "user", "kept while locked")
        reply, reply_fut = chats.queue_message(conv.id, "assistant", "", status="streaming")
        for part in ("par", "partial ", "partial reply"):
            chats.update_message(reply.id, content=part)
        # The caller is never held up: settled() says "waiting" as soon as it is refused.
        assert asyncio.run(owner.settled(reply_fut)) is False
        wait_state(owner, BLOCKED)
        assert owner.state.problem is Problem.BUSY and "locked by another program" in (
            owner.state.detail
        )
        # The later edits went into the waiting insert: one change waits for the reply.
        pending = owner.call(owner.pending_ops)
        assert len([op for op in pending if isinstance(op, NewMessage)]) == 2
        assert not any(isinstance(op, EditMessage) for op in pending)
        # Reads go on, and show what waits (the list, the messages, the history).
        listed = asyncio.run(chats.list())
        assert [c.title for c in listed] == ["During the lock", "Before the lock"]
        assert listed[0].id == conv.id < 0 and listed[1].id == written.id
        shown = asyncio.run(chats.messages(conv.id))
        assert [(m.role, m.content) for m in shown] == [
            ("user", "kept while locked"),
            ("assistant", "partial reply"),
        ]
        # ... and they are in this session's spool file, readable by the owner only.
        journal = storage.spool_dir / f"{storage.session.id}.json"
        assert journal.exists() and stat.S_IMODE(journal.stat().st_mode) == 0o600
        assert "partial reply" in journal.read_text(encoding="utf-8")
        assert not conv_fut.done()
    assert owner.flush(15)
    real = owner.resolve(conv.id)
    assert real > 0 and conv_fut.result().id == real
    assert owner.state.kind == OK and owner.state.detail.startswith("Everything waiting was saved")
    stored = on_owner(storage).conversations.messages(real)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "kept while locked"),
        ("assistant", "partial reply"),
    ]
    assert not journal.exists()
    assert [s.kind for s in seen][0] == BLOCKED and seen[-1].kind == OK


def test_a_lock_never_holds_up_a_read(storage: Storage) -> None:
    on_owner(storage).conversations.create("Readable")
    with write_lock_held(storage.db.path):
        storage.conversations.queue_conversation("Waiting")
        wait_state(storage.owner, BLOCKED)
        titles = [c.title for c in asyncio.run(storage.conversations.list())]
        assert titles == ["Waiting", "Readable"]
        assert storage.owner.state.waiting >= 1


def test_usage_rows_wait_like_everything_else_and_are_tied_to_their_reply(
    storage: Storage,
) -> None:
    chats = storage.conversations
    conv = asyncio.run(chats.create("Usage"))
    reply = asyncio.run(chats.add_message(conv.id, "assistant", "hi", status="streaming"))
    storage.replies.begin(conv.id, reply.id, cancel=_NoCancel())
    with write_lock_held(storage.db.path):
        row = UsageRecord("ollama/qwen2.5:7b", "/api/chat", conversation_id=conv.id)
        storage.usage.record(row)  # the router's sink: never waits, never raises
        wait_state(storage.owner, BLOCKED)
        assert row.id is None
    assert storage.owner.flush(15)
    assert row.id is not None
    (stored,) = on_owner(storage).usage.recent(5)
    assert stored.id == row.id and on_owner(storage).usage.has_row_for_message(reply.id)


class _NoCancel:
    def cancel(self) -> None:
        pass


# ---- closing while locked, the spool file, exactly once --------------------------------------


def test_closing_while_locked_spools_and_the_next_start_writes_it_exactly_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "halext.db"
    first = Storage(Database(path))
    first.wait_open()
    with write_lock_held(path):
        conv, _ = first.conversations.queue_conversation("Spooled")
        first.conversations.queue_message(conv.id, "user", "please keep me")
        first.usage.record(UsageRecord("ollama/x", "/api/chat", conversation_id=conv.id))
        report = first.close(timeout=0.3)
    assert report.spooled == 3 and report.lost == 0 and report.spool_path is not None
    spool = report.spool_path
    assert spool.exists() and stat.S_IMODE(spool.stat().st_mode) == 0o600
    message = close_message(report, path)
    assert message is not None and "locked by another program" in message and str(spool) in message
    copy = spool.read_bytes()

    second = Storage(Database(path))
    report2 = second.wait_open()
    assert report2.replayed == 3
    assert second.owner.flush(10)
    second.close()
    assert not spool.exists()

    # A crash between the commit and the removal of the file: the same batch again.
    spool.write_bytes(copy)
    third = Storage(Database(path))
    third.wait_open()
    assert third.owner.flush(10)
    store = on_owner(third).conversations
    (found,) = [c for c in store.list() if c.title == "Spooled"]
    assert [m.content for m in store.messages(found.id)] == ["please keep me"]
    (usage,) = on_owner(third).usage.recent(5)
    assert usage.conversation_id == found.id
    third.close()
    assert not spool.exists()


def test_a_live_sessions_spool_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "data" / "halext.db"
    alive = Storage(Database(path))
    alive.wait_open()
    with write_lock_held(path):
        alive.conversations.queue_conversation("Mine, still waiting")
        wait_state(alive.owner, BLOCKED)
        journal = alive.spool_dir / f"{alive.session.id}.json"
        assert journal.exists()
    other = Storage(Database(path))
    assert other.wait_open().replayed == 0  # it belongs to a process that still runs
    other.close()
    assert alive.owner.flush(10)
    alive.close()
    titles = [c.title for c in _read(path).list()]
    assert titles == ["Mine, still waiting"]


def test_an_unreadable_spool_file_is_set_aside_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "data" / "halext.db"
    spool_dir = path.parent / "spool"
    spool_dir.mkdir(parents=True)
    (spool_dir / "123-deadbeef.json").write_text("{not json", encoding="utf-8")
    st = Storage(Database(path))
    report = st.wait_open()
    st.close()
    assert [p.name for p in report.bad_spools] == ["123-deadbeef.json.bad"]
    assert (spool_dir / "123-deadbeef.json.bad").read_text() == "{not json"


def _read(path: Path) -> ConversationStore:
    db = Database(path).open()
    return ConversationStore(db)


# ---- crash recovery ------------------------------------------------------------------------


def _crashed_reply(path: Path, writer: str | None, content: str) -> tuple[int, int]:
    """A turn as a killed process leaves it: the user's message, the reply streaming."""
    db = Database(path).open()
    try:
        store = ConversationStore(db)
        conv = store.create("Crashed")
        store.add_message(conv.id, "user", "tell me a long story")
        reply = store.add_message(
            conv.id,
            "assistant",
            content,
            status="streaming",
            model_ref="ollama/qwen2.5:7b",
            requested_model="ollama/qwen2.5:7b",
            writer=writer,
            created_at=datetime.now(UTC) - timedelta(seconds=3),
        )
        store.edit_message(reply.id, meta_patch={"saved_at": datetime.now(UTC).isoformat()})
        return conv.id, reply.id
    finally:
        db.close()


def test_a_reply_left_streaming_by_a_dead_session_is_recovered_with_one_usage_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "halext.db"
    Database(path).open().close()
    dead = Session(path.parent / "run")
    dead_id = dead.id
    dead.close()  # the process is gone (kill -9 drops the lock just the same)
    cid, mid = _crashed_reply(path, dead_id, "Once upon a time")
    for _ in range(2):  # a second start recovers nothing twice
        st = Storage(Database(path))
        st.wait_open()
        assert st.owner.flush(10)
        st.close()
    db = Database(path).open()
    try:
        reply = ConversationStore(db).get_message(mid)
        assert reply is not None
        assert (reply.status, reply.content) == ("interrupted", "Once upon a time")
        (row,) = UsageLog(db).recent(5)
        assert row.status is UsageStatus.INTERRUPTED and row.error == INTERRUPTED_ERROR
        assert (row.conversation_id, row.model_identifier) == (cid, "ollama/qwen2.5:7b")
        assert row.response_tokens == len("Once upon a time") // 4 and row.latency_ms
        assert row.route == "ollama" and row.endpoint == "/api/chat"
        history = ConversationStore(db).history(cid)
        assert [m.content for m in history] == ["tell me a long story", "Once upon a time"]
    finally:
        db.close()


def test_lock_files_of_sessions_that_are_gone_are_swept_away(tmp_path: Path) -> None:
    from halext_desktop.storage.session import sweep

    run = tmp_path / "run"
    running = Session(run)
    gone = Session(run)
    (run / f"{gone.id}.lock").touch()
    gone._fh.close()  # type: ignore[union-attr]  # like kill -9: lock dropped, file left
    try:
        assert sweep(run, own=None) == 1
        assert sorted(p.name for p in run.iterdir()) == [f"{running.id}.lock"]
    finally:
        running.close()


def test_a_reply_of_a_session_still_running_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "data" / "halext.db"
    Database(path).open().close()
    running = Session(path.parent / "run")  # another window, still streaming
    try:
        _, mid = _crashed_reply(path, running.id, "still coming")
        st = Storage(Database(path))
        assert st.wait_open().recovered() == []
        st.close()
        assert _read(path).get_message(mid).status == "streaming"  # type: ignore[union-attr]
    finally:
        running.close()


def test_a_reply_that_already_has_its_usage_row_gets_no_second_one(tmp_path: Path) -> None:
    path = tmp_path / "data" / "halext.db"
    Database(path).open().close()
    cid, mid = _crashed_reply(path, None, "")
    db = Database(path).open()
    UsageLog(db).insert(
        UsageRecord("ollama/qwen2.5:7b", "/api/chat", conversation_id=cid), message_id=mid
    )
    db.close()
    st = Storage(Database(path))
    st.wait_open()
    assert st.owner.flush(10)
    st.close()
    db = Database(path).open()
    try:
        assert len(UsageLog(db).recent(5)) == 1
        assert ConversationStore(db).get_message(mid).status == "interrupted"  # type: ignore[union-attr]
    finally:
        db.close()


# ---- damage and repair -------------------------------------------------------------------------


def corrupt_fts(path: Path) -> None:
    """Overwrite the page of messages_fts's config: the next message insert fails with
    SQLite's 'vtable constructor failed' (SQLITE_CORRUPT), as a bad disk sector does."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'messages_fts_config'"
        ).fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(b"\xff" * size)


def test_damage_fails_the_turn_keeps_usage_rows_and_restore_brings_the_copy_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "halext.db"
    st = Storage(Database(path))
    st.wait_open()
    store = on_owner(st).conversations
    kept = store.create("In the good copy")
    store.add_message(kept.id, "user", "remember this")
    backup = st.owner.call(st.db.backup, "daily", verify=True)
    st.close()
    corrupt_fts(path)

    st = Storage(Database(path))
    st.wait_open()  # the header and the list are fine: the damage shows on a write
    user, fut = st.conversations.queue_message(kept.id, "user", "this cannot be stored")
    st.usage.record(UsageRecord("ollama/x", "/api/chat"))
    with pytest.raises(DatabaseDamaged) as info:
        fut.result(10)
    error = info.value
    assert "vtable constructor failed" in error.detail and error.newest_backup == backup
    assert "this cannot be stored" not in str(error)  # never the user's text
    wait_state(st.owner, DAMAGED)
    assert any(isinstance(op, NewUsage) for op in st.owner.call(st.owner.pending_ops))

    aside = st.restore_newest_backup().result(20)
    assert aside.exists() and aside.parent == path.parent  # moved aside, never deleted
    assert st.owner.flush(10)
    assert st.owner.state.kind == OK
    titles = [c.title for c in asyncio.run(st.conversations.list())]
    assert titles == ["In the good copy"]
    assert len(on_owner(st).usage.recent(5)) == 1  # the usage row waited for the restore
    st.close()


def test_start_fresh_moves_the_damaged_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "data" / "halext.db"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database at all " * 300)
    st = Storage(Database(path))
    with pytest.raises(DatabaseDamaged):
        st.wait_open()
    assert st.owner.state.kind == DAMAGED
    aside = st.start_fresh().result(20)
    assert aside.read_bytes().startswith(b"not a database at all")
    assert asyncio.run(st.conversations.list()) == []
    st.close()


# ---- owner-only files -----------------------------------------------------------------------


def test_every_file_and_folder_is_the_owners_alone_whatever_the_umask(
    isolated_home: Path,
) -> None:
    old = os.umask(0o022)
    try:
        st = Storage()
        st.wait_open()
        on_owner(st).conversations.create("private")
        st.owner.call(st.db.backup, "daily", verify=True)
        with write_lock_held(st.db.path):
            st.conversations.queue_conversation("spooled")
            report = st.close(timeout=0.2)
    finally:
        os.umask(old)
    data = isolated_home / "data"
    files = [
        data / "halext.db",
        *data.glob("halext.db-*"),
        *(data / "backups").glob("*.db"),
        *(data / "spool").glob("*.json"),
    ]
    assert report.spool_path in files
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    for folder in (data, data / "backups", data / "spool", data / "run"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_an_existing_wide_open_database_is_made_private(isolated_home: Path) -> None:
    db = Database().open()
    db.close()
    db.path.chmod(0o644)
    Database().open().close()
    assert stat.S_IMODE(db.path.stat().st_mode) == 0o600


_OPEN_AS_SOMEONE_ELSE = """
import os, sys
from pathlib import Path
from halext_desktop.storage.db import Database, DatabaseError
if os.geteuid() == 0:  # root may write anything: open it as an ordinary user instead
    os.setgid(65534)
    os.setuid(65534)
try:
    Database(Path(sys.argv[1]), backups=Path(sys.argv[2])).open()
except DatabaseError as exc:
    print(type(exc).__name__, exc)
else:
    print("opened")
"""


def test_a_read_only_database_says_so_and_does_not_blame_the_backups_folder() -> None:
    import shutil
    import subprocess
    import sys
    import tempfile

    # Outside pytest's own temporary folders (0700, root's): the other user must reach it.
    folder = Path(tempfile.mkdtemp(prefix="halext-ro-"))
    try:
        folder.chmod(0o755)
        path = folder / "halext.db"
        Database(path, backups=folder / "backups").open().close()
        path.chmod(0o444)
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(
            [sys.executable, "-c", _OPEN_AS_SOMEONE_ELSE, str(path), str(folder / "backups")],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert out.startswith("DatabaseReadOnly") and "cannot be written" in out, out
    assert "backups" not in out and "chmod" in out


def test_the_busy_timeout_is_short_because_the_owner_retries(storage: Storage) -> None:
    with storage.db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
    assert BUSY_TIMEOUT_MS <= 500


def _json_ops(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["ops"]
