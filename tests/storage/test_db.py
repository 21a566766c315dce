"""Database: migrations from empty, backups before upgrades, WAL, threads, clear errors."""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.db import (
    BUSY_TIMEOUT_MS,
    KEEP_BACKUPS,
    MIGRATIONS_DIR,
    Database,
    DatabaseDamaged,
    DatabaseError,
    alembic_config,
    head_revision,
    schema_head,
)
from halext_desktop.storage.models import metadata
from halext_desktop.storage.paths import backups_dir, db_path

FTS_NAMES = ("messages_fts", "conversations_fts")


def revision_of(path: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def make_old_database(path: Path, revision: str) -> None:
    """A database as an older release left it: migrated only up to ``revision``, with data."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
            conn.execute(
                text(
                    "INSERT INTO conversations (id, title, created_at, updated_at) "
                    "VALUES (7, 'Old chat', '2024-01-01 10:00:00.000000', "
                    "'2024-01-01 10:00:00.000000')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO messages (conversation_id, role, content, status, meta, "
                    "created_at) VALUES (7, 'user', 'remember the zebra crossing', 'ok', '{}', "
                    "'2024-01-01 10:00:00.000000')"
                )
            )
    finally:
        engine.dispose()


def test_open_from_empty_creates_schema_at_head(isolated_home: Path) -> None:
    with Database() as db:
        assert db.path == db_path() == isolated_home / "data" / "halext.db"
        with db.read() as conn:
            tables = {
                r[0]
                for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")
            }
            indexes = {
                r[0]
                for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='index'")
            }
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
        assert {"conversations", "messages", "ai_usage_logs", "alembic_version"} <= tables
        assert {
            "ix_messages_conversation_id_id",
            "ix_ai_usage_logs_created_at",
            "ix_ai_usage_logs_model_identifier",
            "ix_ai_usage_logs_conversation_id",
            "ix_ai_usage_logs_created_model_status",
        } <= indexes
        assert db.has_fts is True and set(FTS_NAMES) <= tables
    assert revision_of(db_path()) == head_revision()
    assert list(backups_dir().iterdir()) == []  # nothing to back up in a new database


def test_usage_table_has_the_halext_columns() -> None:
    with Database() as db, db.read() as conn:
        cols = {r[1]: r for r in conn.exec_driver_sql("PRAGMA table_info(ai_usage_logs)")}
    server = [
        "id",
        "user_id",
        "conversation_id",
        "model_identifier",
        "endpoint",
        "prompt_tokens",
        "response_tokens",
        "total_tokens",
        "latency_ms",
        "created_at",
    ]
    assert list(cols)[: len(server)] == server
    assert cols["model_identifier"][3] == 1 and cols["endpoint"][3] == 1  # NOT NULL
    assert cols["total_tokens"][4] == "'0'"
    extras = {"route", "requested_model", "status", "error", "ttft_ms", "tokens_exact"}
    assert extras <= set(cols)


def test_models_match_the_migrations() -> None:
    """The ORM classes and the migrated schema must not drift apart."""

    def ours(name: str | None, type_: str, parent_names: object) -> bool:
        return not (name or "").startswith(FTS_NAMES) and name != "sqlite_sequence"

    with Database() as db, db.read() as conn:
        ctx = MigrationContext.configure(conn.sa, opts={"include_name": ours})
        diffs = compare_metadata(ctx, metadata)
    assert diffs == []


def test_backup_is_made_before_an_upgrade(isolated_home: Path) -> None:
    path = db_path()
    make_old_database(path, "0001")
    with Database() as db:
        assert db.has_fts is True
        # The upgrade indexed what was already there.
        found = ConversationStore(db).search("zebra")
        assert [c.id for c, _ in found] == [7]
    backups = sorted(backups_dir().glob("halext-*-0001.db"))
    assert len(backups) == 1
    assert revision_of(backups[0]) == "0001"
    with contextlib.closing(sqlite3.connect(backups[0])) as conn:
        assert conn.execute("SELECT title FROM conversations").fetchall() == [("Old chat",)]
        assert (
            conn.execute("SELECT count(*) FROM sqlite_master WHERE name='messages_fts'").fetchone()[
                0
            ]
            == 0
        )
    assert revision_of(path) == head_revision()
    # Opening again at head makes no further backup.
    Database().open().close()
    assert len(list(backups_dir().iterdir())) == 1


def test_unversioned_database_with_tables_is_backed_up_as_base(isolated_home: Path) -> None:
    path = db_path()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
        conn.commit()
    Database().open().close()
    backups = list(backups_dir().glob("halext-*-base.db"))
    assert len(backups) == 1
    with contextlib.closing(sqlite3.connect(backups[0])) as conn:
        assert conn.execute("SELECT x FROM notes").fetchall() == [("keep me",)]


def test_only_the_newest_backups_are_kept() -> None:
    with Database() as db:
        made = [db.backup(label=f"manual{i}") for i in range(KEEP_BACKUPS + 2)]
        kept = db.backups()
    assert kept == made[-KEEP_BACKUPS:]
    assert all(not p.exists() for p in made[:2])


def test_corrupt_file_gives_a_clear_error(isolated_home: Path) -> None:
    path = db_path()
    path.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(DatabaseDamaged) as info:
        Database().open()
    message = str(info.value)
    assert str(path) in message and "damaged" in message
    # The backups folder is empty: the message must not send the user there.
    assert str(backups_dir()) not in message and "no backup copy" in message
    assert path.read_bytes().startswith(b"this is not a database")  # left untouched


def test_a_damaged_database_names_its_newest_good_copy(isolated_home: Path) -> None:
    with Database() as db:
        ConversationStore(db).create("kept")
        older = db.backup("daily", verify=True)
        newest = db.backup("daily", verify=True)
    assert older != newest
    db_path().write_bytes(b"garbage " * 1000)
    for suffix in ("-wal", "-shm"):
        db_path().with_name(db_path().name + suffix).unlink(missing_ok=True)
    with pytest.raises(DatabaseDamaged) as info:
        Database().open()
    assert info.value.newest_backup == newest
    assert str(newest) in str(info.value)


def test_newer_schema_is_refused(isolated_home: Path) -> None:
    Database().open().close()
    with contextlib.closing(sqlite3.connect(db_path())) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
        conn.commit()
    with pytest.raises(DatabaseError, match="newer Halext Desktop.*9999_future"):
        Database().open()
    assert revision_of(db_path()) == "9999_future"


def test_explicit_path_and_close_twice(tmp_path: Path) -> None:
    db = Database(tmp_path / "nested" / "dir" / "x.db", backups=tmp_path / "bk")
    db.open()
    assert db.is_open and db.path.exists()
    db.open()  # idempotent
    db.close()
    db.close()
    assert not db.is_open
    with pytest.raises(DatabaseError, match="not open"):
        _ = db.engine


def test_writes_from_several_threads() -> None:
    with Database() as db:
        store = ConversationStore(db)
        conv = store.create("threads")
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(25):
                    store.add_message(conv.id, "user", f"t{n}-{i}")
                    store.messages(conv.id, limit=5)
            except BaseException as exc:  # report in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        contents = {m.content for m in store.messages(conv.id)}
        assert contents == {f"t{n}-{i}" for n in range(4) for i in range(25)}


def test_migrations_ship_as_importable_package_data() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "__init__.py").is_file()
    revisions = []
    for path in sorted((MIGRATIONS_DIR / "versions").glob("[0-9]*.py")):
        module = importlib.import_module(f"halext_desktop.storage.migrations.versions.{path.stem}")
        revisions.append((module.revision, module.down_revision))
    assert revisions[0][1] is None
    # A single straight chain ending at head.
    for (rev, _), (_, down) in zip(revisions, revisions[1:], strict=False):
        assert down == rev
    assert revisions[-1][0] == head_revision()


_OPEN_WHEN_TOLD = """
import sys
from pathlib import Path
from halext_desktop.storage.db import Database
print("ready", flush=True)
sys.stdin.readline()
try:
    Database(Path(sys.argv[1]), backups=Path(sys.argv[2])).open().close()
except Exception as exc:
    print(f"FAILED {exc}", flush=True)
    sys.exit(1)
print("opened", flush=True)
"""


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    """The GUI and a CLI command started together must not both create the schema
    (the losers used to be told their brand-new database was damaged). The race is
    timing-dependent, so five new databases are each opened by three processes at once."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    paths = [tmp_path / f"new{i}.db" for i in range(5)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_WHEN_TOLD, str(path), str(tmp_path / "backups")],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in paths
        for _ in range(3)
    ]
    try:
        for p in procs:  # every child has imported everything and waits at the gate
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [out.strip() for out, _ in results] == ["opened"] * len(procs), results
    assert all(revision_of(path) == head_revision() for path in paths)


def test_the_quick_schema_check_knows_the_same_head_as_alembic() -> None:
    """An ordinary start checks the revision with one query against ``schema_head`` (read
    from the migration files' names) and imports Alembic only to migrate."""
    assert schema_head() == head_revision()
