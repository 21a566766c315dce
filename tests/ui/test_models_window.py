"""The Models window through the real app wiring: a Core pointed at the Ollama and halext
protocol test servers on 127.0.0.1, every call on a real LoopThread behind a real Bridge,
real widgets driven with pytest-qt (clicks, keys, signals — no sleeps)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import wait
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget
from pytestqt.qtbot import QtBot

from halext_desktop.app.core import Core
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.routing.backends.halext_admin import LIST_FALLBACK_NOTE
from halext_desktop.routing.units import format_bytes
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.bridge import Bridge
from halext_desktop.ui.models.host_page import INSTALLED_COLUMNS, OllamaHostPage
from halext_desktop.ui.models.jobs import JobState
from halext_desktop.ui.models.window import ModelsWindow
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import ModelSpec, OllamaServer

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

WAIT = 10_000
NODES = [
    {"id": 3, "name": "Studio", "models": ["qwen2.5:7b"], "latency_ms": 22},
    {"id": 4, "name": "Attic", "models": [], "status": "offline", "reachable": False},
]


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        yield server
    assert server.errors == [], server.errors


@pytest.fixture
def halext() -> Iterator[HalextServer]:
    with HalextServer(users={"dev": "dev123", "amy": "amy-pw"}, client_nodes=NODES) as server:
        yield server
    assert server.errors == [], server.errors


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread().start()
    yield lt
    lt.stop()


@pytest.fixture
def bridge(loop_thread: LoopThread, qtbot: QtBot) -> Bridge:
    return Bridge(loop_thread)


CoreFactory = Callable[..., Core]


@pytest.fixture
def windows() -> list[ModelsWindow]:
    """The windows a test opened: shut down before their Core closes (as the app does), so
    nothing they still deliver starts a request on a closed Core."""
    return []


@pytest.fixture
def make_core(
    loop_thread: LoopThread,
    ollama: OllamaServer,
    halext: HalextServer,
    windows: list[ModelsWindow],
) -> Iterator[CoreFactory]:
    made: list[Core] = []

    def factory(**overrides: Any) -> Core:
        settings = Settings.load()
        settings.set("halext_url", halext.url)
        settings.set("ollama_hosts", [{"name": "local", "url": ollama.url}])
        for key, value in overrides.items():
            settings.set(key, value)
        core = Core(settings=settings)
        made.append(core)
        return core

    yield factory
    for window in windows:
        # As the app does: stop, then let what is in flight end before the routes close.
        wait(window.shutdown(), timeout=10)
        window.close()
    for core in made:
        loop_thread.run(core.aclose(), timeout=10)
        core.close()


WindowFactory = Callable[..., ModelsWindow]


@pytest.fixture
def open_window(qtbot: QtBot, bridge: Bridge, windows: list[ModelsWindow]) -> WindowFactory:
    """``open_window(core, in_use=None)``: a Models window over ``core``."""

    def factory(core: Core, in_use: Callable[[str], str | None] | None = None) -> ModelsWindow:
        window = ModelsWindow(core, bridge, in_use or (lambda _ref: None))
        qtbot.addWidget(window)
        windows.append(window)
        return window

    return factory


def show_host(qtbot: QtBot, window: ModelsWindow, route_id: str = "ollama") -> OllamaHostPage:
    """Show the window and wait until the host's installed list is on screen."""
    page = window.page(route_id)
    with qtbot.waitSignal(page.sig_installed_shown, timeout=WAIT):
        window.show()
        window.select(route_id)
    return page


def cell_text(table: QTableWidget, row: int, column: int) -> str:
    cell = table.item(row, column)
    assert cell is not None, f"no item at ({row}, {column})"
    return cell.text()


