"""The SQLite database: opening, backing up, migrating, and what its errors mean.

``Database.open()`` makes sure the file is at the newest schema: when an existing file is
behind, it is first copied (sqlite3 backup API, consistent even in WAL mode) to the
backups folder, newest five kept, and then upgraded with Alembic, configured in code so
no ``alembic.ini`` has to ship.

Only one thread of the process uses a ``Database``: the database owner's
(``storage.owner.DbOwner``). It has one sqlite3 connection; ``read()`` and ``write()``
first check the thread rule (``storage.threads``: never the GUI thread, never a thread
running an event loop), then begin and end the transaction in plain SQL and hand out a
``storage.connection.Conn``: plain SQL for what a chat turn needs, SQLAlchemy Core over
the same connection (imported on first use) for the rest. Write transactions start with
``BEGIN IMMEDIATE``, so a write either gets the file's write lock up front or fails at
once with "database is locked" after ``busy_timeout_ms`` — never half-way through, and
never with the snapshot error a deferred transaction meets when another process wrote in
between.

The files are the user's alone: the database (with its ``-wal``/``-shm`` companions, which
SQLite creates with the database's own mode), its backups and the lock file are 0600
whatever the umask.

Errors are sorted into what they mean for the user (``classify``): locked by another
program (wait; ``DatabaseLocked``), disk full, read-only, or damaged (``DatabaseDamaged``,
with the newest good copy to restore from).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from halext_desktop.storage import threads
from halext_desktop.storage.connection import Conn, shared_engine

if TYPE_CHECKING:
    # Alembic (with its dialects, mako and pygments: ~0.3 s) is imported only when a file
    # is behind the newest schema; every other start reads the revision with one query.
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
KEEP_BACKUPS = 5
# How long one write attempt waits for another process's lock. Short on purpose: the owner
# thread retries a refused write later and serves reads in between (storage.owner).
BUSY_TIMEOUT_MS = 100
# How long opening waits for another process that is creating or upgrading the schema.
OPEN_WAIT_S = 15.0
# A daily copy is made when the newest good one is older than this (the window does it).
BACKUP_EVERY_S = 24 * 3600
PRIVATE_FILE = 0o600

# SQLite primary result codes (sqlite3 exceptions carry them as ``sqlite_errorcode``).
SQLITE_PERM = 3
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26


class DatabaseError(RuntimeError):
    """The database cannot be used; the message names the file and what to do."""


class DatabaseLocked(DatabaseError):
    """Another program holds the database's write lock (waiting may help)."""


class DatabaseReadOnly(DatabaseError):
    """The database file or its folder cannot be written."""


class DatabaseDamaged(DatabaseError):
    """The file is damaged or not a database.

    Attributes:
        path: the damaged file.
        detail: SQLite's words (``database disk image is malformed``).
        newest_backup: the newest good copy to restore from, or None.
    """

    def __init__(self, path: Path, detail: str, newest_backup: Path | None) -> None:
        self.path = path
        self.detail = detail
        self.newest_backup = newest_backup
        super().__init__(damaged_message(path, detail, newest_backup))


class Problem(Enum):
    """What a SQLite error means for the user."""

    BUSY = "busy"  # locked by another program: retry later
    FULL = "full"  # the disk is full: retry once there is room
    READONLY = "readonly"  # the file or folder cannot be written
    DAMAGED = "damaged"  # corrupt, or not a database
    OTHER = "other"  # a bug or a bad value: not worth retrying


def _orig(error: BaseException) -> BaseException:
    return getattr(error, "orig", None) or error


