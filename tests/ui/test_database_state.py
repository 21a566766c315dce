"""The window and the database's state: an interrupted reply shown with Retry, a lock held
by another program shown as a note (nothing lost), a damaged file met at start-up — found by
the background check before anything is sent — repaired from the dialog, and a bad
environment value shown in a banner instead of keeping the window from opening."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from halext_desktop.app.core import Core
from halext_desktop.app.gui import build_window
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.storage.db import Database, Problem
from halext_desktop.storage.owner import BLOCKED, OK, DbState
from halext_desktop.storage.paths import db_path
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.chat_controller import ACTION_RETRY
from halext_desktop.ui.chat_model import warning_lines
from halext_desktop.ui.database_state import state_text
from halext_desktop.ui.main_window import MainWindow
from tests.helpers.storage import on_owner, on_plain_thread
from tests.servers.conftest import ollama_server  # noqa: F401 (fixture)
from tests.servers.ollama_server import OllamaServer

WAIT = 10_000
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")


@pytest.fixture
def open_window(
    qtbot: QtBot,
    ollama_server: OllamaServer,  # noqa: F811
) -> Iterator[Callable[..., MainWindow]]:
    opened: list[tuple[MainWindow, Core, LoopThread]] = []

    def factory(*, background_checks: bool = False) -> MainWindow:
        settings = Settings.load()
        settings.set("halext_url", "")
        settings.set("ollama_hosts", [{"name": "local", "url": ollama_server.url}])
        settings.set("default_model", "ollama/qwen2.5:7b")
        core = Core(settings=settings, background_checks=background_checks)
        lt = LoopThread().start()
        win = build_window(core, lt)
        assert isinstance(win, MainWindow)
        qtbot.addWidget(win)
        win.show()
        opened.append((win, core, lt))
        return win

    yield factory
    for win, core, lt in opened:
        win.close()
        lt.run(core.aclose(), timeout=5)
        lt.stop()
        core.close()


def test_state_words() -> None:
    assert state_text(DbState(OK)) == ""
    busy = DbState(BLOCKED, Problem.BUSY, "", 3)
    assert state_text(busy) == (
        "⚠ Database locked by another program — 3 changes waiting, nothing is lost"
    )
    assert state_text(DbState(BLOCKED, Problem.FULL, "", 1)).startswith("⚠ Disk full — 1 change ")


def test_an_interrupted_reply_says_so_and_offers_retry(
    qtbot: QtBot,
    open_window: Callable[..., MainWindow],
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    window = open_window()
    store = on_owner(window._svc).conversations
    conv = store.create("Cut short")
    store.add_message(conv.id, "user", "tell me everything")
    store.add_message(
        conv.id,
        "assistant",
        "Here is the first half",
        status="interrupted",
        model_ref="ollama/qwen2.5:7b",
        created_at=datetime.now(UTC),
    )
    with qtbot.waitSignal(window.controller.sig_loaded, timeout=WAIT):
        window._open_conversation(conv.id)
    banner = window.chat_view.banner
    assert banner.isVisible() and banner.text.startswith("Interrupted — partial reply kept")
    assert banner.action_id == ACTION_RETRY
    reply = window.chat_view.model.item(1)
    assert "⚠ Interrupted — partial reply kept" in warning_lines(reply)
    with qtbot.waitSignal(
        window.controller.sig_streaming, timeout=WAIT, check_params_cb=lambda on: not on
    ):
        window._on_banner_action(ACTION_RETRY)
    rows = store.messages(conv.id)
    assert [m.status for m in rows] == ["ok", "ok"]
    assert rows[1].content == ollama_server.expected_reply(
        "qwen2.5:7b", [{"role": "user", "content": "tell me everything"}]
    )


def _corrupt_in_the_middle() -> None:
    from tests.storage.test_owner import corrupt_fts

    corrupt_fts(db_path())


def test_a_damaged_file_is_found_at_start_and_started_fresh_from_the_dialog(
    qtbot: QtBot, open_window: Callable[..., MainWindow]
) -> None:
    def good_copy_then_damage() -> None:
        with Database() as db:
            db.backup("daily", verify=True)  # recent: no copy of the damaged file is tried
        _corrupt_in_the_middle()

    on_plain_thread(good_copy_then_damage)
    window = open_window(background_checks=True)
    # Nobody sent anything: the background check found the damage.
    qtbot.waitUntil(lambda: window.repair.dialog is not None, timeout=WAIT)
    assert "damaged" in window.database_state.text()
    assert window.repair.fresh_button is not None
    with qtbot.waitSignal(window.repair.sig_repaired, timeout=WAIT) as repaired:
        window.repair.fresh_button.click()
    assert repaired.args == ["fresh"]
    aside = list(db_path().parent.glob("halext.db.damaged-*"))
    assert len(aside) == 1 and aside[0].stat().st_size > 0
    qtbot.waitUntil(lambda: "Damaged file kept as" in window.database_state.text(), timeout=WAIT)
    assert window.sidebar.visible_titles() == []


def test_a_file_that_is_not_a_database_offers_only_a_fresh_start(
    qtbot: QtBot, open_window: Callable[..., MainWindow]
) -> None:
    db_path().write_bytes(b"definitely not sqlite " * 500)
    window = open_window()
    qtbot.waitUntil(lambda: window.repair.dialog is not None, timeout=WAIT)
    dialog = window.repair.dialog
    assert dialog is not None and "no backup copy" in dialog.informativeText()
    assert window.repair.restore_button is None  # no copy to restore: not offered
    dialog.reject()
    qtbot.waitUntil(lambda: window.repair.dialog is None, timeout=WAIT)


def test_a_bad_ollama_host_opens_the_window_with_a_banner(
    ollama_server: OllamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The real start-up in a process of its own (the ollama package's import used to crash
    on such a value): the window opens and says what is wrong, in a banner."""
    import os

    settings = Settings.load()
    settings.set("halext_url", "")
    settings.set("ollama_hosts", [{"name": "local", "url": ollama_server.url}])
    settings.set("default_model", "ollama/qwen2.5:7b")
    env = {**os.environ, "OLLAMA_HOST": "127.0.0.1:99999", "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.window_child", "hello"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = ""
    try:
        assert p.stdout is not None
        for line in p.stdout:
            if line.startswith("banner: "):
                banner = line
                break
    finally:
        p.terminate()
        _, err = p.communicate(timeout=30)
    assert "OLLAMA_HOST='127.0.0.1:99999'" in banner and "ignored" in banner, err
    assert "Traceback" not in err


def test_what_an_earlier_crash_left_is_said_once_at_start(
    qtbot: QtBot, open_window: Callable[..., MainWindow]
) -> None:
    from halext_desktop.storage.conversations import ConversationStore

    def crashed_reply() -> None:
        with Database() as db:
            store = ConversationStore(db)
            conv = store.create("Crashed")
            store.add_message(conv.id, "user", "go on")
            store.add_message(conv.id, "assistant", "half", status="streaming", writer="1-dead")

    on_plain_thread(crashed_reply)
    window = open_window()
    qtbot.waitUntil(
        lambda: "cut short by an earlier crash" in window.database_state.text(), timeout=WAIT
    )
    assert window.database_state.text().startswith("✓ 1 reply cut short")
