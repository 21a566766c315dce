"""Pulls as the Models window tracks them: one job per (host, model), one running per host,
the others queued. No Qt here (the queue that runs them is ``pulls.PullQueue``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from halext_desktop.routing.backends.ollama_models import PullPhase, PullProgress, full_model_name
from halext_desktop.routing.units import format_bytes, format_duration, format_rate


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (JobState.QUEUED, JobState.RUNNING)


@dataclass(eq=False)
class PullJob:
    """One pull the user asked for.

    Attributes:
        route_id, model: where and what (the name as typed).
        state: where it stands.
        progress: the last progress Ollama reported in this run (None before any).
        error: one line saying why it failed.
        run: counts the runs (Retry/Resume start a new one); late events of an older run are
            dropped.
    """

    id: int
    route_id: str
    model: str
    state: JobState = JobState.QUEUED
    progress: PullProgress | None = None
    error: str = ""
    run: int = 0

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def installed_name(self) -> str:
        return full_model_name(self.model)

    def same_model(self, route_id: str, model: str) -> bool:
        return self.route_id == route_id and self.installed_name == full_model_name(model)


def job_status(job: PullJob, waiting_for: str | None = None) -> str:
    """The one line under a pull: where it stands, in words."""
    p = job.progress
    if job.state is JobState.QUEUED:
        return f"Queued — starts when {waiting_for} is done" if waiting_for else "Queued"
    if job.state is JobState.FAILED:
        return job.error
    if job.state is JobState.CANCELLED:
        got = p.completed if p else 0
        if got:
            return (
                f"Cancelled after {format_bytes(got)} — Ollama keeps what it downloaded; "
                "Resume continues from there"
            )
        return "Cancelled"
    if job.state is JobState.DONE:
        size = f" · {format_bytes(p.total)}" if p and p.total else ""
        return f"Installed {job.installed_name}{size}"
    if p is None or p.phase is PullPhase.MANIFEST:
        return f"Asking the registry for {job.model}…"
    if p.phase is PullPhase.VERIFYING:
        return "Verifying the download…"
    if p.phase is PullPhase.WRITING:
        return "Writing the manifest…"
    if p.phase is PullPhase.CLEANING:
        return "Removing unused layers…"
    parts = [f"{format_bytes(p.completed)} of {format_bytes(p.total)}"]
    if p.bytes_per_second:
        parts.append(format_rate(p.bytes_per_second))
    if p.eta_seconds is not None:
        parts.append(f"{format_duration(p.eta_seconds)} left")
    if p.resumed_bytes:
        parts.append(f"resumed at {format_bytes(p.resumed_bytes)}")
    return " · ".join(parts)


def layer_lines(progress: PullProgress | None) -> list[str]:
    """One line per layer: ``dde5aa3fc5ff  1.9 GB  62 %`` (✓ when whole)."""
    if progress is None:
        return []
    out: list[str] = []
    for layer in progress.layers:
        short = layer.digest.removeprefix("sha256:")[:12]
        if layer.done:
            state = "✓"
        elif layer.total:
            state = f"{100 * layer.completed / layer.total:.0f} %"
        else:
            state = "…"
        resumed = (
            f"  (resumed at {format_bytes(layer.resumed)})"
            if 0 < layer.resumed < layer.total
            else ""
        )
        out.append(f"{short}  {format_bytes(layer.total):>8}  {state}{resumed}")
    return out
