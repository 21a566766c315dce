"""Shared fixtures: an isolated home directory and an in-memory keyring for every test, and
the thread rule of storage enforced: SQLite never on the GUI thread (the main thread of a
test that uses Qt) nor on a thread running an event loop."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from halext_desktop.storage import threads
from tests.helpers.memory_keyring import MemoryKeyring

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Strict in every test (and in every process a test starts): a database call on the GUI
# thread or an event loop raises instead of being logged.
threads.STRICT = True
os.environ[threads.STRICT_ENV] = "1"


@pytest.fixture(autouse=True)
def gui_thread_collector(request: pytest.FixtureRequest) -> Iterator[None]:
    """As in the app (app/gc_timer.py): in a test that drives widgets, cycles are collected
    on the GUI thread between events, and once more after the test's widgets are gone."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("qapp")
    from halext_desktop.app.gc_timer import GuiThreadCollector

    collector = GuiThreadCollector()
    try:
        yield
    finally:
        collector.stop()
        collector.deleteLater()


@pytest.fixture(autouse=True)
def storage_thread_rule(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a test that drives widgets, the main thread is the GUI thread: no SQLite on it."""
    uses_qt = bool({"qtbot", "qapp"} & set(request.fixturenames))
    if uses_qt:
        threads.forbid_current_thread("the GUI thread")
    try:
        yield
    finally:
        threads.allow_current_thread()
        from tests.helpers.fake_services import close_all

        close_all()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own HALEXT_DESKTOP_HOME and no env overrides from the machine."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HALEXT_DESKTOP_HOME", str(home))
    overrides = (
        "HALEXT_URL",
        "OLLAMA_HOST",
        "HALEXT_USERNAME",
        "HALEXT_PASSWORD",
        "OLLAMA_API_KEY",
    )
    for var in overrides:
        monkeypatch.delenv(var, raising=False)
    # Local addresses must never go through a proxy from the machine's environment.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    yield home


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def logging_left_as_found() -> Iterator[None]:
    """A test that runs the CLI's ``main`` configures logging for its process: handlers on its
    captured stderr and on its temporary home's log file. Take them off afterwards, or every
    later warning is written to a closed stream ("--- Logging error ---")."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