def sqlite_code(error: BaseException) -> int | None:
    """The primary SQLite result code of ``error`` (or of the DBAPI error it wraps)."""
    code = getattr(_orig(error), "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def classify(error: BaseException) -> Problem:
    """Sort a (SQLAlchemy or sqlite3) error by what it means for the user."""
    orig = _orig(error)
    if not isinstance(orig, sqlite3.Error):
        if isinstance(orig, OSError) and orig.errno == 28:  # ENOSPC (a backup, a spool file)
            return Problem.FULL
        return Problem.OTHER
    code = sqlite_code(orig)
    text = str(orig).lower()
    if code in (SQLITE_BUSY, SQLITE_LOCKED) or (
        code is None and ("database is locked" in text or "database is busy" in text)
    ):
        return Problem.BUSY
    if code == SQLITE_FULL or "disk is full" in text:
        return Problem.FULL
    if code in (SQLITE_READONLY, SQLITE_PERM) or "readonly database" in text:
        return Problem.READONLY
    if (
        code in (SQLITE_CORRUPT, SQLITE_NOTADB)
        or "malformed" in text
        or "not a database" in text
        or "vtable constructor failed" in text
    ):
        return Problem.DAMAGED
    return Problem.OTHER


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "database is locked/busy": another process held its
    write lock for longer than the busy timeout (a retry later may succeed)."""
    return classify(error) is Problem.BUSY


def damaged_message(path: Path, detail: str, newest_backup: Path | None) -> str:
    """One line for a damaged database: the file, SQLite's words, and where a good copy
    is (only when there is one)."""
    if newest_backup is not None:
        where = f"the newest good copy is {newest_backup}"
    else:
        where = "there is no backup copy of it yet"
    return (
        f"The database {path} is damaged ({detail}); {where}. Open Halext Desktop to restore "
        "the copy or start fresh (the damaged file is moved aside, never deleted)."
    )


def private_file(path: Path) -> None:
    """Make ``path`` (if it exists) readable and writable by its owner only."""
    try:
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(PRIVATE_FILE)
    except OSError:  # not ours to change (another user's file): leave it
        pass


def _new_private_file(path: Path) -> None:
    """Create an empty ``path`` with mode 0600 (whatever the umask) if it does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def _fold(text: str | None) -> str | None:
    """Lower-casing for the search scan: SQLite's lower() is ASCII-only, and Unicode
    lower() matches the FTS5 trigram tokenizer's case folding (casefold would not: ß→ss)."""
    return text.lower() if text is not None else None


def _pragmas(busy_timeout_ms: int) -> Callable[[sqlite3.Connection, Any], None]:
    """What every new connection runs first (a function of the connection and a record
    nobody uses, SQLAlchemy's ``connect`` listener form, which the fault suite wraps)."""

    def on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Transactions are begun and ended by hand (Database.read/write): BEGIN IMMEDIATE
        # for writes.
        dbapi_conn.isolation_level = None
        # WAL: readers never block the writer and vice versa (also across processes).
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # NORMAL is durable across application crashes in WAL mode and much faster than FULL.
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.create_function("hx_fold", 1, _fold, deterministic=True)

    return on_connect


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """The database's one connection, with its pragmas."""
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, check_same_thread=False)
    try:
        _pragmas(busy_timeout_ms)(conn, None)
    except BaseException:
        conn.close()
        raise
    return conn


def _quietly(conn: sqlite3.Connection, statement: str) -> None:
    """End a transaction after an error (SQLite may already have rolled it back, e.g. when
    the disk is full): the first error is the one worth raising."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute(statement)


@contextlib.contextmanager
def _migration_lock(db_file: Path) -> Iterator[None]:
    """Hold an exclusive OS file lock next to ``db_file`` while the schema is created or
    upgraded: the GUI and a CLI command started together would otherwise both run the
    migrations, and the loser fails half-way ("table ... already exists"). The OS drops
    the lock when a process dies, so a crash never leaves it stuck."""
    lock_path = db_file.with_name(db_file.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    with os.fdopen(fd, "r+b") as fh:
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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision this version of the app knows (asks Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "storage/migrations has no revisions"
    return head


_VERSION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


def schema_head() -> str:
    """The newest revision, read from the migration files' names (``0004_rollup.py`` →
    ``"0004"``) without importing Alembic. Revisions are numbered in order, each revising
    the one before (a test holds this equal to ``head_revision()``)."""
    found = [
        m.group(1)
        for name in os.listdir(MIGRATIONS_DIR / "versions")
        if (m := _VERSION_FILE.match(name))
    ]
    assert found, "storage/migrations/versions has no revisions"
    return max(found)


def companions(path: Path) -> list[Path]:
    """The database file and the WAL and shared-memory files that belong with it."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


