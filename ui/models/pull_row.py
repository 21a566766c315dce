"""One download in the Models window: the model, a progress bar, one line of where it
stands (bytes, speed, time left, resumed), its layers on demand, and what can be done now
(Cancel while it runs; Resume or Retry after; Use in chat once installed; Dismiss).

```
tinyllama                      ██████████░░░░░░░░  62 %        [Cancel]
395 MB of 638 MB · 12 MB/s · 20 s left · resumed at 120 MB     Layers ▸
```
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.backends.ollama_models import PullPhase
from halext_desktop.ui.models.jobs import JobState, PullJob, job_status, layer_lines
from halext_desktop.ui.providers.cells import small_button, style_note

_BUSY_PHASES = (PullPhase.MANIFEST, PullPhase.VERIFYING, PullPhase.WRITING, PullPhase.CLEANING)


class PullRow(QFrame):
    """Shows one PullJob; the buttons say what the user wants, the queue does it.

    Signals:
        sig_cancel(object), sig_retry(object), sig_dismiss(object): with the PullJob.
        sig_use(object): "Use in chat" on an installed model.
    """

    sig_cancel = Signal(object)
    sig_retry = Signal(object)
    sig_dismiss = Signal(object)
    sig_use = Signal(object)

    def __init__(self, job: PullJob, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.setObjectName("PullRow")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name_label = QLabel(job.model)
        f = QFont(self.name_label.font())
        f.setBold(True)
        self.name_label.setFont(f)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(220)
        self.bar.setAccessibleName(f"Download of {job.model}")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = small_button("Cancel", f"Stop pulling {job.model}")
        self.retry_button = small_button("Retry", f"Pull {job.model} again")
        self.use_button = small_button("Use in chat", f"Chat with {job.model} now")
        self.dismiss_button = small_button("Dismiss", f"Remove {job.model} from this list")
        self.layers_button = QToolButton()
        self.layers_button.setText("Layers ▸")
        self.layers_button.setCheckable(True)
        self.layers_button.setAutoRaise(True)
        self.layers_button.setToolTip("Show each layer of the download")
        self.layers_label = QLabel("")
        self.layers_label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.layers_label.setVisible(False)

        self.cancel_button.clicked.connect(lambda: self.sig_cancel.emit(self.job))
        self.retry_button.clicked.connect(lambda: self.sig_retry.emit(self.job))
        self.dismiss_button.clicked.connect(lambda: self.sig_dismiss.emit(self.job))
        self.use_button.clicked.connect(lambda: self.sig_use.emit(self.job))
        self.layers_button.toggled.connect(self._toggle_layers)

        top = QHBoxLayout()
        top.setSpacing(10)
        top.addWidget(self.name_label)
        top.addWidget(self.bar, 1)
        for b in (self.cancel_button, self.retry_button, self.use_button, self.dismiss_button):
            top.addWidget(b)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status_label, 1)
        bottom.addWidget(self.layers_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(bottom)
        layout.addWidget(self.layers_label)
        self.update_from(job)

    def update_from(self, job: PullJob, waiting_for: str | None = None) -> None:
        """Redraw from the job's state and last progress."""
        self.job = job
        state, p = job.state, job.progress
        self.name_label.setText(job.model if job.state is not JobState.DONE else job.installed_name)
        self.status_label.setText(job_status(job, waiting_for))
        kind = {JobState.FAILED: "error", JobState.CANCELLED: "warning"}.get(state, "muted")
        style_note(self.status_label, kind, self.palette())
        percent = p.percent if p is not None else None
        busy = state is JobState.RUNNING and (p is None or p.phase in _BUSY_PHASES)
        if state is JobState.DONE:
            self.bar.setRange(0, 1000)
            self.bar.setValue(1000)
            self.bar.setFormat("installed")
        elif busy and (p is None or p.phase is PullPhase.MANIFEST):
            self.bar.setRange(0, 0)  # indeterminate: nothing to count yet
        elif busy:
            self.bar.setRange(0, 1000)
            self.bar.setValue(1000)
            self.bar.setFormat("verifying…" if p and p.phase is PullPhase.VERIFYING else "…")
        elif state is JobState.QUEUED:
            self.bar.setRange(0, 1000)
            self.bar.setValue(0)
            self.bar.setFormat("queued")
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(round((percent or 0) * 10))
            self.bar.setFormat(f"{percent:.0f} %" if percent is not None else "")
        self.bar.setEnabled(state in (JobState.RUNNING, JobState.QUEUED, JobState.DONE))
        self.cancel_button.setVisible(job.active)
        self.retry_button.setVisible(state in (JobState.FAILED, JobState.CANCELLED))
        resumable = p is not None and p.completed > 0
        self.retry_button.setText("Resume" if resumable else "Retry")
        self.use_button.setVisible(state is JobState.DONE)
        self.dismiss_button.setVisible(not job.active)
        lines = layer_lines(p)
        self.layers_button.setVisible(bool(lines))
        self.layers_label.setText("\n".join(lines))
        self.layers_label.setVisible(bool(lines) and self.layers_button.isChecked())

    def _toggle_layers(self, on: bool) -> None:
        self.layers_button.setText("Layers ▾" if on else "Layers ▸")
        self.layers_label.setVisible(on and bool(self.layers_label.text()))
