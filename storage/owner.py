"""The database owner: one thread that runs every SQLite call of the process.

Anki serialises its collection behind one lock; here the one owner is a thread with a
queue. Nothing else touches SQLite — not the GUI thread, not the router's event loop
(``storage.threads`` enforces it) — so a slow or locked database can delay a write, never
a reply or a repaint.

Two kinds of work arrive:

- **Reads** (``submit``/``run``): run in arrival order. Changes queued before a read are
  written first, so a read sees them; while the database refuses writes, reads still run
  (WAL lets them) and ``pending_ops`` lets them show the changes still waiting.
- **Changes** (``enqueue``): plain data (``storage.ops``). Whatever has queued up is written
  in one ``BEGIN IMMEDIATE`` transaction, each change in its own savepoint, so one bad change
  fails alone. A later edit of a row still waiting is merged into the waiting change (a
  reply saved every second while the database is locked stays one insert). When the
  database is locked by another program, or the disk is full, the batch waits and is
  tried again (50 ms, doubling to 1 s), reads go on in between, and the waiting changes
  are also kept in this session's spool file (``storage.spool``) so that even kill -9 loses
  nothing. When the database turns out damaged, changes that cannot wait for a restore
  fail at once with ``DatabaseDamaged``.

A change that creates a row hands out a provisional id at once (``ops.new_pid``);
``resolve`` maps it to the real one once written.

``state`` (and the listeners of ``add_listener``) tells the user what is going on: ok,
blocked (locked or full, with how many changes wait), damaged, unavailable, closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from halext_desktop.storage import spool as spool_files
from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.db import (
    Database,
    DatabaseDamaged,
    DatabaseError,
    Problem,
    classify,
)
from halext_desktop.storage.ops import (
    ApplyContext,
    EditConversation,
    EditMessage,
    NewMessage,
    NewUsage,
    Op,
    new_pid,
)
from halext_desktop.storage.row_values import time_text, utcnow
from halext_desktop.storage.usage import UsageLog

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0

OK = "ok"
STARTING = "starting"
BLOCKED = "blocked"
DAMAGED = "damaged"
UNAVAILABLE = "unavailable"
CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class DbState:
    """What the database is doing, for the user.

    Attributes:
        kind: ``starting``, ``ok``, ``blocked`` (locked by another program, or disk full:
            changes wait), ``damaged``, ``unavailable`` (could not be opened), ``closed``.
        problem: for ``blocked``: BUSY, FULL or READONLY.
        detail: one line for the user.
        waiting: changes waiting to be written.
        since: when the current trouble began (UTC), or None.
        error: the error that made it ``damaged`` or ``unavailable``.
    """

    kind: str
    problem: Problem | None = None
    detail: str = ""
    waiting: int = 0
    since: datetime | None = None
    error: DatabaseError | None = None

    @property
    def ok(self) -> bool:
        return self.kind == OK


@dataclass(frozen=True, slots=True)
class CloseReport:
    """What closing left behind: changes kept in a spool file (with where), changes lost
    (only when even the spool file could not be written), and the last state."""

    written_late: bool
    spooled: int
    spool_path: Path | None
    lost: int
    state: DbState
    what: str = ""  # what the spooled changes are, in words ("1 message and 1 usage row")


class WriteSpooled(DatabaseError):
    """The change could not be written before the app closed; it is in the spool file."""


class WriteLost(DatabaseError):
    """The change could not be written, nor kept in a spool file."""


@dataclass
class _Entry:
    op: Op
    futures: list[Future[Any]] = field(default_factory=list)
    batch: str | None = None  # the spool batch it was read back from
    source: Path | None = None  # that spool file (removed once the batch is written)
    due: float = 0.0  # monotonic time by which it is written (0: at once)


@dataclass
class _Read:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[Any]


@dataclass
class _Control:
    fn: Callable[[], Any]
    future: Future[Any]


_STOP = object()


class DbOwner:
    """The single thread that owns the database.

    Args:
        db: the Database (opened by ``start_open`` on this thread).
        session_id: this process's session (``storage.session``), written into spool files.
        spool_dir: where spool files go; None keeps waiting changes in memory only.
        retry_max_s: the longest pause between two tries at a refused batch.
    """

    def __init__(
        self,
        db: Database,
        *,
        session_id: str | None = None,
        spool_dir: Path | None = None,
        retry_max_s: float = RETRY_MAX_S,
        name: str = "halext-db",
    ) -> None:
        self.db = db
        self.conversations = ConversationStore(db)
        self.usage = UsageLog(db)
        self.session_id = session_id
        self.spool_dir = spool_dir
        self._retry_max_s = retry_max_s
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle: deque[_Control] = deque()
        self._writes: list[_Entry] = []  # owner thread only
        self._ids: dict[int, int] = {}  # provisional -> real (written by the owner thread)
        self._retry_at: float | None = None
        self._retry_delay = RETRY_FIRST_S
        self._drain_waiters: list[tuple[float, Future[bool]]] = []
        self._journal_batch: str | None = None
        self._journal_dirty = False
        self._blocked_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._state = DbState(STARTING)
        self._listeners: list[Callable[[DbState], None]] = []
        self._listener_lock = threading.Lock()
        self._open_error: DatabaseError | None = None
        self._late = False  # some change waited for the database (told once at close)
        self.stats = {"transactions": 0, "ops": 0, "refused": 0}
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._closed = threading.Event()
        self._thread.start()

    def __repr__(self) -> str:
        return f"DbOwner({self.db!r}, state={self._state.kind})"

    # ---- any thread ----------------------------------------------------------------------

    @property
    def state(self) -> DbState:
        return self._state

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def on_owner_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def add_listener(self, callback: Callable[[DbState], None]) -> Callable[[], None]:
        """Call ``callback(state)`` (on the owner thread) at every state change; returns the
        function that removes it."""
        with self._listener_lock:
            self._listeners.append(callback)

        def remove() -> None:
            with self._listener_lock, contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    def resolve(self, some_id: int) -> int:
        """The real id of a provisional one once it is written (else itself)."""
        return self._ids.get(some_id, some_id) if some_id < 0 else some_id

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the owner thread (a read, or a store call that
        must not wait behind a lock); changes queued before it are written first."""
        fut: Future[T] = Future()
        if self._closed.is_set():
            fut.set_exception(DatabaseError("the database is closed"))
            return fut
        self._jobs.put(_Read(fn, args, kwargs, fut))
        return fut

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``submit`` for coroutines: awaits the result without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 30, **kw: Any) -> T:
        """``submit`` and wait (for threads that may block: start-up, tests, shutdown)."""
        return self.submit(fn, *args, **kw).result(timeout)

    def enqueue(self, op: Op, *, within: float = 0.0) -> Future[Any]:
        """Queue a change; the future resolves once it is written (or fails).

        Args:
            within: the change may wait up to this many seconds to be written with the
                next one (0: write it at once). A reply's usage row and its "streaming"
                mark wait so that they share the transaction of the reply's next save
                instead of costing one each; a read, a flush or closing writes them at
                once (a read always sees every queued change).
        """
        fut: Future[Any] = Future()
        if self._closed.is_set():
            fut.set_exception(DatabaseError("the database is closed"))
            return fut
        due = time.monotonic() + within if within > 0 else 0.0
        self._jobs.put(_Entry(op, [fut], due=due))
        return fut

    def control(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the owner thread with full access to its state (start-up,
        restore, recovery)."""
        fut: Future[T] = Future()
        self._jobs.put(_Control(fn, fut))
        return fut

    def when_idle(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the owner thread when nothing else waits (a background check)."""
        fut: Future[T] = Future()
        self._jobs.put(_Control(lambda: self._idle.append(_Control(fn, fut)), Future()))
        return fut

    async def settled(self, fut: Future[Any]) -> bool:
        """Wait until ``fut`` is done, or until the database refuses writes (then the change
        waits in the queue and the caller goes on): True when written. Raises the change's
        error when it failed."""
        if not fut.done() and self._state.kind not in (BLOCKED, DAMAGED, UNAVAILABLE, CLOSED):
            loop = asyncio.get_running_loop()
            blocked: asyncio.Future[None] = loop.create_future()
            waiter = (loop, blocked)
            with self._listener_lock:
                self._blocked_waiters.add(waiter)
            done = asyncio.wrap_future(fut)
            # Retrieve a late error of the change, so asyncio does not report it as lost.
            done.add_done_callback(lambda f: f.cancelled() or f.exception())
            try:
                if self._state.kind not in (BLOCKED, DAMAGED, UNAVAILABLE, CLOSED):
                    await asyncio.wait({done, blocked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                with self._listener_lock:
                    self._blocked_waiters.discard(waiter)
        if not fut.done():
            return False
        fut.result()  # raises the change's own error
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued change is written (True) or ``timeout`` passes (False).
        Blocks the calling thread: not for the GUI thread or an event loop."""
        fut = self.drain(timeout)
        return fut.result()

    def drain(self, timeout: float | None = None) -> Future[bool]:
        """A future that becomes True once every queued change is written, or False when
        ``timeout`` passes first."""
        fut: Future[bool] = Future()
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        self._jobs.put(_Control(lambda: self._drain_waiters.append((deadline, fut)), Future()))
        return fut

    def close(self, timeout: float = 2.0) -> CloseReport:
        """Write what waits (trying for up to ``timeout``), keep the rest in the spool file,
        close the database and stop the thread. Safe to call twice."""
        if self._closed.is_set():
            return CloseReport(False, 0, None, 0, self._state)
        fut: Future[CloseReport] = Future()
        self._jobs.put((_STOP, time.monotonic() + timeout, fut))
        report = fut.result()
        self._thread.join(5)
        return report

    # ---- the owner thread ----------------------------------------------------------------

    def pending_ops(self) -> list[Op]:
        """The changes still waiting, oldest first (owner thread only: reads use it to
        show them)."""
        assert self.on_owner_thread(), "pending_ops runs on the owner thread"
        return [e.op for e in self._writes]

    def queue_from_owner(
        self, op: Op, *, batch: str | None = None, source: Path | None = None
    ) -> Future[Any]:
        """Queue a change from the owner thread itself (start-up work, spool replay)."""
        assert self.on_owner_thread()
        fut: Future[Any] = Future()
        self._add_entry(_Entry(op, [fut], batch, source))
        return fut

    def _main(self) -> None:
        while True:
            job = self._next_job()
            if isinstance(job, tuple) and job and job[0] is _STOP:
                self._finish(job[1], job[2])
                return
            if job is not None:
                self._handle(job)
                # Take every job already waiting before writing, so they share a transaction.
                stop = None
                while stop is None:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(more, tuple) and more and more[0] is _STOP:
                        stop = more
                    else:
                        self._handle(more)
                if stop is not None:
                    self._finish(stop[1], stop[2])
                    return
            if self._writes and self._may_try() and self._due():
                self._flush()
            elif not self._writes and self._idle and job is None:
                idle = self._idle.popleft()
                self._run_control(idle)
            self._check_drain_waiters()

    def _next_job(self) -> Any:
        timeout: float | None = None
        now = time.monotonic()
        if self._writes and self._state.kind in (OK, BLOCKED):
            if not self._may_try():
                timeout = max(0.0, (self._retry_at or now) - now)
            else:
                timeout = max(0.0, self._next_due() - now)
        elif self._idle and not self._writes:
            timeout = 0.0
        if self._drain_waiters:
            soonest = min(d for d, _ in self._drain_waiters) - now
            timeout = max(0.0, soonest) if timeout is None else min(timeout, max(0.0, soonest))
        try:
            return self._jobs.get(timeout=timeout) if timeout != 0.0 else self._jobs.get_nowait()
        except queue.Empty:
            return None

    def _next_due(self) -> float:
        """When the waiting changes must be written (now, when a drain waits for them)."""
        if self._drain_waiters:
            return 0.0
        return min((e.due for e in self._writes), default=0.0)

    def _due(self) -> bool:
        return self._next_due() <= time.monotonic()

    def _may_try(self) -> bool:
        if self._state.kind in (DAMAGED, UNAVAILABLE, STARTING, CLOSED):
            return False
        return self._retry_at is None or time.monotonic() >= self._retry_at

    def _handle(self, job: Any) -> None:
        if isinstance(job, _Entry):
            self._add_entry(job)
        elif isinstance(job, _Read):
            self._run_read(job)
        elif isinstance(job, _Control):
            self._run_control(job)

    def _add_entry(self, entry: _Entry) -> None:
        if self._state.kind == DAMAGED and not isinstance(entry.op, NewUsage):
            for fut in entry.futures:
                _fail(fut, self._state.error or DatabaseError("the database is damaged"))
            return
        if self._merge(entry):
            return
        self._writes.append(entry)
        self._journal_dirty = True
        if self._state.kind == BLOCKED:
            self._set_state(BLOCKED, problem=self._state.problem, detail=self._state.detail)

    def _merge(self, entry: _Entry) -> bool:
        """Fold an edit into a waiting change of the same row (a waiting insert of the
        message, or the last waiting edit of it when nothing else touched it since)."""
        op = entry.op
        if entry.batch is not None or not isinstance(op, EditMessage | EditConversation):
            return False
        target = op.message_id if isinstance(op, EditMessage) else op.conversation_id
        for waiting in reversed(self._writes):
            if waiting.batch is not None:
                return False
            w = waiting.op
            if isinstance(op, EditMessage):
                if isinstance(w, NewMessage) and w.pid == target:
                    w.absorb(op)
                elif isinstance(w, EditMessage) and w.message_id == target:
                    w.merge(op)
                elif isinstance(w, NewMessage | EditMessage | NewUsage | EditConversation):
                    continue  # changes of other rows: the order between them does not matter
                else:
                    return False  # a deletion or a store call in between: keep the order
            else:
                if isinstance(w, EditConversation) and w.conversation_id == target:
                    assert isinstance(op, EditConversation)
                    w.merge(op)
                elif isinstance(w, NewMessage | EditMessage | NewUsage):
                    continue
                else:
                    return False
            waiting.futures.extend(entry.futures)
            waiting.due = min(waiting.due, entry.due)
            self._journal_dirty = True
            return True
        return False

    def _run_read(self, job: _Read) -> None:
        if not job.future.set_running_or_notify_cancel():
            return  # cancelled before it started (a newer load overtook it)
        if self._writes and self._may_try():
            self._flush()  # a read sees what was queued before it
        if self._open_error is not None:
            job.future.set_exception(self._open_error)
            return
        try:
            result = job.fn(*job.args, **job.kwargs)
        except BaseException as exc:
            job.future.set_exception(self._translate(exc))
            return
        job.future.set_result(result)

    def _run_control(self, job: _Control) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = job.fn()
        except BaseException as exc:
            job.future.set_exception(self._translate(exc))
            return
        job.future.set_result(result)

    def _translate(self, exc: BaseException) -> BaseException:
        """A SQLite error becomes the DatabaseError that says what it means; damage also
        changes the state (so the window offers a restore)."""
        if isinstance(exc, DatabaseError):
            if isinstance(exc, DatabaseDamaged):
                self._enter_damaged(exc)
            return exc
        problem = classify(exc)
        if problem is Problem.OTHER:
            return exc
        error = self.db.error_for(exc)
        if isinstance(error, DatabaseDamaged):
            self._enter_damaged(error)
        return error

    # ---- writing -------------------------------------------------------------------------

    def _flush(self) -> None:
        batch = self._writes
        ctx = ApplyContext(self.conversations, self.usage, self._ids)
        outcomes: list[tuple[_Entry, Any, BaseException | None]] = []
        skip_batches: set[str] = set()
        try:
            with self.db.write() as conn:
                markers = {e.batch for e in batch if e.batch is not None}
                for marker in markers:
                    seen = conn.sql(
                        "SELECT 1 FROM spool_applied WHERE id = ?", (marker,)
                    ).fetchone()
                    if seen is not None:
                        skip_batches.add(marker)
                if self._journal_batch is not None:
                    markers.add(self._journal_batch)
                i = 0
                while i < len(batch):
                    entry = batch[i]
                    if entry.batch in skip_batches:
                        outcomes.append((entry, None, None))
                        i += 1
                        continue
                    run = self._usage_run(batch, i, skip_batches)
                    if len(run) > 1 and self._apply_usage_run(run, ctx, outcomes):
                        i += len(run)
                        continue
                    outcomes.append(self._apply_one(entry, ctx))
                    i += 1
                now = time_text(utcnow())
                for marker in markers - skip_batches:
                    conn.sql(
                        "INSERT INTO spool_applied (id, applied_at) VALUES (?, ?)", (marker, now)
                    )
        except Exception as exc:
            self._refused(exc)
            return
        # Committed.
        self.stats["transactions"] += 1
        self.stats["ops"] += len(batch)
        self._ids.update(ctx.new_ids)
        self._writes = []
        sources = {e.source for e in batch if e.source is not None}
        was_blocked = self._state.kind == BLOCKED
        self._retry_at, self._retry_delay = None, RETRY_FIRST_S
        self._drop_journal()
        for path in sources:
            with contextlib.suppress(OSError):
                path.unlink()
                log.info("spool file %s written to the database and removed", path)
        for entry, result, error in outcomes:
            if error is not None:
                log.warning(
                    "a queued change (%s) failed: %s: %s",
                    entry.op.kind,
                    type(error).__name__,
                    error,
                )
            if isinstance(entry.op, NewUsage) and error is None and result is not None:
                entry.op.record.id = int(result)
            for fut in entry.futures:
                if error is not None:
                    _fail(fut, error)
                elif not fut.done():
                    fut.set_result(result)
        if was_blocked:
            waited = ""
            since = self._state.since
            if since is not None:
                waited = f" after {(datetime.now(UTC) - since).total_seconds():.0f} s"
            log.info("the database took the waiting changes%s", waited)
            self._set_state(OK, detail=f"Everything waiting was saved{waited}.")
        elif self._state.kind != OK:
            self._set_state(OK)

    def _apply_one(
        self, entry: _Entry, ctx: ApplyContext
    ) -> tuple[_Entry, Any, BaseException | None]:
        try:
            with self.db.write():  # a savepoint: a bad change fails alone
                result = entry.op.apply(ctx)
        except Exception as exc:
            if classify(exc) is not Problem.OTHER:
                raise  # locked, full, damaged: the whole batch waits or stops
            return entry, None, exc
        return entry, result, None

    @staticmethod
    def _usage_run(batch: list[_Entry], start: int, skip: set[str]) -> list[_Entry]:
        run = []
        for entry in batch[start:]:
            if not isinstance(entry.op, NewUsage) or entry.batch in skip:
                break
            run.append(entry)
        return run

    def _apply_usage_run(
        self,
        run: list[_Entry],
        ctx: ApplyContext,
        outcomes: list[tuple[_Entry, Any, BaseException | None]],
    ) -> bool:
        """Usage rows in a row: one prepared executemany in one savepoint. False (nothing
        written) when one of them is bad: they are then written one by one."""
        pairs = []
        for entry in run:
            op = entry.op
            assert isinstance(op, NewUsage)
            rec = op.record
            cid = ctx.real_or_none(rec.conversation_id)
            if cid != rec.conversation_id:
                import dataclasses

                rec = dataclasses.replace(rec, conversation_id=cid)
            pairs.append((rec, ctx.real_or_none(op.message_id)))
        try:
            with self.db.write():
                ids = ctx.usage.insert_many(pairs)
        except Exception as exc:
            if classify(exc) is not Problem.OTHER:
                raise
            return False
        outcomes.extend((entry, new_id, None) for entry, new_id in zip(run, ids, strict=True))
        return True

    def _refused(self, exc: BaseException) -> None:
        problem = classify(exc)
        self.stats["refused"] += 1
        if problem is Problem.DAMAGED:
            self._enter_damaged(self.db.error_for(exc))
            return
        if problem is Problem.OTHER:
            # Not the database's condition but a bug or a closed database: fail the batch
            # rather than retry it forever.
            log.error("writing %d queued change(s) failed", len(self._writes), exc_info=exc)
            error = (
                exc
                if isinstance(exc, DatabaseError)
                else DatabaseError(f"could not save: {type(exc).__name__}: {exc}")
            )
            for entry in self._writes:
                for fut in entry.futures:
                    _fail(fut, error)
            self._writes = []
            self._drop_journal()
            return
        self._late = True
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self._retry_max_s)
        detail = _blocked_detail(problem, self.db.path)
        if self._state.kind != BLOCKED:
            log.warning("%s", detail)
        self._write_journal()  # first: whoever hears "blocked" may count on the file
        self._set_state(BLOCKED, problem=problem, detail=detail)

    def _enter_damaged(self, error: DatabaseError) -> None:
        if self._state.kind == DAMAGED:
            return
        log.error("%s", error)
        keep: list[_Entry] = []
        for entry in self._writes:
            if isinstance(entry.op, NewUsage):
                keep.append(entry)  # self-contained: written once the database is usable
            elif entry.source is not None:
                for fut in entry.futures:  # still in its spool file: read again next start
                    _fail(fut, error)
            else:
                for fut in entry.futures:
                    _fail(fut, error)
        self._writes = keep
        self._journal_dirty = True
        self._write_journal()
        self._set_state(DAMAGED, detail=str(error), error=error)

    # ---- the spool journal --------------------------------------------------------------

    def _journal_path(self) -> Path | None:
        if self.spool_dir is None or self.session_id is None:
            return None
        return self.spool_dir / f"{self.session_id}.json"

    def _write_journal(self) -> int:
        """Keep the waiting changes (those not already in a spool file) in this session's
        spool file; returns how many it holds."""
        path = self._journal_path()
        if path is None or not self._journal_dirty:
            return 0
        ops = [e.op for e in self._writes if e.op.spoolable and e.source is None]
        if not ops:
            self._drop_journal()
            return 0
        batch = spool_files.new_batch_id()
        try:
            n = spool_files.write_spool(path, self.session_id or "", batch, ops)
        except OSError as exc:
            log.error("could not keep waiting changes in %s: %s", path, exc)
            return 0
        self._journal_batch = batch
        self._journal_dirty = False
        return n

    def _drop_journal(self) -> None:
        path = self._journal_path()
        self._journal_batch = None
        self._journal_dirty = bool(self._writes)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    # ---- states, waiters, closing ---------------------------------------------------------

    def _set_state(
        self,
        kind: str,
        *,
        problem: Problem | None = None,
        detail: str = "",
        error: DatabaseError | None = None,
    ) -> None:
        since = self._state.since if self._state.kind == kind else None
        if kind in (BLOCKED, DAMAGED, UNAVAILABLE) and since is None:
            since = datetime.now(UTC)
        self._state = DbState(kind, problem, detail, len(self._writes), since, error)
        with self._listener_lock:
            listeners = list(self._listeners)
            waiters = list(self._blocked_waiters) if kind != OK and kind != STARTING else []
        for loop, blocked in waiters:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                loop.call_soon_threadsafe(_set_if_pending, blocked)
        for callback in listeners:
            try:
                callback(self._state)
            except Exception:
                log.exception("a database state listener failed")

    def report_damage(self, error: DatabaseDamaged) -> None:
        """Owner thread: a check found the file damaged (the state changes to ``damaged``)."""
        assert self.on_owner_thread()
        self._enter_damaged(error)

    def set_started(self, error: DatabaseError | None) -> None:
        """Owner thread: opening finished (``error`` when it failed)."""
        self._open_error = None
        if error is None:
            self._set_state(OK)
        elif isinstance(error, DatabaseDamaged):
            self._open_error = error
            self._set_state(DAMAGED, detail=str(error), error=error)
        else:
            self._open_error = error
            self._set_state(UNAVAILABLE, detail=str(error), error=error)
            for entry in self._writes:
                if not isinstance(entry.op, NewUsage):
                    for fut in entry.futures:
                        _fail(fut, error)
            self._writes = [e for e in self._writes if isinstance(e.op, NewUsage)]

    def _check_drain_waiters(self) -> None:
        if not self._drain_waiters:
            return
        now = time.monotonic()
        left = []
        for deadline, fut in self._drain_waiters:
            if not self._writes:
                fut.set_result(True)
            elif now >= deadline or self._state.kind in (DAMAGED, UNAVAILABLE):
                fut.set_result(False)
            else:
                left.append((deadline, fut))
        self._drain_waiters = left

    def _finish(self, deadline: float, fut: Future[CloseReport]) -> None:
        """Close: keep trying until ``deadline``, spool the rest, close the database."""
        while self._writes and self._state.kind not in (DAMAGED, UNAVAILABLE, STARTING):
            if self._may_try():
                self._flush()
                continue
            pause = (self._retry_at or 0) - time.monotonic()
            if time.monotonic() + max(pause, 0) > deadline:
                break
            time.sleep(max(pause, 0.0))
        spooled, lost, path, what = 0, 0, None, ""
        if self._writes:
            self._journal_dirty = True
            what = describe_ops(e.op for e in self._writes if e.op.spoolable and e.source is None)
            spooled = self._write_journal()
            path = self._journal_path() if spooled else None
            from_files = [e for e in self._writes if e.source is not None]
            lost = len(self._writes) - spooled - len(from_files)
            error: DatabaseError = (
                WriteSpooled(f"kept in {path} until the next start")
                if spooled
                else WriteLost("the database refused it and no spool file could be written")
            )
            for entry in self._writes:
                for f in entry.futures:
                    _fail(f, error)
            self._writes = []
        for _, waiter in self._drain_waiters:
            waiter.set_result(False)
        self._drain_waiters = []
        last = self._state
        try:
            self.db.close()
        except Exception:
            log.exception("closing the database failed")
        self._closed.set()
        self._set_state(CLOSED)
        # Jobs that raced with closing get an answer rather than waiting forever.
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            for f in _futures_of(job):
                _fail(f, DatabaseError("the database is closed"))
        fut.set_result(CloseReport(self._late, spooled, path, max(lost, 0), last, what))


_NOUNS = {
    "new_conversation": ("conversation", "conversations"),
    "new_message": ("message", "messages"),
    "new_usage": ("usage row", "usage rows"),
}


def describe_ops(ops: Iterable[Op]) -> str:
    """What waiting changes are, for a sentence: "1 conversation, 2 messages and 1 usage
    row" (edits of those rows are part of them; other edits are "changes")."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.kind] = counts.get(op.kind, 0) + 1
    parts = []
    for kind, (one, many) in _NOUNS.items():
        n = counts.pop(kind, 0)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    other = sum(counts.values())
    if other and not parts:
        parts.append(f"{other} change{'s' if other != 1 else ''}")
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else ""


def _futures_of(job: Any) -> Iterable[Future[Any]]:
    if isinstance(job, _Entry):
        return job.futures
    if isinstance(job, _Read | _Control):
        return [job.future]
    if isinstance(job, tuple) and len(job) == 3 and isinstance(job[2], Future):
        return [job[2]]
    return []


def _set_if_pending(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _fail(fut: Future[Any], error: BaseException) -> None:
    if not fut.done():
        fut.set_exception(error)


def _blocked_detail(problem: Problem, path: Path) -> str:
    if problem is Problem.BUSY:
        return (
            f"The database {path} is locked by another program; changes wait and are saved "
            "as soon as it is free."
        )
    if problem is Problem.FULL:
        return f"The disk holding {path} is full; changes wait until there is room."
    return f"The database {path} cannot be written; changes wait until it can."


__all__ = [
    "BLOCKED",
    "CLOSED",
    "DAMAGED",
    "OK",
    "STARTING",
    "UNAVAILABLE",
    "CloseReport",
    "DbOwner",
    "DbState",
    "WriteLost",
    "WriteSpooled",
    "new_pid",
]