class Database:
    """The app's SQLite database.

    Args:
        path: the database file; default ``storage.paths.db_path()``.
        backups: where copies go; default ``storage.paths.backups_dir()``.
        busy_timeout_ms: how long one write attempt waits for another process's lock.

    Attributes:
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
        self._conn: sqlite3.Connection | None = None  # the one connection (owner thread)
        self._engine: Engine | None = None  # SQLAlchemy over it, built on first use
        # Only the owner thread uses a Database; the lock keeps a test's direct use from
        # several threads (and open/close races) safe all the same.
        self._lock = threading.RLock()
        self._local = threading.local()  # the write transaction open on this thread, if any
        self.has_fts = False

    @property
    def path(self) -> Path:
        if self._path is None:
            from halext_desktop.storage.paths import db_path

            self._path = db_path()
        return self._path

    @property
    def busy_timeout_ms(self) -> int:
        """How long one write attempt waits for another process's lock before failing."""
        return self._busy_timeout_ms

    @property
    def backups_dir(self) -> Path:
        """The backups folder (created, 0700, when a copy is made)."""
        if self._backups is None:
            from halext_desktop.storage.paths import backups_dir

            self._backups = backups_dir()
        return self._backups

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r}, open={self._conn is not None})"

    @property
    def engine(self) -> Engine:
        """A SQLAlchemy engine over the database's one connection (imports SQLAlchemy on
        first use); ``open()`` first."""
        with self._lock:
            conn = self._raw()
            if self._engine is None:
                self._engine = shared_engine(conn)
            return self._engine

    def _raw(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DatabaseError("the database is not open (call Database.open() first)")
        return self._conn

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    # ---- open / close ------------------------------------------------------------------

    def open(self) -> Database:
        """Create or upgrade the database and make its connection ready. Idempotent.

        Raises:
            DatabaseDamaged: the file is damaged or not a database.
            DatabaseLocked: another program kept it locked for ``OPEN_WAIT_S``.
            DatabaseReadOnly: the file or its folder cannot be written.
            DatabaseError: the file is from a newer version of the app.
        """
        threads.check("opening the database")
        with self._lock:
            if self._conn is not None:
                return self
            path = self.path
            self._prepare_files(path)
            self._conn = self._open_connection(path)
            for file in companions(path):
                private_file(file)
            return self

    def _prepare_files(self, path: Path) -> None:
        folder = path.parent
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():
            if not os.access(path, os.R_OK | os.W_OK):
                raise DatabaseReadOnly(
                    f"The database {path} cannot be written (its permissions allow reading "
                    f"only, or not even that). Make it yours and writable: chmod u+rw '{path}'"
                )
            if not os.access(folder, os.W_OK | os.X_OK):
                raise DatabaseReadOnly(
                    f"The folder {folder} of the database cannot be written, so SQLite cannot "
                    f"keep its journal next to it. Make it writable: chmod u+rwx '{folder}'"
                )
            for file in companions(path):
                private_file(file)
            return
        try:
            _new_private_file(path)
        except PermissionError:
            raise DatabaseReadOnly(
                f"The database {path} cannot be created: the folder {folder} is not writable. "
                f"Make it writable: chmod u+rwx '{folder}'"
            ) from None

    def _open_connection(self, path: Path) -> sqlite3.Connection:
        """Connect, migrate and look at the schema; a lock held by another process (a
        concurrent first start, a long write) is waited out for up to ``OPEN_WAIT_S``."""
        deadline = time.monotonic() + OPEN_WAIT_S
        while True:
            conn: sqlite3.Connection | None = None
            try:
                conn = _connect(path, self._busy_timeout_ms)
                self._migrate(conn)
                self.has_fts = (
                    conn.execute(
                        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='messages_fts'"
                    ).fetchone()
                    is not None
                )
                return conn
            except DatabaseError:
                self._close_connection(conn)
                raise
            except Exception as e:
                self._close_connection(conn)
                if not isinstance(_orig(e), sqlite3.DatabaseError):
                    raise
                problem = classify(e)
                if problem is Problem.BUSY and time.monotonic() < deadline:
                    time.sleep(0.05)  # a fresh connection runs the pragmas again
                    continue
                raise self.error_for(e, waited_s=OPEN_WAIT_S) from None
            except BaseException:
                self._close_connection(conn)
                raise

    def _close_connection(self, conn: sqlite3.Connection | None) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()
        if conn is not None:
            conn.close()

    def error_for(self, error: BaseException, *, waited_s: float | None = None) -> DatabaseError:
        """The DatabaseError that tells the user what ``error`` means for this file."""
        detail = str(_orig(error))
        problem = classify(error)
        path = self.path
        if problem is Problem.BUSY:
            waited = f" (waited {waited_s:g} s)" if waited_s else ""
            return DatabaseLocked(
                f"The database {path} is locked by another program{waited}. Try again when "
                "the other Halext Desktop window or command (or the program holding it) is done."
            )
        if problem is Problem.READONLY:
            return DatabaseReadOnly(
                f"The database {path} cannot be written ({detail}). Make it and its folder "
                f"writable: chmod u+rw '{path}'"
            )
        if problem is Problem.FULL:
            return DatabaseError(
                f"The disk holding the database {path} is full. Free some space and try again."
            )
        if problem is Problem.DAMAGED:
            return DatabaseDamaged(path, detail, self.newest_backup())
        return DatabaseError(
            f"The database {path} cannot be opened: {detail}. It may be damaged or not a "
            "Halext Desktop database."
        )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self._stamped_revision(conn) == schema_head():
            return  # the usual start: one query, no Alembic, no lock file, no waiting
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config())
        head = script.get_current_head()
        with _migration_lock(self.path):
            # Another process may have migrated while this one waited for the lock.
            self._migrate_locked(conn, script, head)

    @staticmethod
    def _stamped_revision(conn: sqlite3.Connection) -> str | None:
        """The revision in the file's ``alembic_version`` table (None: no table, or not
        exactly one row — Alembic then looks closer)."""
        # Reading the schema touches the file header: a non-database fails right here.
        conn.execute("PRAGMA schema_version").fetchone()
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).fetchone()
        if has_table is None:
            return None
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        return str(rows[0][0]) if len(rows) == 1 else None

    def _revision(self, conn: sqlite3.Connection) -> tuple[str | None, bool]:
        """The file's schema revision and whether it has any tables."""
        from alembic.runtime.migration import MigrationContext

        # Reading the schema touches the file header: a non-database fails right here.
        conn.execute("PRAGMA schema_version").fetchone()
        with shared_engine(conn).connect() as sa:
            current = MigrationContext.configure(sa).get_current_revision()
        has_tables = (
            conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0] or 0
        ) > 0
        return current, has_tables

    def _migrate_locked(
        self, conn: sqlite3.Connection, script: ScriptDirectory, head: str | None
    ) -> None:
        current, has_tables = self._revision(conn)
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
                    f"revision {current}). Update Halext Desktop, or move the file away to "
                    "start fresh."
                )
        if has_tables:
            self.backup(label=current or "base")
        from alembic import command

        engine = shared_engine(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            with engine.connect() as sa:
                command.upgrade(alembic_config(sa), "head")
            conn.execute("COMMIT")
        except BaseException:
            _quietly(conn, "ROLLBACK")
            raise
        finally:
            engine.dispose()
        log.info("database %s upgraded from %s to %s", self.path, current or "empty", head)

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._close_connection(conn)

    def __enter__(self) -> Database:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- integrity, backups, recovery -----------------------------------------------------

    def integrity_problem(self) -> str | None:
        """``PRAGMA quick_check`` of the open database: None when it is sound, else SQLite's
        first complaint. Reads every page: run it on the owner thread, in the background."""
        threads.check("checking the database")
        try:
            with self.read() as conn:
                rows = [r[0] for r in conn.sql("PRAGMA quick_check(5)")]
        except Exception as e:  # sqlite3's, or SQLAlchemy's wrapping it
            if classify(e) is Problem.DAMAGED:
                return str(_orig(e))
            raise
        return None if rows == ["ok"] else "; ".join(map(str, rows))

    def backup(self, label: str = "manual", *, verify: bool = False) -> Path:
        """Copy the database (consistently, with the sqlite3 backup API) into the backups
        folder as ``halext-<UTC timestamp>-<label>.db`` (mode 0600); keep the newest five.

        Args:
            verify: check the copy (``quick_check``) and delete it when it is not sound, so
                that every copy kept is a good one.

        Raises:
            DatabaseDamaged: ``verify`` found the copy (hence the database) damaged.
        """
        threads.check("backing up the database")
        folder = self.backups_dir
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_folder(folder)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"halext-{stamp}-{label}.db"
        _new_private_file(target)
        try:
            with (
                contextlib.closing(sqlite3.connect(self.path)) as src,
                contextlib.closing(sqlite3.connect(target)) as dst,
            ):
                src.backup(dst)
                if verify:
                    rows = [r[0] for r in dst.execute("PRAGMA quick_check(5)")]
                    if rows != ["ok"]:
                        raise sqlite3.DatabaseError("; ".join(map(str, rows)))
        except sqlite3.DatabaseError as e:
            target.unlink(missing_ok=True)
            if verify and classify(e) in (Problem.DAMAGED, Problem.OTHER):
                raise DatabaseDamaged(self.path, str(e), self.newest_backup()) from None
            raise
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        private_file(target)
        log.info("database backed up to %s", target)
        self._prune_backups()
        return target

    def backups(self) -> list[Path]:
        """The backup files, oldest first."""
        if not self.backups_dir.is_dir():
            return []
        # The timestamp is fixed-width right after "halext-", so name order is time order.
        return sorted(self.backups_dir.glob("halext-*.db"), key=lambda p: p.name)

    def newest_backup(self) -> Path | None:
        found = self.backups()
        return found[-1] if found else None

    def backup_is_due(self, *, now: float | None = None, every_s: float = BACKUP_EVERY_S) -> bool:
        """Whether the newest copy is older than ``every_s`` (or there is none)."""
        newest = self.newest_backup()
        if newest is None:
            return True
        try:
            age = (now if now is not None else time.time()) - newest.stat().st_mtime
        except OSError:
            return True
        return age >= every_s

    def _prune_backups(self) -> None:
        for old in self.backups()[:-KEEP_BACKUPS]:
            try:
                old.unlink()
            except OSError as e:  # a locked old backup is not worth failing start-up for
                log.warning("could not remove old backup %s: %s", old, e)

    def move_aside(self, reason: str = "damaged") -> Path:
        """Close the database and rename it (and its ``-wal``/``-shm``) to
        ``<name>.<reason>-<UTC timestamp>`` in the same folder; returns the new name of the
        main file. Nothing is deleted."""
        threads.check("moving the database aside")
        self.close()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = self.path.with_name(f"{self.path.name}.{reason}-{stamp}")
        for file in companions(self.path):
            if file.exists():
                suffix = file.name[len(self.path.name) :]  # "", "-wal" or "-shm"
                file.rename(base.with_name(base.name + suffix))
        log.warning("database %s moved aside to %s", self.path, base)
        return base

    def restore_from(self, backup: Path) -> Path:
        """Move the current database aside and put a copy of ``backup`` in its place (then
        ``open()`` again). Returns where the old file went."""
        aside = self.move_aside("damaged")
        _new_private_file(self.path)
        shutil.copyfile(backup, self.path)
        private_file(self.path)
        log.warning("database %s restored from %s", self.path, backup)
        return aside

    # ---- connections ---------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Conn]:
        """The connection, in a read transaction (WAL readers run alongside any writer).
        Inside a write transaction of this thread, that transaction (so it sees its rows)."""
        threads.check("reading the database")
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self._lock:
            raw = self._raw()
            raw.execute("BEGIN")
            conn = Conn(raw, lambda: self.engine)
            try:
                yield conn
            finally:
                conn.close()
                _quietly(raw, "ROLLBACK")

    @contextlib.contextmanager
    def write(self) -> Iterator[Conn]:
        """A ``BEGIN IMMEDIATE`` transaction; commits on success, rolls back on error.

        Nested inside another ``write()`` of the same thread it is a savepoint of that
        transaction: the owner thread writes a whole batch of queued changes in one
        transaction, each change in its own savepoint, so one bad change is rolled back
        alone and the rest still commit together.
        """
        threads.check("writing to the database")
        current: Conn | None = getattr(self._local, "conn", None)
        if current is not None:
            depth = getattr(self._local, "depth", 0) + 1
            name = f"hx_{depth}"
            current.raw.execute(f"SAVEPOINT {name}")
            self._local.depth = depth
            try:
                yield current
            except BaseException:
                _quietly(current.raw, f"ROLLBACK TO {name}")
                _quietly(current.raw, f"RELEASE {name}")
                raise
            else:
                current.raw.execute(f"RELEASE {name}")
            finally:
                self._local.depth = depth - 1
            return
        with self._lock:
            raw = self._raw()
            raw.execute("BEGIN IMMEDIATE")
            conn = Conn(raw, lambda: self.engine)
            self._local.conn = conn
            try:
                yield conn
                conn.close()
                raw.execute("COMMIT")
            except BaseException:
                _quietly(raw, "ROLLBACK")
                raise
            finally:
                self._local.conn = None
                conn.close()


def private_folder(path: Path) -> None:
    """Make a folder we own 0700 (conversations are the user's alone)."""
    try:
        if path.is_dir() and path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError:
        pass
