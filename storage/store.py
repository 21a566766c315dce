"""Storage as the app holds it: the database behind its owner thread, and what start-up,
shutdown and a damaged file need.

``Storage`` opens the database on the owner thread (``storage.owner``) — the window is on
screen meanwhile — and then, still there, reads back the spool files of sessions that are
gone, recovers replies a crash left mid-way (``storage.recovery``) and prunes old usage rows.
``close`` writes what waits (or spools it) and says what happened, in a ``CloseReport``.

``Usage`` is the router's usage sink (it queues each row and returns at once) and the
usage reports (coroutines).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.storage import recovery
from halext_desktop.storage import spool as spool_files
from halext_desktop.storage.chats import Conversations
from halext_desktop.storage.db import Database, DatabaseDamaged, DatabaseError, private_folder
from halext_desktop.storage.ops import ApplyContext, Call, NewUsage, new_pid
from halext_desktop.storage.owner import CloseReport, DbOwner, DbState
from halext_desktop.storage.replies import STOP_INTERRUPTED, STOP_TOO_LARGE, ActiveReplies
from halext_desktop.storage.session import Session
from halext_desktop.storage.session import sweep as session_sweep
from halext_desktop.storage.usage import (
    ModelCount,
    ModelErrorRate,
    ModelLatency,
    ModelOutcomes,
    TokenBucket,
    UsageLog,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a usage row may wait to share a transaction with what follows it.
USAGE_WAIT_S = 1.0


@dataclass
class OpenReport:
    """What opening found: spooled changes read back, spool files that could not be used
    (set aside as ``*.bad``), and the recovery of replies a crash left mid-way (a future:
    it runs with the first batch written, after the spooled changes)."""

    replayed: int = 0
    bad_spools: list[Path] = field(default_factory=list)
    recovering: Future[list[int]] | None = None

    def recovered(self, timeout: float | None = 30) -> list[int]:
        """The replies marked interrupted at this start (waits for the database)."""
        return self.recovering.result(timeout) if self.recovering is not None else []


class Usage:
    """The usage log through the database owner.

    As the router's ``UsageSink``, ``record`` queues the row and returns at once (never a
    SQLite call on the router's loop); the row is tied to the reply it belongs to
    (``ActiveReplies``). A request stopped because the app is going away is logged as
    ``interrupted``, and one stopped at the size limit as an ``error`` that says so.
    """

    def __init__(self, owner: DbOwner, replies: ActiveReplies, log: UsageLog | None = None) -> None:
        self._owner = owner
        self._log: UsageLog = log if log is not None else owner.usage
        self._replies = replies

    def __repr__(self) -> str:
        return f"Usage({self._owner!r})"

    def record(self, row: UsageRecord) -> None:
        reply = self._replies.lookup(row.conversation_id)
        message_id = reply.message_id if reply is not None else None
        if reply is not None:
            if reply.stop_reason == STOP_INTERRUPTED and row.status is UsageStatus.CANCELLED:
                row.status = UsageStatus.INTERRUPTED
                row.error = recovery.INTERRUPTED_ERROR
            elif reply.stop_reason == STOP_TOO_LARGE and row.status in (
                UsageStatus.CANCELLED,
                UsageStatus.OK,
            ):
                row.status = UsageStatus.ERROR
                row.error = "The reply passed the size limit; the first part is kept"
        if not row.total_tokens:
            row.total_tokens = (row.prompt_tokens or 0) + (row.response_tokens or 0)
        # Off the reply's path: it joins the transaction of the reply's final state, which
        # follows at once (a read, a flush or closing writes it sooner).
        self._owner.enqueue(NewUsage(row, message_id), within=USAGE_WAIT_S)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(usage_log, *args)`` on the owner thread (a report, a snapshot)."""
        return await self._owner.run(fn, self._log, *args)

    async def recent(self, limit: int | None = 200, **filters: Any) -> list[UsageRecord]:
        return await self._owner.run(self._log.recent, limit, **filters)

    async def requests_by_model(self, since: datetime | None = None) -> list[ModelCount]:
        return await self._owner.run(self._log.requests_by_model, since)

    async def latency_by_model(self, since: datetime | None = None) -> list[ModelLatency]:
        return await self._owner.run(self._log.latency_by_model, since)

    async def error_rate_by_model(self, since: datetime | None = None) -> list[ModelErrorRate]:
        return await self._owner.run(self._log.error_rate_by_model, since)

    async def outcomes_by_model(self, since: datetime | None = None) -> list[ModelOutcomes]:
        return await self._owner.run(self._log.outcomes_by_model, since)

    async def tokens_over_time(
        self, since: datetime | None = None, bucket: str = "hour"
    ) -> list[TokenBucket]:
        return await self._owner.run(self._log.tokens_over_time, since, bucket)

    async def prune(self, retention_days: int) -> int:
        """Delete rows older than ``retention_days``; waits for the database."""

        def prune(_ctx: ApplyContext) -> int:
            return self._log.prune(retention_days)

        if retention_days < 0:
            raise ValueError("retention_days: use 0 (keep forever) or a number of days")
        fut = self._owner.enqueue(Call(prune))
        return int(await _wrap(fut))

    async def clear(self) -> int:
        """Delete every row; waits for the database."""

        def clear(_ctx: ApplyContext) -> int:
            return self._log.clear()

        return int(await _wrap(self._owner.enqueue(Call(clear))))


