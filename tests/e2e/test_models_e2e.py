"""Model management through the real main window: the Models window opened from the picker,
the Providers window and the first-run banner; the picker and the open chat follow a pull
or a delete at once. Real widgets (pytest-qt), the real Core on its loop thread, the
protocol test servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import wait
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from halext_desktop.app.gui import build_window
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.ui.main_window import ACTION_MODELS, MainWindow, same_ref
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import ModelSpec, OllamaServer

WAIT = 10_000


@pytest.fixture
def open_window(qtbot: QtBot, make_core: Any) -> Iterator[Callable[..., MainWindow]]:
    opened: list[tuple[MainWindow, Any, LoopThread]] = []

    def factory(**settings: Any) -> MainWindow:
        core = make_core(**settings)
        lt = LoopThread().start()
        window = build_window(core, lt)
        assert isinstance(window, MainWindow)
        qtbot.addWidget(window)
        window.resize(1100, 760)
        window.show()
        opened.append((window, core, lt))
        qtbot.waitUntil(lambda: window._listing is not None, timeout=WAIT)
        return window

    yield factory
    for window, core, lt in opened:
        window.close()
        wait(window.pending_on_close, timeout=10)  # as app.gui.main does
        lt.run(core.aclose(), timeout=5)
        lt.stop()


def picker_refs(window: MainWindow) -> set[str]:
    listing = window.picker.listing()
    return {str(m.ref) for m in listing.models} if listing else set()


def test_a_pull_from_the_picker_updates_the_picker(
    qtbot: QtBot, open_window: Callable[..., MainWindow], ollama_server: OllamaServer
) -> None:
    window = open_window()
    assert "ollama/tinyllama:latest" not in picker_refs(window)
    window.picker.open_popup()
    popup = window.picker.popup
    qtbot.waitUntil(popup.isVisible, timeout=WAIT)
    qtbot.mouseClick(popup.manage_button, Qt.MouseButton.LeftButton)
    models = window._models
    assert models is not None and models.isVisible() and not popup.isVisible()
    page = models.page("ollama")
    qtbot.waitUntil(lambda: bool(page.installed_names()), timeout=WAIT)
    qtbot.keyClicks(page.pull_edit, "tinyllama")
    qtbot.keyClick(page.pull_edit, Qt.Key.Key_Return)
    # As soon as the pull finishes, the picker lists the model.
    qtbot.waitUntil(lambda: "ollama/tinyllama:latest" in picker_refs(window), timeout=WAIT)
    assert ollama_server.find("tinyllama") is not None


def test_first_run_with_an_empty_ollama_gets_a_model_from_the_banner(
    qtbot: QtBot,
    open_window: Callable[..., MainWindow],
    ollama_server: OllamaServer,
    halext_server: HalextServer,
) -> None:
    ollama_server.set_models([])
    ollama_server.set_pullable([ModelSpec("llama3.2:1b", size=1_300_000_000)])
    halext_server.stop()
    window = open_window()
    banner = window.chat_view.banner
    assert banner.text.startswith("Ollama is running but has no models yet")
    assert banner.action_button.text() == "Get a model"
    assert window.picker.current() is None

    qtbot.mouseClick(banner.action_button, Qt.MouseButton.LeftButton)
    models = window._models
    assert models is not None and models.isVisible()
    page = models.page("ollama")
    qtbot.waitUntil(lambda: page.installed_stack.currentWidget() is page.starters, timeout=WAIT)
    qtbot.mouseClick(page.starters.buttons["llama3.2:1b"], Qt.MouseButton.LeftButton)
    # The chat had no model: it takes the one just pulled, and the banner goes.
    qtbot.waitUntil(lambda: window.picker.current() == "ollama/llama3.2:1b", timeout=WAIT)
    assert not banner.isVisible()
    assert "ollama/llama3.2:1b" in picker_refs(window)


def test_deleting_the_open_chats_model_asks_then_the_chat_says_so(
    qtbot: QtBot, open_window: Callable[..., MainWindow], ollama_server: OllamaServer
) -> None:
    window = open_window()
    window.use_model("ollama/qwen2.5:7b")
    models = window.open_models("ollama")
    page = models.page("ollama")
    qtbot.waitUntil(lambda: "qwen2.5:7b" in page.installed_names(), timeout=WAIT)
    page.select_model("qwen2.5:7b")
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert page.confirm.warning.text() == (
        "⚠ The open chat uses this model — it will need another model."
    )
    with qtbot.waitSignal(models.sig_models_changed, timeout=WAIT):
        qtbot.mouseClick(page.confirm.confirm_button, Qt.MouseButton.LeftButton)
    banner = window.chat_view.banner
    qtbot.waitUntil(lambda: banner.isVisible() and "qwen2.5:7b" in banner.text, timeout=WAIT)
    assert banner.text == "qwen2.5:7b is no longer on ollama — pick another model for this chat."
    assert banner.action_button.text() == "Pick a model"
    assert "ollama/qwen2.5:7b" not in picker_refs(window)
    # A model the chat does not use is deleted without that warning.
    page.select_model("qwen3:4b")
    qtbot.waitUntil(lambda: page.selected_model() == "qwen3:4b", timeout=WAIT)
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert not page.confirm.warning.isVisible()


def test_use_in_chat_picks_the_model_for_the_open_chat(
    qtbot: QtBot, open_window: Callable[..., MainWindow]
) -> None:
    window = open_window()
    models = window.open_models()
    page = models.page("ollama")
    qtbot.waitUntil(lambda: "qwen3:4b" in page.installed_names(), timeout=WAIT)
    page.select_model("qwen3:4b")
    qtbot.mouseClick(page.use_button, Qt.MouseButton.LeftButton)
    assert window.picker.current() == "ollama/qwen3:4b"
    assert window.model_in_use("ollama/qwen3:4b") == "The open chat uses this model"
    assert window.model_in_use("ollama/qwen2.5:7b") is None
    assert same_ref("ollama/llama3.2", "ollama/llama3.2:latest")
    assert not same_ref("ollama/llama3.2", "ollama@studio/llama3.2")


def test_providers_manage_and_the_header_open_the_models_window(
    qtbot: QtBot, open_window: Callable[..., MainWindow]
) -> None:
    window = open_window()
    providers = window.open_providers()
    qtbot.mouseClick(providers.manage_button("ollama"), Qt.MouseButton.LeftButton)
    models = window._models
    assert models is not None and models.isVisible()
    assert models.current_page() is models.page("ollama")
    models.close()
    providers.close()
    qtbot.mouseClick(window.models_button, Qt.MouseButton.LeftButton)
    assert models.isVisible()
    window._on_banner_action(ACTION_MODELS)
    assert models.isVisible()


def test_closing_the_main_window_stops_a_pull(
    qtbot: QtBot, open_window: Callable[..., MainWindow], ollama_server: OllamaServer
) -> None:
    window = open_window()
    pause = ollama_server.pause_after(3)
    models = window.open_models()
    page = models.page("ollama")
    page.pull("tinyllama")
    qtbot.waitUntil(pause.reached.is_set, timeout=WAIT)
    window.close()
    ollama_server.wait_closed_early()  # the download's stream was closed, not left running