def texts(table: QTableWidget, row: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for c, name in enumerate(INSTALLED_COLUMNS):
        cell = table.item(row, c)
        if name and cell is not None:
            out[name] = cell.text()
    return out


def pull_typed(qtbot: QtBot, page: OllamaHostPage, name: str) -> None:
    page.pull_edit.clear()
    qtbot.keyClicks(page.pull_edit, name)
    qtbot.keyClick(page.pull_edit, Qt.Key.Key_Return)


# ---- installed and cards -------------------------------------------------------------------


def test_installed_models_with_their_details_and_a_card(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    window = open_window(make_core())
    page = show_host(qtbot, window)
    assert page.installed_names() == sorted(m.name for m in ollama.models)
    row = page.installed_names().index("qwen2.5:7b")
    cells = texts(page.installed_table, row)
    assert cells == {
        "Model": "qwen2.5:7b",
        "Size": format_bytes(4_683_087_332),
        "Family": "qwen2",
        "Params": "7.6B",
        "Quant.": "Q4_K_M",
        "Context": "32k",
        "Capabilities": "tools",
        "Modified": cells["Modified"],
    }
    assert cells["Modified"].startswith("2025-10-2")
    embed = texts(page.installed_table, page.installed_names().index("nomic-embed-text:latest"))
    assert embed["Capabilities"] == "embedding"
    total = format_bytes(sum(m.size for m in ollama.models))
    qtbot.waitUntil(lambda: "Ollama 0.12.3" in page.summary.text(), timeout=WAIT)
    assert f"4 models · {total} on disk" in page.summary.text()

    with qtbot.waitSignal(page.sig_card_shown, timeout=WAIT) as shown:
        page.installed_table.setCurrentCell(row, 0)
    assert shown.args == ["qwen2.5:7b"]
    card = page.card
    assert card.card is not None and card.title.text() == "qwen2.5:7b"
    assert card.summary.text() == "qwen2 · 7.6B · Q4_K_M · 32k context · completion, tools"
    spec = ollama.find("qwen2.5:7b")
    assert spec is not None
    assert card.tab_text("Template") == spec.show()["template"]
    assert card.tab_text("License") == spec.show()["license"]
    assert card.tab_text("System") == "(this model has no system)"
    info = {
        cell_text(card.info_table, r, 0): cell_text(card.info_table, r, 1)
        for r in range(card.info_table.rowCount())
    }
    assert info["qwen2.context_length"] == "32,768"
    params = [cell_text(card.params_table, r, 0) for r in range(card.params_table.rowCount())]
    assert params == ["num_keep", "stop"]
    # Use is off for an embedding model (it cannot chat).
    page.select_model("nomic-embed-text:latest")
    assert not page.use_button.isEnabled() and page.delete_button.isEnabled()


def test_a_host_that_is_down_says_why(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    ollama.stop()
    window = open_window(make_core())
    page = show_host(qtbot, window)
    assert page.installed_names() == []
    assert f"Connection refused at 127.0.0.1:{ollama.port}" in page.note.text()
    assert page.installed_stack.currentWidget() is page.installed_split  # no starters: down


# ---- pulls ---------------------------------------------------------------------------------


def test_a_pull_shows_progress_cancels_and_resumes_to_the_end(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    window = open_window(make_core())
    page = show_host(qtbot, window)
    pause = ollama.pause_after(4)
    pull_typed(qtbot, page, "tinyllama")
    row = page.pull_row("tinyllama")
    # Progress as Ollama reports it: bytes of the total, a percentage, the layers.
    qtbot.waitUntil(
        lambda: row.job.progress is not None and row.job.progress.completed > 0, timeout=WAIT
    )
    assert pause.reached.is_set()
    p = row.job.progress
    assert p is not None
    assert row.status_label.text().startswith(
        f"{format_bytes(p.completed)} of {format_bytes(p.total)}"
    )
    assert row.bar.value() == round(p.percent * 10)  # type: ignore[operator]
    assert row.cancel_button.isVisible() and not row.retry_button.isVisible()
    qtbot.mouseClick(row.layers_button, Qt.MouseButton.LeftButton)
    assert row.layers_label.isVisible() and "%" in row.layers_label.text()
    assert window.hosts.currentItem().text().endswith("↓ 1")

    qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    assert row.job.state is JobState.CANCELLED
    ollama.wait_closed_early()  # Cancel closed the stream: Ollama stops downloading
    assert "Cancelled after" in row.status_label.text()
    assert row.retry_button.isVisible() and row.retry_button.text() == "Resume"
    kept = ollama.downloaded_bytes("tinyllama")
    assert kept > 0 and ollama.find("tinyllama") is None

    with (
        qtbot.waitSignal(window.queue.sig_finished, timeout=WAIT) as finished,
        qtbot.waitSignal(window.sig_models_changed, timeout=WAIT),
        qtbot.waitSignal(window.sig_pulled, timeout=WAIT) as pulled,
    ):
        qtbot.mouseClick(row.retry_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["ollama", "tinyllama:latest"]
    assert pulled.args == ["ollama/tinyllama:latest"]
    assert row.job.state is JobState.DONE and row.use_button.isVisible()
    assert row.job.progress is not None and row.job.progress.resumed_bytes == kept
    qtbot.waitUntil(lambda: "tinyllama:latest" in page.installed_names(), timeout=WAIT)
    # The new model is selected, its card shown.
    qtbot.waitUntil(lambda: page.card.title.text() == "tinyllama:latest", timeout=WAIT)
    with qtbot.waitSignal(page.sig_use_model, timeout=WAIT) as use:
        qtbot.mouseClick(row.use_button, Qt.MouseButton.LeftButton)
    assert use.args == ["ollama/tinyllama:latest"]


def test_several_pulls_queue_one_at_a_time(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    window = open_window(make_core())
    page = show_host(qtbot, window)
    pause = ollama.pause_after(2)
    pull_typed(qtbot, page, "tinyllama")
    pull_typed(qtbot, page, "phi3:mini")
    pull_typed(qtbot, page, "tinyllama")  # already queued: not a second download
    assert [r.job.model for r in page.pull_rows()] == ["tinyllama", "phi3:mini"]
    second = page.pull_row("phi3:mini")
    assert second.job.state is JobState.QUEUED
    assert second.status_label.text() == "Queued — starts when tinyllama is done"
    qtbot.waitUntil(pause.reached.is_set, timeout=WAIT)
    assert len(ollama.requests_to("/api/pull")) == 1  # the second waits its turn
    done: list[str] = []
    window.queue.sig_finished.connect(lambda _r, m: done.append(m))
    pause.release()
    qtbot.waitUntil(lambda: len(done) == 2, timeout=WAIT)
    assert done == ["tinyllama:latest", "phi3:mini"]
    assert [r.json["model"] for r in ollama.requests_to("/api/pull")] == ["tinyllama", "phi3:mini"]
    qtbot.waitUntil(lambda: {"tinyllama:latest", "phi3:mini"} <= set(page.installed_names()),
                    timeout=WAIT)  # fmt: skip
    # A queued pull can be dropped before it starts.
    pause = ollama.pause_after(1)
    first = page.pull("llama3.2")
    queued = page.pull("qwen3:4b")
    assert first is not None and queued is not None
    window.queue.cancel(queued)
    assert queued.state is JobState.CANCELLED
    qtbot.waitUntil(pause.reached.is_set, timeout=WAIT)
    pause.release()
    qtbot.waitUntil(lambda: first.state is JobState.DONE, timeout=WAIT)
    assert [r.json["model"] for r in ollama.requests_to("/api/pull")][-1] == "llama3.2"


def test_a_failed_pull_is_one_line_with_retry(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    window = open_window(make_core())
    page = show_host(qtbot, window)
    pull_typed(qtbot, page, "no-such-model")
    row = page.pull_row("no-such-model")
    qtbot.waitUntil(lambda: row.job.state is JobState.FAILED, timeout=WAIT)
    text = row.status_label.text()
    assert "\n" not in text
    assert text.startswith("There is no model named 'no-such-model' to pull")
    assert row.retry_button.isVisible() and row.retry_button.text() == "Retry"
    assert row.dismiss_button.isVisible() and not row.cancel_button.isVisible()
    qtbot.mouseClick(row.dismiss_button, Qt.MouseButton.LeftButton)
    assert page.pull_rows() == [] and not page.downloads.isVisible()
    # An empty name is not sent.
    qtbot.keyClick(page.pull_edit, Qt.Key.Key_Return)
    assert page.note.text().startswith("Type a model name")
    assert len(ollama.requests_to("/api/pull")) == 1


def test_a_host_with_no_models_offers_starters_one_click_each(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    ollama.set_models([])
    ollama.set_pullable([ModelSpec("gemma3:1b", family="gemma3", size=815_000_000)])
    window = open_window(make_core())
    page = show_host(qtbot, window)
    assert page.installed_stack.currentWidget() is page.starters
    assert page.starters.buttons["gemma3:1b"].toolTip() == "Pull gemma3:1b (~815 MB)"
    with qtbot.waitSignal(window.sig_pulled, timeout=WAIT) as pulled:
        qtbot.mouseClick(page.starters.buttons["gemma3:1b"], Qt.MouseButton.LeftButton)
    assert pulled.args == ["ollama/gemma3:1b"]
    qtbot.waitUntil(lambda: page.installed_names() == ["gemma3:1b"], timeout=WAIT)
    assert page.installed_stack.currentWidget() is page.installed_split


# ---- delete --------------------------------------------------------------------------------


def test_delete_asks_first_says_what_it_frees_and_updates(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    window = open_window(make_core())
    page = show_host(qtbot, window)
    page.select_model("qwen2.5:7b")
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    bar = page.confirm
    assert bar.isVisible()
    assert bar.question.text() == "Delete qwen2.5:7b from Ollama local? It frees up to 4.7 GB."
    assert not bar.warning.isVisible()
    qtbot.mouseClick(bar.cancel_button, Qt.MouseButton.LeftButton)
    assert not bar.isVisible() and ollama.requests_to("/api/delete") == []
    # The Delete key on the list asks the same question.
    qtbot.keyClick(page.installed_table, Qt.Key.Key_Delete)
    assert bar.isVisible() and bar.question.text().startswith("Delete qwen2.5:7b")
    qtbot.mouseClick(bar.cancel_button, Qt.MouseButton.LeftButton)

    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    with (
        qtbot.waitSignal(page.sig_deleted, timeout=WAIT),
        qtbot.waitSignal(window.sig_models_changed, timeout=WAIT) as changed,
    ):
        qtbot.mouseClick(bar.confirm_button, Qt.MouseButton.LeftButton)
    assert changed.args == ["ollama"]
    assert ollama.find("qwen2.5:7b") is None
    assert page.note.text() == "Deleted qwen2.5:7b — freed up to 4.7 GB."
    qtbot.waitUntil(lambda: "qwen2.5:7b" not in page.installed_names(), timeout=WAIT)


def test_a_model_the_open_chat_uses_is_named_before_delete(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    asked: list[str] = []

    def in_use(ref: str) -> str | None:
        asked.append(ref)
        return "The open chat uses this model" if ref == "ollama/llama3.2:latest" else None

    window = open_window(make_core(), in_use)
    page = show_host(qtbot, window)
    page.select_model("llama3.2:latest")
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert asked == ["ollama/llama3.2:latest"]
    assert page.confirm.warning.isVisible()
    assert page.confirm.warning.text() == (
        "⚠ The open chat uses this model — it will need another model."
    )
    # Esc on the bar (or its focused Cancel) never deletes.
    qtbot.keyClick(page.confirm, Qt.Key.Key_Escape)
    assert not page.confirm.isVisible() and ollama.find("llama3.2") is not None


def test_a_failed_delete_is_one_line(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    window = open_window(make_core())
    page = show_host(qtbot, window)
    page.select_model("qwen3:4b")
    ollama.fail_next(500, "permission denied", path="/api/delete")
    with qtbot.waitSignal(page.sig_failed, timeout=WAIT) as failed:
        page.ask_delete("qwen3:4b")
        qtbot.mouseClick(page.confirm.confirm_button, Qt.MouseButton.LeftButton)
    assert failed.args[0].startswith(
        f"Ollama on 127.0.0.1:{ollama.port} failed to delete 'qwen3:4b': permission denied"
    )
    assert page.delete_button.isEnabled() and ollama.find("qwen3:4b") is not None


# ---- loaded --------------------------------------------------------------------------------


def test_loaded_models_with_memory_and_expiry_and_unload(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, ollama: OllamaServer
) -> None:
    import ollama as ollama_client

    ollama.set_models([*ollama.models[:3], ModelSpec("big:70b", size=40_000_000_000,
                                                     size_vram=10_000_000_000)])  # fmt: skip
    with ollama_client.Client(host=ollama.url, timeout=5) as c:
        c.chat(model="big:70b", messages=[{"role": "user", "content": "hi"}], keep_alive=-1)
        c.chat(model="qwen2.5:7b", messages=[{"role": "user", "content": "hi"}])
    window = open_window(make_core())
    page = show_host(qtbot, window)
    with qtbot.waitSignal(page.sig_loaded_shown, timeout=WAIT):
        page.tabs.setCurrentIndex(1)
    assert page.loaded_names() == ["big:70b", "qwen2.5:7b"]
    t = page.loaded_table
    big = [cell_text(t, 0, c) for c in range(6)]
    assert big == ["big:70b", "40.0 GB", "75%/25% CPU/GPU", "10.0 GB", "4,096", "until stopped"]
    assert re.fullmatch(r"in \d+ min( \d+ s)?", cell_text(t, 1, 5))  # the 5 min default
    assert "2 models in memory" in page.loaded_note.text()

    with qtbot.waitSignal(page.sig_unloaded, timeout=WAIT):
        qtbot.mouseClick(page.unload_button("big:70b"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.loaded_names() == ["qwen2.5:7b"], timeout=WAIT)
    assert ollama.loaded() == ["qwen2.5:7b"]
    assert ollama.requests_to("/api/generate")[-1].json == {
        "model": "big:70b",
        "keep_alive": 0,
        "stream": False,
    }


# ---- halext nodes --------------------------------------------------------------------------


def signed_in(core: Core, loop_thread: LoopThread, user: str = "dev") -> Core:
    password = {"dev": "dev123", "amy": "amy-pw"}[user]
    loop_thread.run(core.sign_in(user, password, False), timeout=10)
    return core


def open_with_nodes(qtbot: QtBot, open_window: WindowFactory, core: Core) -> ModelsWindow:
    window = open_window(core)
    with qtbot.waitSignal(window.sig_nodes_shown, timeout=WAIT):
        window.reload_nodes()
    return window


def test_an_admin_tests_a_node_and_pulls_and_deletes_on_it(
    qtbot: QtBot,
    make_core: CoreFactory,
    open_window: WindowFactory,
    loop_thread: LoopThread,
    halext: HalextServer,
) -> None:
    window = open_with_nodes(qtbot, open_window, signed_in(make_core(), loop_thread))
    assert window.node_ids() == [3, 4]
    assert not window.nodes_note.isVisible()
    page = window.node_page(3)
    with qtbot.waitSignal(page.sig_models_shown, timeout=WAIT):
        window.show()
        window.select_node(3)
    assert page.model_names() == ["qwen2.5:7b"]
    assert page.where.text() == "node 3 · http://node3.lan:11434 · 22 ms"

    with qtbot.waitSignal(page.sig_tested, timeout=WAIT):
        qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    assert page.note.text() == "Studio answered in 22 ms: 1 model."
    with qtbot.waitSignal(page.sig_info_shown, timeout=WAIT):
        qtbot.mouseClick(page.info_button, Qt.MouseButton.LeftButton)
    assert page.note.text() == "Ollama 0.12.3 at http://node3.lan:11434 · 1 model"

    # The server gives no progress: the page says so and shows a busy bar until the end.
    assert page.no_progress.text() == (
        "halext gives no progress for pulls on a node: it answers when the pull ends."
    )
    halext.delay_first_byte(0.5, path="/admin/ai-clients/3/pull-model")
    with qtbot.waitSignal(window.sig_models_changed, timeout=WAIT) as changed:
        qtbot.keyClicks(page.pull_edit, "tinyllama")
        qtbot.keyClick(page.pull_edit, Qt.Key.Key_Return)
        assert page.busy.isVisible() and not page.pull_button.isEnabled()
        assert "no progress until it ends" in page.note.text()
    assert changed.args == ["halext"]
    assert not page.busy.isVisible() and page.pull_button.isEnabled()
    assert page.note.text() == "Pulled tinyllama:latest on node 3"
    assert page.model_names() == ["qwen2.5:7b", "tinyllama:latest"]

    qtbot.mouseClick(page.action_button("tinyllama:latest", "Delete"), Qt.MouseButton.LeftButton)
    assert page.confirm.question.text() == "Delete tinyllama:latest from Studio (node 3)?"
    with qtbot.waitSignal(page.sig_deleted, timeout=WAIT):
        qtbot.mouseClick(page.confirm.confirm_button, Qt.MouseButton.LeftButton)
    assert page.model_names() == ["qwen2.5:7b"]
    assert halext.node(3)["models"] == ["qwen2.5:7b"]
    with qtbot.waitSignal(page.sig_use_model, timeout=WAIT) as use:
        qtbot.mouseClick(page.action_button("qwen2.5:7b", "Use"), Qt.MouseButton.LeftButton)
    assert use.args == ["halext/client:3:qwen2.5:7b"]


def test_a_wrong_name_on_a_node_is_caught(
    qtbot: QtBot, make_core: CoreFactory, open_window: WindowFactory, loop_thread: LoopThread
) -> None:
    window = open_with_nodes(qtbot, open_window, signed_in(make_core(), loop_thread))
    page = window.node_page(3)
    with qtbot.waitSignal(page.sig_pull_ended, timeout=WAIT) as ended:
        page.pull("ghost:1b")
    assert ended.args[0].startswith("halext reported success, but node 3 does not have 'ghost:1b'")
    assert page.note.text() == ended.args[0]


def test_after_the_list_500_the_nodes_come_from_ai_models(
    qtbot: QtBot,
    make_core: CoreFactory,
    open_window: WindowFactory,
    loop_thread: LoopThread,
    halext: HalextServer,
) -> None:
    halext.set_node(3, last_seen_at="2026-11-25T20:22:17")
    window = open_with_nodes(qtbot, open_window, signed_in(make_core(), loop_thread))
    assert window.node_ids() == [3]  # the offline node is not in /ai/models
    assert window.nodes_note.text() == "halext nodes: " + LIST_FALLBACK_NOTE.format(status=500)
    assert window.node_page(3).list_note.text() == LIST_FALLBACK_NOTE.format(status=500)


def test_ordinary_users_and_offline_mode_never_see_nodes(
    qtbot: QtBot,
    make_core: CoreFactory,
    open_window: WindowFactory,
    loop_thread: LoopThread,
    halext: HalextServer,
) -> None:
    window = open_with_nodes(qtbot, open_window, signed_in(make_core(), loop_thread, "amy"))
    assert window.node_ids() == []
    assert not halext.requests_to("/admin/ai-clients")
    headers = [window.hosts.item(i).text() for i in range(window.hosts.count())]
    assert headers == ["OLLAMA HOSTS", "Ollama local"]

    core = signed_in(make_core(), loop_thread)  # an admin…
    core.settings.set("offline", True)  # …who turned offline mode on
    before = len(halext.requests)
    window = open_with_nodes(qtbot, open_window, core)
    assert window.node_ids() == [] and window.offline_label.isVisibleTo(window)
    assert len(halext.requests) == before  # the window asked halext nothing
