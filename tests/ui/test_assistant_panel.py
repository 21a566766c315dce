"""The assistants dialog driven like a user would, against the Ollama test server through a
real Router, Bridge and LoopThread (no fakes between the widgets and the HTTP server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.routing.assistants import (
    SCHEMAS,
    AssistantOutcome,
    EventInput,
    NoteInput,
    TaskInput,
    build_messages,
    schema_for,
)
from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.errors import ErrorKind
from halext_desktop.routing.policy import Policy
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.router import Router
from halext_desktop.routing.types import ModelListing, UsageStatus
from halext_desktop.routing.usage_sink import MemoryUsageSink
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.assistant_panel import AssistantDialog, AssistantPage
from halext_desktop.ui.bridge import Bridge
from halext_desktop.ui.text import plain
from tests.helpers.fake_services import FakeServices
from tests.servers.ollama_server import OllamaServer

# The offscreen platform warns that it cannot propagate a shown window's size hints.
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

WAIT_MS = 10_000


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        yield server
    assert server.errors == [], f"ollama test server errors: {server.errors}"


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread().start()
    yield lt
    lt.stop()


@pytest.fixture
def sink() -> MemoryUsageSink:
    return MemoryUsageSink()


@pytest.fixture
def services(
    ollama: OllamaServer, loop_thread: LoopThread, sink: MemoryUsageSink
) -> Iterator[FakeServices]:
    settings = Settings(None, env={})

    def policy() -> Policy:
        return Policy(disable_cloud=settings.disable_cloud, offline=settings.offline)

    router = Router({"ollama": OllamaBackend("local", ollama.url, is_default=True)}, policy, sink)
    yield FakeServices(settings, router=router)
    loop_thread.run(router.aclose(), timeout=10)


@pytest.fixture
def listing(services: FakeServices, loop_thread: LoopThread) -> ModelListing:
    return loop_thread.run(services.router.list_models(), timeout=10)


@pytest.fixture
def dialog(
    qtbot: QtBot, services: FakeServices, loop_thread: LoopThread, listing: ModelListing
) -> Iterator[AssistantDialog]:
    bridge = Bridge(loop_thread)
    dlg = AssistantDialog(services, bridge, lambda: listing)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    yield dlg
    dlg.close()


def _run(qtbot: QtBot, page: AssistantPage) -> AssistantOutcome:
    with qtbot.waitSignal(page.sig_finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    outcome = blocker.args[0]
    assert isinstance(outcome, AssistantOutcome), outcome
    return outcome


def _expected(server: OllamaServer, model: str, kind: str, data: Any) -> dict[str, Any]:
    msgs = [{"role": m.role, "content": m.content} for m in build_messages(kind, data)]
    return json.loads(server.expected_reply(model, msgs, schema_for(kind)))


def test_task_tab_runs_and_fills_the_lists(
    qtbot: QtBot,
    dialog: AssistantDialog,
    ollama: OllamaServer,
    sink: MemoryUsageSink,
    listing: ModelListing,
) -> None:
    page = dialog.show_kind("task")
    assert dialog.tabs.currentWidget() is page
    # Its own selector, defaulting to the app default (here: the first local model listed).
    first = str(listing.models[0].ref)
    assert page.picker.current() == first

    qtbot.keyClicks(page.title_edit, "Write the report")
    qtbot.keyClicks(page.description_edit, "Q3 numbers")
    outcome = _run(qtbot, page)

    assert outcome.result is not None, outcome.problem()
    expected = _expected(
        ollama, ModelRef.parse(first).model, "task", TaskInput("Write the report", "Q3 numbers")
    )
    assert page.lists["subtasks"].items() == expected["subtasks"]
    assert page.lists["labels"].items() == expected["labels"]
    assert page.priority_combo.currentText() == expected["priority"]
    assert page.hours_spin.value() == pytest.approx(expected["estimated_hours"])
    assert page.reasoning_edit.text() == expected["priority_reasoning"]
    assert page.error_label.isHidden() and page.raw_box.isHidden()
    assert page.run_button.text() == "Run"
    assert "AI •" in page.status_label.text()
    assert [r.endpoint for r in sink.rows] == ["assist:task:/api/chat"]
    assert ollama.requests_to("/api/chat")[0].json["format"] == SCHEMAS["task"]

    # The lists are editable and the Copy button copies what is shown now.
    subtasks = page.lists["subtasks"]
    item = subtasks.list_widget.item(0)
    assert item.flags() & Qt.ItemFlag.ItemIsEditable
    item.setText("My own first step")
    with qtbot.waitSignal(subtasks.sig_copied, timeout=WAIT_MS) as copied:
        qtbot.mouseClick(subtasks.copy_button, Qt.MouseButton.LeftButton)
    text = "\n".join(f"- {s}" for s in ["My own first step", *expected["subtasks"][1:]])
    assert copied.args[0] == text
    assert QGuiApplication.clipboard().text() == text
    labels = page.lists["labels"]
    qtbot.mouseClick(labels.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == ", ".join(expected["labels"])


def test_unparseable_reply_shows_message_and_raw_text(
    qtbot: QtBot, dialog: AssistantDialog, ollama: OllamaServer
) -> None:
    raw = "I'd suggest starting early and splitting the work into parts."
    ollama.queue_reply(raw)
    page = dialog.show_kind("task")
    qtbot.keyClicks(page.title_edit, "Plan the move")
    outcome = _run(qtbot, page)

    assert outcome.result is None and outcome.parse_error is not None
    assert not page.error_label.isHidden()
    assert "could not be read as task suggestions" in page.error_label.text()
    assert "contains no JSON object" in page.error_label.text()
    assert not page.raw_box.isHidden() and page.raw_box.isReadOnly()
    assert page.raw_box.toPlainText() == raw
    assert page.lists["subtasks"].items() == []

    # A good run afterwards clears the error.
    outcome = _run(qtbot, page)
    assert outcome.result is not None
    assert page.error_label.isHidden() and page.raw_box.isHidden()


def test_a_rejected_schema_falls_back_to_json_mode_and_says_so(
    qtbot: QtBot,
    dialog: AssistantDialog,
    ollama: OllamaServer,
    sink: MemoryUsageSink,
    listing: ModelListing,
) -> None:
    ollama.set_formats("json")  # an Ollama-compatible server that takes only "json"
    page = dialog.show_kind("note")
    current = page.picker.current()
    assert current is not None
    model = ModelRef.parse(current).model
    qtbot.keyClicks(page.text_edit, "Call Bob about the lease.")
    answer = _expected(ollama, model, "note", NoteInput("Call Bob about the lease."))
    ollama.queue_reply(json.dumps(answer))  # the model follows the schema in the prompt
    outcome = _run(qtbot, page)

    assert outcome.result is not None, outcome.problem()
    assert page.error_label.isHidden()
    assert page.lists["tags"].items() == answer["tags"]
    assert (
        "⚠ The server does not take a JSON schema as the output format; JSON mode was used"
        in page.status_label.text()
    )
    assert [r.json.get("format") for r in ollama.requests_to("/api/chat")] == [
        SCHEMAS["note"],
        "json",
    ]
    assert [r.status for r in sink.rows] == [UsageStatus.ERROR, UsageStatus.OK]

    # With no format at all the prompt alone asks for the JSON, and the panel says so.
    ollama.set_formats("none")
    ollama.queue_reply(json.dumps(answer))
    outcome = _run(qtbot, page)
    assert outcome.result is not None, outcome.problem()
    assert "the prompt alone asked for the JSON" in page.status_label.text()


def test_route_failure_shows_the_error_line(
    qtbot: QtBot, dialog: AssistantDialog, sink: MemoryUsageSink
) -> None:
    page = dialog.show_kind("note")
    page.set_model("ollama/not-installed:1b")
    qtbot.keyClicks(page.text_edit, "Call Bob about the lease.")
    outcome = _run(qtbot, page)
    assert outcome.error is not None and outcome.error.kind is ErrorKind.MODEL_NOT_FOUND
    # One sentence as the core words it, the command quoted rather than in backticks.
    assert page.error_label.text() == plain(outcome.error.one_line())
    assert "`" not in page.error_label.text()
    assert page.raw_box.isHidden()
    assert [(r.endpoint, r.status) for r in sink.rows] == [
        ("assist:note:/api/chat", UsageStatus.ERROR)
    ]


def test_event_tab_and_independent_model_selectors(
    qtbot: QtBot, dialog: AssistantDialog, ollama: OllamaServer, listing: ModelListing
) -> None:
    task_page = dialog.page("task")
    page = dialog.show_kind("event")
    other = next(m for m in listing.models if str(m.ref) != task_page.picker.current())
    page.set_model(str(other.ref))
    assert task_page.picker.current() != page.picker.current()
    dialog.refresh_listing()  # a new listing keeps a choice the user made
    assert page.picker.current() == str(other.ref)

    qtbot.keyClicks(page.title_edit, "Dentist")
    qtbot.keyClicks(page.description_edit, "Check-up")
    data = page.read_input()
    assert isinstance(data, EventInput) and data.end is None and data.start.tzinfo is not None
    outcome = _run(qtbot, page)

    assert outcome.result is not None, outcome.problem()
    assert outcome.requested == other.ref
    expected = _expected(ollama, other.ref.model, "event", data)
    assert page.summary_edit.toPlainText() == expected["summary"]
    assert page.lists["preparation_steps"].items() == expected["preparation_steps"]
    assert page.lists["suggestions"].items() == expected["suggestions"]


def test_bad_input_is_refused_before_any_request(
    qtbot: QtBot, dialog: AssistantDialog, ollama: OllamaServer
) -> None:
    page = dialog.show_kind("task")
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    assert not page.running
    assert page.error_label.text() == "The task needs a title"
    event = dialog.show_kind("event")
    qtbot.keyClicks(event.title_edit, "Trip")
    event.has_end.setChecked(True)
    event.end_edit.setDateTime(event.start_edit.dateTime().addSecs(-3600))
    assert not event.run()
    assert event.error_label.text() == "The event ends before it starts"
    assert ollama.requests_to("/api/chat") == []


def test_stop_and_closing_the_dialog_stop_the_stream(
    qtbot: QtBot, dialog: AssistantDialog, ollama: OllamaServer, sink: MemoryUsageSink
) -> None:
    ollama.set_token_delay(0.3)  # server-side pacing: the reply is still streaming
    page = dialog.show_kind("note")
    qtbot.keyClicks(page.text_edit, "A long note to summarise.")
    with qtbot.waitSignal(page.sig_running, timeout=WAIT_MS):
        qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    assert page.running and page.run_button.text() == "Stop"
    qtbot.waitUntil(
        lambda: any(r.lines_sent >= 1 for r in ollama.requests_to("/api/chat")), timeout=WAIT_MS
    )
    with qtbot.waitSignal(page.sig_finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)  # Stop
    outcome = blocker.args[0]
    assert outcome.cancelled and outcome.result is None
    assert page.error_label.text() == "Stopped before the reply was complete"
    assert ollama.wait_closed_early().path == "/api/chat"
    assert page.run_button.text() == "Run"

    # Closing the dialog mid-run stops that run too.
    ollama.clear_requests()
    with qtbot.waitSignal(page.sig_running, timeout=WAIT_MS):
        qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: any(r.lines_sent >= 1 for r in ollama.requests_to("/api/chat")), timeout=WAIT_MS
    )
    with qtbot.waitSignal(page.sig_finished, timeout=WAIT_MS) as blocker:
        dialog.reject()
    assert blocker.args[0].cancelled
    assert ollama.wait_closed_early().path == "/api/chat"
    assert [r.status for r in sink.rows] == [UsageStatus.CANCELLED, UsageStatus.CANCELLED]
