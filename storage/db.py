"""The SQLite database: opening, backing up, migrating, and sharing it between threads.

``Database.open()`` makes sure the file is at the newest schema: when an existing file is
behind, it is first copied (sqlite3 backup API, consistent even in WAL mode) to the
backups folder, newest five kept, and then upgraded with Alembic, configured in code so
no ``alembic.ini`` has to ship. The engine is shared by the GUI thread and the asyncio
loop thread: reads run concurrently (WAL), writes go through ``write_lock`` so two
threads of this process never wait on SQLite's file lock; ``busy_timeout`` covers a CLI
running next to the GUI.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, exc

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
KEEP_BACKUPS = 5
BUSY_TIMEOUT_MS = 5000


class DatabaseError(RuntimeError):
    """The database cannot be used; the message names the file and what to do."""


def _fold(text: str | None) -> str | None:
    """Lower-casing for the search scan: SQLite's lower() is ASCII-only, and Unicode
    lower() matches the FTS5 trigram tokenizer's case folding (casefold would not: ß→ss)."""
    return text.lower() if text is not None else None


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "database is locked/busy": another process held its
    write lock for longer than the busy timeout (a retry later may succeed)."""
    orig = getattr(error, "orig", None) or error
    text = str(orig).lower()
    return isinstance(orig, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # WAL: readers (GUI) never block the writer (loop thread) and vice versa.
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # NORMAL is durable across application crashes in WAL mode and much faster than FULL.
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.create_function("hx_fold", 1, _fold, deterministic=True)

    return on_connect


@contextlib.contextmanager
def _migration_lock(db_file: Path) -> Iterator[None]:
    """Hold an exclusive OS file lock next to ``db_file`` while the schema is created or
    upgraded: the GUI and a CLI command started together would otherwise both run the
    migrations, and the loser fails half-way ("table ... already exists"). The OS drops
    the lock when a process dies, so a crash never leaves it stuck."""
    lock_path = db_file.with_name(db_file.name + ".lock")
    with open(lock_path, "a+b") as fh:
        if sys.platform == "win32":
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)  # retries for ~10 s, then OSError
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code: ``script_location`` is the migrations package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision this version of the app knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "storage/migrations has no revisions"
    return head


class Database:
    """The app's SQLite database.

    Args:
        path: the database file; default ``storage.paths.db_path()``.
        backups: where pre-upgrade copies go; default ``storage.paths.backups_dir()``.
        busy_timeout_ms: how long a write waits for another process's lock.

    Attributes:
        write_lock: hold it around every write transaction (``with db.write() as conn``).
        has_fts: whether the FTS5 search tables exist (else search scans).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        backups: Path | None = None,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        self._path = path
        self._backups = backups
        self._busy_timeout_ms = busy_timeout_ms
        self._engine: Engine | None = None
        self.write_lock = threading.RLock()
        self.has_fts = False

    @property
    def path(self) -> Path:
        if self._path is None:
            from halext_desktop.storage.paths import db_path

            self._path = db_path()
        return self._path

    @property
    def busy_timeout_ms(self) -> int:
        """How long a write waits for another process's lock before failing."""
        return self._busy_timeout_ms

    @property
    def backups_dir(self) -> Path:
        if self._backups is None:
            from halext_desktop.storage.paths import backups_dir

            self._backups = backups_dir()
        self._backups.mkdir(parents=True, exist_ok=True)
        return self._backups

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r}, open={self._engine is not None})"

    @property
    def engine(self) -> Engine:
        """The shared engine; ``open()`` first."""
        if self._engine is None:
            raise DatabaseError("the database is not open (call Database.open() first)")
        return self._engine

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    # ---- open / close ------------------------------------------------------------------

    def open(self) -> Database:
        """Create or upgrade the database and make the engine ready. Idempotent.

        Raises:
            DatabaseError: the file is damaged, not a database, or from a newer version.
        """
        if self._engine is not None:
            return self
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            f"sqlite:///{path}",
            connect_args={"check_same_thread": False, "timeout": self._busy_timeout_ms / 1000},
            # Errors must never carry what the user wrote into logs or banners.
            hide_parameters=True,
        )
        event.listen(engine, "connect", _pragmas(self._busy_timeout_ms))
        try:
            self._migrate(engine)
            with engine.connect() as conn:
                self.has_fts = (
                    conn.exec_driver_sql(
                        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='messages_fts'"
                    ).first()
                    is not None
                )
        except DatabaseError:
            engine.dispose()
            raise
        except (exc.DatabaseError, sqlite3.DatabaseError) as e:
            engine.dispose()
            detail = getattr(e, "orig", None) or e
            raise DatabaseError(
                f"The database {path} cannot be opened: {detail}. It may be damaged or not a "
                f"Halext Desktop database. Move it away to start fresh; copies made before "
                f"upgrades are in {self.backups_dir}."
            ) from None
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        return self

    def _migrate(self, engine: Engine) -> None:
        script = ScriptDirectory.from_config(alembic_config())
        head = script.get_current_head()
        if self._revision(engine)[0] == head:
            return  # the usual start: no lock file, no waiting
        with _migration_lock(self.path):
            # Another process may have migrated while this one waited for the lock.
            self._migrate_locked(engine, script, head)

    @staticmethod
    def _revision(engine: Engine) -> tuple[str | None, bool]:
        """The file's schema revision and whether it has any tables."""
        with engine.connect() as conn:
            # Reading the schema touches the file header: a non-database fails right here.
            conn.exec_driver_sql("PRAGMA schema_version").scalar()
            current = MigrationContext.configure(conn).get_current_revision()
            has_tables = (
                conn.exec_driver_sql(
                    "SELECT count(*) FROM sqlite_master WHERE type='table'"
                ).scalar()
                or 0
            ) > 0
        return current, has_tables

    def _migrate_locked(self, engine: Engine, script: ScriptDirectory, head: str | None) -> None:
        current, has_tables = self._revision(engine)
        if current == head:
            return
        if current is not None:
            try:
                known = script.get_revision(current) is not None
            except Exception:  # alembic raises various errors for an unknown id
                known = False
            if not known:
                raise DatabaseError(
                    f"The database {self.path} was written by a newer Halext Desktop (schema "
                    f"revision {current}). Update Halext Desktop, or move the file away to start "
                    f"fresh; copies made before upgrades are in {self.backups_dir}."
                )
        if has_tables:
            self.backup(label=current or "base")
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        log.info("database %s upgraded from %s to %s", self.path, current or "empty", head)

    def close(self) -> None:
        """Close every pooled connection. Safe to call twice."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> Database:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- backups ------------------------------------------------------------------------

    def backup(self, label: str = "manual") -> Path:
        """Copy the database (consistently, with the sqlite3 backup API) into the backups
        folder as ``halext-<UTC timestamp>-<label>.db``; keep the newest five."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.backups_dir / f"halext-{stamp}-{label}.db"
        with (
            contextlib.closing(sqlite3.connect(self.path)) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
        log.info("database backed up to %s", target)
        self._prune_backups()
        return target

    def backups(self) -> list[Path]:
        """The backup files, oldest first."""
        # The timestamp is fixed-width right after "halext-", so name order is time order.
        return sorted(self.backups_dir.glob("halext-*.db"), key=lambda p: p.name)

    def _prune_backups(self) -> None:
        for old in self.backups()[:-KEEP_BACKUPS]:
            try:
                old.unlink()
            except OSError as e:  # a locked old backup is not worth failing start-up for
                log.warning("could not remove old backup %s: %s", old, e)

    # ---- connections ---------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for queries (no lock: WAL readers run alongside the writer)."""
        with self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction under the process-wide write lock; commits on success."""
        with self.write_lock, self.engine.begin() as conn:
            yield conn
