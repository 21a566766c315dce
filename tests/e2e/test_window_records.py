"""What the window says about what happened (issue 8), driven like a user with real widgets:
the chip names only what answered, a redirect and a placeholder are named as such, the
sign-in state is never stale, consent is asked before a password crosses plain http, and a
per-host Ollama key goes to its host. Proven from the servers' request logs."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from halext_desktop.ui.chat_controller import (
    ACTION_CONNECTIONS,
    ACTION_PICK_MODEL,
    ACTION_SIGN_IN,
)
from halext_desktop.ui.chat_model import chip_text, warning_lines
from halext_desktop.ui.main_window import MainWindow
from tests.e2e.test_main_window import (  # noqa: F401 (open_window is a fixture)
    WAIT,
    last_reply,
    open_window,
    send,
    sign_in_through_settings,
    wait_idle,
)
from tests.helpers.egress import EgressGuard
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer


def send_to(qtbot: QtBot, window: MainWindow, ref: str, text: str) -> Any:
    window.picker.set_current(ref)
    send(qtbot, window, text)
    wait_idle(qtbot, window)
    return last_reply(window)


def test_a_blocked_reply_says_not_sent_and_why(qtbot, open_window, halext_server) -> None:  # noqa: F811
    window = open_window(disable_cloud=True)
    sign_in_through_settings(qtbot, window)
    reply = send_to(qtbot, window, "halext/openai:gpt-4o-mini", "keep this local")
    assert chip_text(reply) == "Not sent — cloud providers are disabled"
    assert not chip_text(reply).startswith("AI •")
    # An id halext does not list: refused too, and the banner says why.
    reply = send_to(qtbot, window, "halext/client:1:qwen2.5:7b", "to a node that is gone")
    assert chip_text(reply) == "Not sent — halext does not list this model"
    assert any("default model, which may be a cloud model" in w for w in warning_lines(reply))
    banner = window.chat_view.banner
    assert banner.text == "Nothing was sent: pick another model."
    assert banner.action_id == ACTION_PICK_MODEL
    # Nothing was sent: the reply shows no timing and no token count.
    assert (
        window.chat_view.model.data(
            window.chat_view.model.index(window.chat_view.model.rowCount() - 1),
            window.chat_view.model.StatsRole,
        )
        == ""
    )
    assert halext_server.requests_to("/ai/chat/stream") == []


def test_a_redirecting_ollama_host_names_the_redirect(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    ollama_server: OllamaServer,
) -> None:
    with OllamaServer() as elsewhere:
        window = open_window()
        ollama_server.redirect_to(elsewhere.url)
        reply = send_to(qtbot, window, "ollama/qwen2.5:7b", "the secret plan")
        # The chip names the host as the settings do ("local"), not by its route id.
        view = window.chat_view
        shown = view.model.data(view.model.index(view.model.rowCount() - 1), view.model.ChipRole)
        assert shown == "Failed — local"
        assert warning_lines(reply) == [
            f"⚠ Failed: 127.0.0.1:{ollama_server.port} answered with a redirect to "
            f"{elsewhere.url}/api/chat; not followed — set the address you mean in Settings"
        ]
        banner = window.chat_view.banner
        assert banner.text == "Check the address in Settings → Connections."
        assert banner.action_id == ACTION_CONNECTIONS
        assert elsewhere.requests == []


def test_the_servers_placeholder_is_not_an_answer(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    halext_server: HalextServer,
) -> None:
    window = open_window()
    sign_in_through_settings(qtbot, window)
    reply = send_to(qtbot, window, "halext/ollama:nope", "is anyone there?")
    assert reply.status == "placeholder"
    assert chip_text(reply) == "AI • mock:llama3.1 · halext"  # what answered, honestly
    assert any(
        "halext had no working model for ollama:nope and sent its placeholder text" in line
        for line in warning_lines(reply)
    )
    banner = window.chat_view.banner
    assert banner.text == "Pick a model that works on the server."
    assert banner.action_id == ACTION_PICK_MODEL
    # The next turn does not send the placeholder back as history.
    send_to(qtbot, window, "halext/ollama:llama3.1:8b", "try again")
    history = halext_server.requests_to("/ai/chat/stream")[-1].json["history"]
    assert history == [{"role": "user", "content": "is anyone there?"}]


def test_sign_in_state_is_never_stale(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    halext_server: HalextServer,
) -> None:
    window = open_window(halext_username="dev")  # signing in then changes no setting
    sign_in_through_settings(qtbot, window)
    window.open_settings("connections")
    page = window._settings_dialog.connections
    assert page.sign_status.text() == "Signed in as dev"
    halext_server.expire_all_tokens()
    send_to(qtbot, window, "halext/ollama:llama3.1:8b", "still there?")
    # All three say signed out at once, without waiting for a timer.
    assert window.chat_view.banner.action_id == ACTION_SIGN_IN
    assert window.status.halext_text().startswith("halext: signed out")
    assert page.sign_status.text() == "Not signed in"
    assert not page.sign_out_button.isEnabled()
    # A successful sign-in clears the banner.
    page.password.clear()
    qtbot.keyClicks(page.password, "dev123")
    with qtbot.waitSignal(window._settings_dialog.sig_signed_in, timeout=WAIT):
        qtbot.mouseClick(page.sign_in_button, Qt.MouseButton.LeftButton)
    assert not window.chat_view.banner.isVisible()
    assert window.status.halext_text() == "halext: signed in as dev"


PLAIN = "http://192.0.2.10:8009/api"


@pytest.mark.parametrize("accept", [False, True])
def test_sign_in_over_plain_http_asks_first(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    ollama_server: OllamaServer,
    accept: bool,
) -> None:
    monkeypatch.setenv("HALEXT_URL", PLAIN)  # never confirmed in Settings
    window = open_window()
    window.open_settings("connections")
    dlg = window._settings_dialog
    asked: list[str] = []

    def confirm(title: str, text: str) -> bool:
        asked.append(text)
        return accept

    dlg.confirm = confirm
    page = dlg.connections
    qtbot.keyClicks(page.username, "dev")
    qtbot.keyClicks(page.password, "dev123")
    listing = window._listing
    with EgressGuard([("127.0.0.1", ollama_server.port)]) as guard:
        qtbot.mouseClick(page.sign_in_button, Qt.MouseButton.LeftButton)
        if accept:
            qtbot.waitUntil(lambda: page.sign_status_error.isVisible(), timeout=WAIT)
            # The consent is a route setting: the routes were rebuilt and listed again.
            qtbot.waitUntil(lambda: window._listing is not listing, timeout=WAIT)
    assert "travel unencrypted to 192.0.2.10" in asked[0]
    consents = window._svc.settings.plain_http_ok
    if accept:
        # Consent kept; the password went out (here: to a guard that refused the connection).
        assert consents == ["192.0.2.10:8009"]
        assert ("192.0.2.10", 8009) in guard.connections()
        # Shown, and revocable: after Forget the next sign-in asks again.
        assert "192.0.2.10:8009" in page.plain_http_note.text()
        assert not page.plain_http_note.isHidden()
        listing = window._listing
        qtbot.mouseClick(page.plain_http_forget, Qt.MouseButton.LeftButton)
        assert window._svc.settings.plain_http_ok == [] and page.plain_http_note.isHidden()
        qtbot.waitUntil(lambda: window._listing is not listing, timeout=WAIT)
        page.password.clear()
        qtbot.keyClicks(page.password, "dev123")
        accept = False
        qtbot.mouseClick(page.sign_in_button, Qt.MouseButton.LeftButton)
        assert len(asked) == 2 and window._svc.settings.plain_http_ok == []
    else:
        assert consents == [] and guard.attempts == []
        assert "Not signed in" in page.sign_status_error.text()


def test_an_ollama_host_key_is_stored_and_sent_to_that_host_only(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    ollama_server: OllamaServer,
) -> None:
    with OllamaServer() as studio:
        window = open_window(
            ollama_hosts=[
                {"name": "local", "url": ollama_server.url},
                {"name": "studio", "url": studio.url},
            ]
        )
        window.open_settings("connections")
        dlg = window._settings_dialog
        page = dlg.connections
        page.hosts.selectRow(1)
        qtbot.keyClicks(page.host_key, "studio-secret")
        with qtbot.waitSignal(dlg.sig_routes_rebuilt, timeout=WAIT):
            qtbot.mouseClick(page.host_key_save, Qt.MouseButton.LeftButton)
        assert page.host_key_status("studio") == "key stored in keyring"
        assert page.host_key_status("local") == "no key"
        assert window._svc.secrets.get("ollama-key:studio") == "studio-secret"
        dlg.close()
        ollama_server.clear_requests()
        studio.clear_requests()
        send_to(qtbot, window, "ollama@studio/qwen2.5:7b", "to the studio")
        send_to(qtbot, window, "ollama/qwen2.5:7b", "to this machine")
        assert {r.headers.get("authorization") for r in studio.requests} == {"Bearer studio-secret"}
        assert {r.headers.get("authorization") for r in ollama_server.requests} == {None}


def test_an_assistant_meeting_an_ended_session_updates_the_sign_in_state(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    halext_server: HalextServer,
) -> None:
    # The username already stored: signing in changes no setting, so no rebuild or health
    # check follows that could refresh the status bar on its own.
    window = open_window(halext_username="dev")
    sign_in_through_settings(qtbot, window)
    assert window.status.halext_text() == "halext: signed in as dev"
    halext_server.expire_all_tokens()
    dialog = window.open_assistants("task")
    page = dialog.page("task")
    page.set_model("halext/client:3:qwen2.5:7b")
    qtbot.keyClicks(page.title_edit, "Ship the release")
    with qtbot.waitSignal(page.sig_finished, timeout=WAIT):
        qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    assert window.status.halext_text().startswith("halext: signed out")
    dialog.close()
