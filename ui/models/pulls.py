"""Runs the Models window's pulls: one at a time per host, the rest queued, each cancellable.

Every pull is ``services.pull_model`` consumed on the loop thread through ``bridge.stream``;
Cancel cancels that future, which closes the HTTP stream (Ollama stops and keeps what it
downloaded, so Resume continues from there). The queue outlives the window being hidden:
closing the Models window does not stop a download.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from halext_desktop.routing.backends.ollama_models import PullProgress
from halext_desktop.routing.errors import RouteError
from halext_desktop.storage.logfile import see_the_log
from halext_desktop.ui.models.jobs import JobState, PullJob
from halext_desktop.ui.text import plain

if TYPE_CHECKING:
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)


class PullQueue(QObject):
    """The pulls of every host.

    Signals:
        sig_added(object): a PullJob was queued.
        sig_changed(object): a PullJob's state or progress changed.
        sig_removed(object): a finished PullJob was dismissed.
        sig_finished(str, str): a pull succeeded: route id, the installed model name.
    """

    sig_added = Signal(object)
    sig_changed = Signal(object)
    sig_removed = Signal(object)
    sig_finished = Signal(str, str)

    def __init__(self, services: Services, bridge: Bridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._svc = services
        self._bridge = bridge
        self._jobs: list[PullJob] = []
        self._futures: dict[int, Future[None]] = {}
        self._next_id = 1
        self.closed = False

    # ---- queries ------------------------------------------------------------------------

    def jobs(self, route_id: str | None = None) -> list[PullJob]:
        return [j for j in self._jobs if route_id is None or j.route_id == route_id]

    def active(self, route_id: str, model: str) -> PullJob | None:
        """The queued or running pull of ``model`` on ``route_id``, if any."""
        return next((j for j in self._jobs if j.active and j.same_model(route_id, model)), None)

    def running(self, route_id: str) -> PullJob | None:
        return next(
            (j for j in self._jobs if j.route_id == route_id and j.state is JobState.RUNNING),
            None,
        )

    # ---- actions ------------------------------------------------------------------------

    def enqueue(self, route_id: str, model: str) -> PullJob:
        """Queue a pull (or return the one already queued or running for that model)."""
        model = model.strip()
        existing = self.active(route_id, model)
        if existing is not None:
            return existing
        # A finished row for the same model makes way for the new one.
        for old in [j for j in self._jobs if j.same_model(route_id, model)]:
            self.dismiss(old)
        job = PullJob(self._next_id, route_id, model)
        self._next_id += 1
        self._jobs.append(job)
        self.sig_added.emit(job)
        self._start_next(route_id)
        return job

    def cancel(self, job: PullJob) -> None:
        """Stop a running pull (its stream is closed) or drop a queued one."""
        if not job.active:
            return
        was_running = job.state is JobState.RUNNING
        job.state = JobState.CANCELLED
        future = self._futures.pop(job.id, None)
        if future is not None:
            future.cancel()
        self.sig_changed.emit(job)
        if was_running:
            self._start_next(job.route_id)

    def retry(self, job: PullJob) -> None:
        """Pull again (after a failure or a cancel): Ollama resumes what it has."""
        if job.active or job not in self._jobs:
            return
        job.state = JobState.QUEUED
        job.error = ""
        self.sig_changed.emit(job)
        self._start_next(job.route_id)

    def dismiss(self, job: PullJob) -> None:
        """Forget a finished, failed or cancelled pull."""
        if job.active or job not in self._jobs:
            return
        self._jobs.remove(job)
        self.sig_removed.emit(job)

    def cancel_all(self) -> None:
        """Stop everything: the queued first, so cancelling a running pull starts nothing."""
        for job in self._jobs:
            if job.state is JobState.QUEUED:
                job.state = JobState.CANCELLED
                self.sig_changed.emit(job)
        for job in list(self._jobs):
            self.cancel(job)

    def shutdown(self) -> None:
        """The app is closing: stop every pull (Ollama keeps what it got) and start no more."""
        self.closed = True
        self.cancel_all()

    # ---- running ------------------------------------------------------------------------

    def waiting_for(self, job: PullJob) -> str | None:
        """What a queued job waits for (the model pulled on its host now)."""
        if job.state is not JobState.QUEUED:
            return None
        running = self.running(job.route_id)
        return running.model if running is not None else None

    def _start_next(self, route_id: str) -> None:
        if self.closed or self.running(route_id) is not None:
            return
        job = next(
            (j for j in self._jobs if j.route_id == route_id and j.state is JobState.QUEUED),
            None,
        )
        if job is None:
            return
        job.state = JobState.RUNNING
        job.run += 1
        job.progress = None
        run = job.run
        self.sig_changed.emit(job)
        # Everyone waiting behind it now waits for this one.
        for other in self._jobs:
            if other.route_id == route_id and other.state is JobState.QUEUED:
                self.sig_changed.emit(other)
        self._futures[job.id] = self._bridge.stream(
            lambda: self._svc.pull_model(job.route_id, job.model),
            lambda p: self._on_progress(job, run, p),
            lambda exc: self._on_error(job, run, exc),
            owner=self,
        )

    def _current(self, job: PullJob, run: int) -> bool:
        return job.run == run and job.state is JobState.RUNNING

    def _on_progress(self, job: PullJob, run: int, progress: PullProgress) -> None:
        if not self._current(job, run):
            return  # cancelled meanwhile: a late line changes nothing
        job.progress = progress
        if progress.done:
            job.state = JobState.DONE
            self._futures.pop(job.id, None)
            self.sig_changed.emit(job)
            self.sig_finished.emit(job.route_id, progress.installed_name)
            self._start_next(job.route_id)
            return
        self.sig_changed.emit(job)

    def _on_error(self, job: PullJob, run: int, exc: BaseException) -> None:
        if not self._current(job, run):
            return
        if isinstance(exc, RouteError):
            job.error = plain(exc.one_line())
        else:
            log.error("pulling %s on %s failed", job.model, job.route_id, exc_info=exc)
            job.error = f"Unexpected error ({type(exc).__name__}); {see_the_log()}"
        job.state = JobState.FAILED
        self._futures.pop(job.id, None)
        self.sig_changed.emit(job)
        self._start_next(job.route_id)