async def _wrap(fut: Future[T]) -> T:
    import asyncio

    return await asyncio.wrap_future(fut)


class Storage:
    """The database, its owner thread, and the stores the app uses.

    Args:
        db: the database (default: the user's).
        retention_days: usage rows older than this are deleted at start (0: keep).
        background_checks: after opening, check the file (``quick_check``) and make the
            daily backup copy when nothing else waits (the window does; commands do not,
            to stay quick).

    Attributes:
        owner: the ``DbOwner``.
        conversations: ``Conversations``.
        usage: ``Usage`` (also the router's sink).
        replies: the replies in flight (``ActiveReplies``).
        opened: resolves with an ``OpenReport`` once open, or raises ``DatabaseError``.
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        retention_days: int = 0,
        background_checks: bool = False,
    ) -> None:
        self.db = db or Database()
        folder = self.db.path.parent
        self.spool_dir = folder / "spool"
        self.run_dir = folder / "run"
        self.session = Session(self.run_dir)
        private_folder(self.run_dir)
        self.owner = DbOwner(self.db, session_id=self.session.id, spool_dir=self.spool_dir)
        self.replies = ActiveReplies()
        self.conversations = Conversations(self.owner)
        self.usage = Usage(self.owner, self.replies)
        self._retention_days = retention_days
        self._background_checks = background_checks
        self.integrity: Future[str | None] | None = None
        self.opened: Future[OpenReport] = self.owner.control(self._start)

    def __repr__(self) -> str:
        return f"Storage({self.db!r})"

    @property
    def state(self) -> DbState:
        return self.owner.state

    def wait_open(self, timeout: float | None = 60) -> OpenReport:
        """Block until the database is open (start-up of a command, tests).

        Raises:
            DatabaseError: it could not be opened (damaged, locked, read-only...).
        """
        return self.opened.result(timeout)

    # ---- owner thread ----------------------------------------------------------------------

    def _start(self) -> OpenReport:
        try:
            self.db.open()
        except DatabaseError as exc:
            self.owner.set_started(exc)
            raise
        self.owner.set_started(None)
        report = self._after_open()
        if self._background_checks:
            self.integrity = self.owner.when_idle(self._check_and_back_up)
        # Lock files kill -9 left behind (after recovery had its look at them).
        self.owner.when_idle(lambda: session_sweep(self.run_dir, self.session.id))
        # The bytes of attachments whose messages are gone (deleted in an earlier session).
        self.owner.when_idle(self._sweep_attachments)
        return report

    def _sweep_attachments(self) -> int:
        from halext_desktop.storage.attachments import AttachmentStore

        try:
            return AttachmentStore(self.db).sweep()
        except DatabaseError:
            log.warning("attachments not swept: the database is busy", exc_info=True)
            return 0

    def _after_open(self) -> OpenReport:
        report = OpenReport()
        alive = self.session.is_alive
        for path in spool_files.orphaned_spools(self.spool_dir, self.session.id, alive):
            try:
                found = spool_files.read_spool(path)
            except (OSError, ValueError) as exc:
                report.bad_spools.append(spool_files.set_aside(path, str(exc)))
                continue
            mapping: dict[int, int] = {}

            def remap(old: int, mapping: dict[int, int] = mapping) -> int:
                if old not in mapping:
                    mapping[old] = new_pid()
                return mapping[old]

            for op in found.ops:
                self.owner.queue_from_owner(op.remap(remap), batch=found.batch, source=path)
            report.replayed += len(found.ops)
            log.info("queued %d change(s) kept in %s", len(found.ops), path)
        conversations, usage = self.owner.conversations, self.owner.usage
        # Queued after the spool files: a reply that was only in one is recovered too.
        if any(not alive(writer) for _, writer in recovery.live_replies(self.db)) or (
            report.replayed
        ):

            def recover(_ctx: ApplyContext) -> list[int]:
                return recovery.recover_all(conversations, usage, alive)

            report.recovering = self.owner.queue_from_owner(Call(recover))
        if self._retention_days:
            days = self._retention_days

            def prune(_ctx: ApplyContext) -> int:
                return usage.prune(days)

            self.owner.queue_from_owner(Call(prune))
        return report

    def _check_and_back_up(self) -> str | None:
        """Idle work of the window: is the file sound? Then keep a good copy a day."""
        problem = self.db.integrity_problem()
        if problem is not None:
            error = DatabaseDamaged(self.db.path, problem, self.db.newest_backup())
            self.owner.report_damage(error)  # the state says damaged: the window offers a restore
            return problem
        if self.db.backup_is_due():
            try:
                self.db.backup(label="daily", verify=True)
            except DatabaseDamaged as error:
                self.owner.report_damage(error)
                return error.detail
            except (OSError, DatabaseError) as exc:  # a full disk must not stop the app
                log.warning("no daily backup copy: %s", exc)
        return None

    # ---- repairing a damaged database --------------------------------------------------------

    def restore_newest_backup(self) -> Future[Path]:
        """Move the damaged file aside (never deleted), put the newest good copy in its
        place and open it; the future gives where the damaged file went."""

        def restore() -> Path:
            backup = self.db.newest_backup()
            if backup is None:
                raise DatabaseError("There is no backup copy to restore")
            aside = self.db.restore_from(backup)
            self._reopen()
            return aside

        return self.owner.control(restore)

    def start_fresh(self) -> Future[Path]:
        """Move the damaged file aside (never deleted) and start an empty database."""

        def fresh() -> Path:
            aside = self.db.move_aside("damaged")
            self._reopen()
            return aside

        return self.owner.control(fresh)

    def _reopen(self) -> None:
        try:
            self.db.open()
        except DatabaseError as exc:
            self.owner.set_started(exc)
            raise
        self.owner.set_started(None)
        self._after_open()

    # ---- closing -----------------------------------------------------------------------------

    def close(self, timeout: float = 2.0) -> CloseReport:
        """Write what waits (for up to ``timeout``), keep the rest in the spool file, close.
        Safe to call twice."""
        report = self.owner.close(timeout)
        self.session.close()
        return report


def close_message(report: CloseReport, db_path: Path) -> str | None:
    """One sentence for the user about what closing left behind, or None when all is
    written."""
    if report.spooled:
        why = report.state.detail or f"The database {db_path} refused the changes"
        what = report.what or f"{report.spooled} changes"
        verb = "is" if report.spooled == 1 else "are"
        return (
            f"{_first_sentence(why)}, so {what} {verb} kept in {report.spool_path} and will be "
            "saved the next time Halext Desktop opens the database."
        )
    if report.lost:
        return (
            f"{report.lost} change(s) could not be saved to {db_path} nor kept in a spool file "
            f"({report.state.detail or 'see the log'})."
        )
    return None


def _first_sentence(text: str) -> str:
    head = text.split(";")[0].split(". ")[0].strip()
    return head.rstrip(".")


__all__ = ["OpenReport", "Storage", "Usage", "close_message"]
