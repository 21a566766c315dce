"""The assistants dialog: Task, Event and Note tabs over the shared Router.

Each tab has its inputs on top, its own model selector (defaulting to the app's default
model), a Run/Stop button, and the results as editable lists with a Copy button each. A
route failure or an unreadable reply shows one clear line and the raw reply in a read-only
box, never a crash. Runs go through ``Bridge.call`` so the GUI thread never waits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QDateTime, Qt, QTime, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.assistants import (
    KINDS,
    PRIORITIES,
    AssistantInput,
    AssistantInputError,
    AssistantKind,
    AssistantOutcome,
    EventInput,
    EventSuggestions,
    NoteInput,
    NoteSummary,
    TaskInput,
    TaskSuggestions,
    check_kind,
    run_assistant,
    validate_input,
)
from halext_desktop.routing.display import chip_label
from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.router import CancelToken
from halext_desktop.routing.types import ModelListing
from halext_desktop.ui.bridge import Bridge
from halext_desktop.ui.model_picker import ModelPickerButton
from halext_desktop.ui.services import Services
from halext_desktop.ui.text import plain

TAB_TITLES: dict[AssistantKind, str] = {"task": "Task", "event": "Event", "note": "Note"}

_ERROR_STYLE = "color: palette(bright-text); background: #b3261e; padding: 6px; border-radius: 4px;"


class EditableList(QWidget):
    """A titled list of short texts the user can edit in place, extend, trim and copy.

    Signals:
        sig_copied(str): the text that was put on the clipboard.
    """

    sig_copied = Signal(str)

    def __init__(self, title: str, *, inline: bool = False, parent: QWidget | None = None) -> None:
        """``inline`` lists (labels, tags) copy as ``a, b, c``; others as ``- item`` lines."""
        super().__init__(parent)
        self._inline = inline
        self.title = title
        self.list_widget = QListWidget(self)
        self.list_widget.setAccessibleName(title)
        self.list_widget.setEditTriggers(
            QListWidget.EditTrigger.DoubleClicked
            | QListWidget.EditTrigger.EditKeyPressed
            | QListWidget.EditTrigger.SelectedClicked
        )
        self.list_widget.setMinimumHeight(72)
        self.copy_button = QToolButton(self)
        self.copy_button.setText("Copy")
        self.copy_button.setAccessibleName(f"Copy {title.lower()}")
        self.copy_button.setToolTip(f"Copy the {title.lower()} to the clipboard")
        self.add_button = QToolButton(self)
        self.add_button.setText("+")
        self.add_button.setAccessibleName(f"Add to {title.lower()}")
        self.add_button.setToolTip("Add an item")
        self.remove_button = QToolButton(self)
        self.remove_button.setText("−")
        self.remove_button.setAccessibleName(f"Remove from {title.lower()}")
        self.remove_button.setToolTip("Remove the selected item")

        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        label = QLabel(f"<b>{title}</b>")
        label.setBuddy(self.list_widget)
        header.addWidget(label)
        header.addStretch(1)
        header.addWidget(self.add_button)
        header.addWidget(self.remove_button)
        header.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.list_widget)

        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.add_button.clicked.connect(self._add_item)
        self.remove_button.clicked.connect(self._remove_selected)

    def _make_item(self, text: str) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        return item

    def set_items(self, items: list[str]) -> None:
        self.list_widget.clear()
        for text in items:
            self.list_widget.addItem(self._make_item(text))

    def items(self) -> list[str]:
        """The current (possibly edited) texts, empty ones left out."""
        out = []
        for row in range(self.list_widget.count()):
            text = self.list_widget.item(row).text().strip()
            if text:
                out.append(text)
        return out

    def text_for_clipboard(self) -> str:
        items = self.items()
        if self._inline:
            return ", ".join(items)
        return "\n".join(f"- {text}" for text in items)

    def copy_to_clipboard(self) -> str:
        text = self.text_for_clipboard()
        QGuiApplication.clipboard().setText(text)
        self.sig_copied.emit(text)
        return text

    def _add_item(self) -> None:
        item = self._make_item("")
        self.list_widget.addItem(item)
        self.list_widget.setCurrentItem(item)
        self.list_widget.editItem(item)

    def _remove_selected(self) -> None:
        row = self.list_widget.currentRow()
        if row >= 0:
            self.list_widget.takeItem(row)


class AssistantPage(QWidget):
    """One assistant (task, event or note): inputs, model selector, Run/Stop, results.

    Signals:
        sig_running(bool): a run started or ended.
        sig_finished(object): a run ended; the AssistantOutcome, or the exception when the
            run could not even start on the loop thread.
    """

    sig_running = Signal(bool)
    sig_finished = Signal(object)

    def __init__(
        self,
        kind: AssistantKind,
        services: Services,
        bridge: Bridge,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.kind: AssistantKind = check_kind(kind)
        self._svc = services
        self._bridge = bridge
        self._cancel: CancelToken | None = None
        self._running = False
        self.last_outcome: AssistantOutcome | None = None
        self.lists: dict[str, EditableList] = {}
        self._names: dict[str, str] = {route.route_id: route.name for route in services.routes()}

        # ---- inputs ------------------------------------------------------------------
        inputs = QFormLayout()
        inputs.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.title_edit = QLineEdit(self)
        self.description_edit = QPlainTextEdit(self)
        self.text_edit = QPlainTextEdit(self)
        self.start_edit = QDateTimeEdit(self)
        self.end_edit = QDateTimeEdit(self)
        self.has_end = QCheckBox("Ends", self)
        if self.kind in ("task", "event"):
            self.title_edit.setPlaceholderText(f"What is the {self.kind}?")
            self.title_edit.setAccessibleName(f"{self.kind.title()} title")
            inputs.addRow("&Title", self.title_edit)
        if self.kind == "event":
            start = QDateTime.currentDateTime().addSecs(3600)
            start.setTime(QTime(start.time().hour(), 0))
            for edit in (self.start_edit, self.end_edit):
                edit.setCalendarPopup(True)
                edit.setDisplayFormat("ddd yyyy-MM-dd HH:mm")
            self.start_edit.setDateTime(start)
            self.end_edit.setDateTime(start.addSecs(3600))
            self.end_edit.setEnabled(False)
            self.has_end.toggled.connect(self.end_edit.setEnabled)
            self.start_edit.setAccessibleName("Event start")
            self.end_edit.setAccessibleName("Event end")
            inputs.addRow("&Starts", self.start_edit)
            end_row = QHBoxLayout()
            end_row.addWidget(self.has_end)
            end_row.addWidget(self.end_edit, 1)
            inputs.addRow("", end_row)
        if self.kind in ("task", "event"):
            self.description_edit.setPlaceholderText("Details (optional)")
            self.description_edit.setAccessibleName(f"{self.kind.title()} description")
            self.description_edit.setFixedHeight(80)
            inputs.addRow("&Description", self.description_edit)
        else:
            self.text_edit.setPlaceholderText("Paste or type the note…")
            self.text_edit.setAccessibleName("Note text")
            self.text_edit.setMinimumHeight(120)
            inputs.addRow("&Note", self.text_edit)

        # ---- model and run -----------------------------------------------------------
        self.picker = ModelPickerButton(self)
        self.picker.set_route_titles(self._names)
        self.picker.setAccessibleName(f"Model for the {self.kind} assistant")
        self.run_button = QPushButton("Run", self)
        self.run_button.setAccessibleName(f"Run the {self.kind} assistant")
        self.run_button.setToolTip("Ask the model (Ctrl+Enter); while running, Stop")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self._on_run_clicked)
        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("Model"))
        model_row.addWidget(self.picker, 1)
        model_row.addWidget(self.run_button)
        shortcut = QShortcut(QKeySequence("Ctrl+Return"), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self._on_run_clicked)

        # ---- status, errors, raw reply ------------------------------------------------
        self.status_label = QLabel("", self)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel("", self)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(_ERROR_STYLE)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setAccessibleName("Assistant error")
        self.error_label.hide()
        self.raw_label = QLabel("Raw reply", self)
        self.raw_box = QPlainTextEdit(self)
        self.raw_box.setReadOnly(True)
        self.raw_box.setAccessibleName("Raw reply")
        self.raw_box.setMaximumHeight(140)
        self.raw_label.hide()
        self.raw_box.hide()

        # ---- results -----------------------------------------------------------------
        results = QWidget(self)
        rl = QVBoxLayout(results)
        rl.setContentsMargins(0, 0, 0, 0)
        self.summary_edit = QPlainTextEdit(results)
        self.summary_edit.setAccessibleName("Summary")
        self.summary_edit.setFixedHeight(72)
        self.priority_combo = QComboBox(results)
        self.priority_combo.addItems(list(PRIORITIES))
        self.priority_combo.setAccessibleName("Priority")
        self.reasoning_edit = QLineEdit(results)
        self.reasoning_edit.setAccessibleName("Why this priority")
        self.hours_spin = QDoubleSpinBox(results)
        self.hours_spin.setRange(0.0, 10_000.0)
        self.hours_spin.setDecimals(2)
        self.hours_spin.setSingleStep(0.5)
        self.hours_spin.setSuffix(" h")
        self.hours_spin.setAccessibleName("Estimated hours")
        if self.kind == "task":
            rl.addWidget(self._add_list("subtasks", "Subtasks"))
            rl.addWidget(self._add_list("labels", "Labels", inline=True))
            form = QFormLayout()
            form.addRow("Priority", self.priority_combo)
            form.addRow("Why", self.reasoning_edit)
            form.addRow("Estimate", self.hours_spin)
            rl.addLayout(form)
        elif self.kind == "event":
            rl.addWidget(QLabel("<b>Summary</b>"))
            rl.addWidget(self.summary_edit)
            rl.addWidget(self._add_list("preparation_steps", "Preparation steps"))
            rl.addWidget(self._add_list("suggestions", "Suggestions"))
        else:
            rl.addWidget(QLabel("<b>Summary</b>"))
            rl.addWidget(self.summary_edit)
            rl.addWidget(self._add_list("tags", "Tags", inline=True))
            rl.addWidget(self._add_list("extracted_tasks", "Tasks"))
        rl.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(results)

        layout = QVBoxLayout(self)
        layout.addLayout(inputs)
        layout.addLayout(model_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.raw_label)
        layout.addWidget(self.raw_box)
        layout.addWidget(scroll, 1)

        # Every page has every field attribute (one code path reads them); the ones this
        # kind does not lay out must not float at the page's corner.
        unused: dict[AssistantKind, tuple[QWidget, ...]] = {
            "task": (
                self.text_edit,
                self.start_edit,
                self.end_edit,
                self.has_end,
                self.summary_edit,
            ),
            "event": (self.text_edit, self.priority_combo, self.reasoning_edit, self.hours_spin),
            "note": (
                self.title_edit,
                self.description_edit,
                self.start_edit,
                self.end_edit,
                self.has_end,
                self.priority_combo,
                self.reasoning_edit,
                self.hours_spin,
            ),
        }
        for widget in unused[self.kind]:
            widget.hide()

    def _add_list(self, key: str, title: str, *, inline: bool = False) -> EditableList:
        widget = EditableList(title, inline=inline, parent=self)
        self.lists[key] = widget
        return widget

    # ---- model selection --------------------------------------------------------------

    def set_listing(self, listing: ModelListing | None) -> None:
        """Show the routes' models in this page's picker; fill in the default if none."""
        if listing is not None:
            self.picker.set_listing(listing, self._svc.policy())
        if not self.picker.current():
            self.apply_default(listing)

    def apply_default(self, listing: ModelListing | None) -> None:
        """The app's default model (the setting, else the first allowed local model)."""
        default: str | None = self._svc.settings.default_model or None
        if default is None:
            ref = self._svc.resolve_default(listing)
            default = str(ref) if ref is not None else None
        if default:
            self.picker.set_current(default)

    def set_route_names(self, names: dict[str, str]) -> None:
        """What each route is called (its host's name in the settings)."""
        self._names = dict(names)
        self.picker.set_route_titles(names)

    def set_model(self, ref: str | None) -> None:
        """Use ``ref`` for the next run (e.g. the model of the chat the user came from); a
        later listing keeps it, like a choice made in the picker."""
        self.picker.set_current(ref)

    # ---- running ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def read_input(self) -> AssistantInput:
        """The input as typed; AssistantInputError when it cannot be used."""
        data: AssistantInput
        if self.kind == "task":
            data = TaskInput(self.title_edit.text(), self.description_edit.toPlainText())
        elif self.kind == "event":
            start = _to_datetime(self.start_edit.dateTime())
            end = _to_datetime(self.end_edit.dateTime()) if self.has_end.isChecked() else None
            # Qt gives naive local times; the prompt names the weekday and the UTC offset.
            data = EventInput(
                self.title_edit.text(),
                start.astimezone(),
                end.astimezone() if end is not None else None,
                self.description_edit.toPlainText(),
            )
        else:
            data = NoteInput(self.text_edit.toPlainText())
        validate_input(self.kind, data)
        return data

    def _on_run_clicked(self) -> None:
        if self._running:
            self.stop()
        else:
            self.run()

    def run(self) -> bool:
        """Start a run with the current inputs and model; False (and a message) if it cannot."""
        if self._running:
            return False
        try:
            data = self.read_input()
        except AssistantInputError as exc:
            self._show_problem(_sentence(str(exc)), "")
            return False
        text = self.picker.current()
        if not text:
            self._show_problem(
                "Choose a model first — none is set and none was found. Start Ollama or sign "
                "in to halext in Settings → Connections.",
                "",
            )
            return False
        try:
            ref = ModelRef.parse(text)
        except ModelRefError as exc:
            self._show_problem(_sentence(str(exc)), "")
            return False
        self._clear_problem()
        self._cancel = CancelToken()
        self._set_running(True)
        self.status_label.setText(f"Asking {ref.model}…")
        self._bridge.call(
            run_assistant(self._svc.router, self.kind, data, ref, self._cancel),
            self._on_done,
            self._on_error,
        )
        return True

    def stop(self) -> None:
        """Stop the run in flight; its outcome still arrives (as cancelled)."""
        if self._cancel is not None:
            self._cancel.cancel()
            self.status_label.setText("Stopping…")

    def _set_running(self, running: bool) -> None:
        self._running = running
        self.run_button.setText("Stop" if running else "Run")
        self.picker.setEnabled(not running)
        self.sig_running.emit(running)

    def _on_done(self, outcome: AssistantOutcome) -> None:
        self._cancel = None
        self.last_outcome = outcome
        self._set_running(False)
        who = outcome.answered or outcome.requested
        chip = (
            chip_label(who, outcome.locality, self._names)
            if outcome.locality is not None
            else str(who)
        )
        notes = "".join(f"\n⚠ {note}" for note in outcome.notes)
        if outcome.result is not None:
            self.show_result(outcome.result)
            self.status_label.setText(f"{chip}{_timing(outcome)}{notes}")
        else:
            self.status_label.setText(f"{chip}{notes}" if outcome.locality else notes.strip())
            self._show_problem(outcome.problem() or "No result", outcome.raw_text)
        self.sig_finished.emit(outcome)

    def _on_error(self, exc: BaseException) -> None:
        self._cancel = None
        self._set_running(False)
        if isinstance(exc, RouteError):
            message = exc.one_line()
        elif isinstance(exc, AssistantInputError):
            message = _sentence(str(exc))
        else:
            message = f"The assistant failed unexpectedly ({type(exc).__name__})"
        self.status_label.setText("")
        self._show_problem(message, "")
        self.sig_finished.emit(exc)

    # ---- showing results --------------------------------------------------------------

    def show_result(self, result: TaskSuggestions | EventSuggestions | NoteSummary) -> None:
        if isinstance(result, TaskSuggestions):
            self.lists["subtasks"].set_items(result.subtasks)
            self.lists["labels"].set_items(result.labels)
            self.priority_combo.setCurrentText(result.priority)
            self.reasoning_edit.setText(result.priority_reasoning)
            self.hours_spin.setValue(result.estimated_hours)
        elif isinstance(result, EventSuggestions):
            self.summary_edit.setPlainText(result.summary)
            self.lists["preparation_steps"].set_items(result.preparation_steps)
            self.lists["suggestions"].set_items(result.suggestions)
        else:
            self.summary_edit.setPlainText(result.summary)
            self.lists["tags"].set_items(result.tags)
            self.lists["extracted_tasks"].set_items(result.extracted_tasks)

    def _show_problem(self, message: str, raw_text: str) -> None:
        self.error_label.setText(plain(message))
        self.error_label.show()
        self.raw_box.setPlainText(raw_text)
        self.raw_label.setVisible(bool(raw_text))
        self.raw_box.setVisible(bool(raw_text))

    def _clear_problem(self) -> None:
        self.error_label.clear()
        self.error_label.hide()
        self.raw_box.clear()
        self.raw_label.hide()
        self.raw_box.hide()


