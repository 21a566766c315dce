"""The status bar: halext state, Ollama hosts, cloud switch, and the click to Settings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from halext_desktop.routing.types import Health
from halext_desktop.ui.status_bar import StatusBarWidget

# The offscreen platform warns that it cannot propagate size hints of a shown top-level
# widget; that is the test platform's limitation, not the widget's.
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")


@pytest.fixture
def bar(qtbot: QtBot) -> StatusBarWidget:
    widget = StatusBarWidget()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_halext_states(bar: StatusBarWidget) -> None:
    assert bar.halext_text() == "halext: signed out — Sign in…"
    bar.set_halext("signed_in", "dev")
    assert bar.halext_text() == "halext: signed in as dev"
    bar.set_halext("signed_out", None)
    assert bar.halext_text() == "halext: signed out — Sign in…"
    bar.set_halext("error", None, detail="Connection refused at org.halext.org:443")
    assert bar.halext_text() == "halext: unreachable — Check…"
    assert bar.halext_button.toolTip() == "Connection refused at org.halext.org:443"


def test_offline_wins_over_sign_in_until_switched_off(bar: StatusBarWidget) -> None:
    bar.set_halext("signed_in", "dev")
    bar.set_offline(True)
    assert bar.halext_text() == "halext: offline"
    bar.set_halext("signed_out", None)
    assert bar.halext_text() == "halext: offline"
    bar.set_offline(False)
    assert bar.halext_text() == "halext: signed out — Sign in…"
    bar.set_halext("offline", None)
    assert bar.halext_text() == "halext: signed out — Sign in…"  # unknown state


def test_hosts_show_up_and_down_with_names_and_details(bar: StatusBarWidget) -> None:
    bar.set_hosts(
        [
            Health("ollama", True, detail="Ollama 0.12.3 · 7 models · 4 ms"),
            Health("ollama@studio", False, detail="Connection refused at studio.lan:11434"),
            Health("halext", True),  # shown by the halext part, not as a host
        ],
        {"ollama": "http://127.0.0.1:11434/"},
        {"ollama": "local", "ollama@studio": "studio"},
    )
    # Each host by its one name (the settings'), its address and state in the tooltip.
    assert bar.host_texts() == ["· local ● up", "· studio ○ down"]
    tips = [label.toolTip() for label in bar._host_labels]
    assert tips == [
        "Ollama host “local” at 127.0.0.1:11434\nOllama 0.12.3 · 7 models · 4 ms",
        "Ollama host “studio”\nConnection refused at studio.lan:11434",
    ]
    bar.set_hosts([Health("ollama", False)], names={"ollama": "home"})
    assert bar.host_texts() == ["· home ○ down"]


def test_cloud_switch_text(bar: StatusBarWidget) -> None:
    assert bar.cloud_text() == "cloud: on"
    bar.set_cloud(True)
    assert bar.cloud_text() == "cloud: off"
    bar.set_cloud(False)
    assert bar.cloud_text() == "cloud: on"


def test_clicking_the_halext_part_asks_for_settings(qtbot: QtBot, bar: StatusBarWidget) -> None:
    with qtbot.waitSignal(bar.sig_open_settings, timeout=2000):
        qtbot.mouseClick(bar.halext_button, Qt.MouseButton.LeftButton)