def _to_datetime(value: QDateTime) -> datetime:
    moment = value.toPython()
    assert isinstance(moment, datetime)
    return moment


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _timing(outcome: AssistantOutcome) -> str:
    usage = outcome.usage
    if usage is None or usage.latency_ms is None:
        return ""
    tokens = f" · {'' if usage.tokens_exact else '~'}{usage.total_tokens} tok"
    return f"  ·  {usage.latency_ms / 1000:.1f} s{tokens}"


class AssistantDialog(QDialog):
    """Task, Event and Note assistants in tabs (ux.md "Providers, assistants, usage").

    Args:
        services: the app (router, settings, policy, resolve_default).
        bridge: runs the assistants on the loop thread.
        listing_provider: the latest model listing the window holds (None until loaded).
    """

    def __init__(
        self,
        services: Services,
        bridge: Bridge,
        listing_provider: Callable[[], ModelListing | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._svc = services
        self._listing_provider = listing_provider
        self.setWindowTitle("Assistants")
        self.setObjectName("AssistantDialog")
        self.resize(760, 720)
        self.tabs = QTabWidget(self)
        self.pages: dict[AssistantKind, AssistantPage] = {}
        for kind in KINDS:
            page = AssistantPage(kind, services, bridge, self)
            self.pages[kind] = page
            self.tabs.addTab(page, TAB_TITLES[kind])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)
        self.refresh_listing()

    def page(self, kind: str) -> AssistantPage:
        return self.pages[check_kind(kind)]

    def show_kind(self, kind: str) -> AssistantPage:
        """Bring the ``kind`` tab to the front (the window's "Assistants" actions)."""
        page = self.page(kind)
        self.tabs.setCurrentWidget(page)
        return page

    def refresh_listing(self) -> None:
        """Pull the latest listing from the window into every tab's picker."""
        self.set_listing(self._listing_provider())

    def set_listing(self, listing: ModelListing | None) -> None:
        for page in self.pages.values():
            page.set_listing(listing)

    def set_route_names(self, names: dict[str, str]) -> None:
        for page in self.pages.values():
            page.set_route_names(names)

    def stop_all(self) -> None:
        for page in self.pages.values():
            if page.running:
                page.stop()

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self.refresh_listing()
        super().showEvent(event)

    def done(self, result: int) -> None:
        # Closing the dialog must not leave a model generating for nobody.
        self.stop_all()
        super().done(result)
