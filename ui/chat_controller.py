"""Drives one conversation on screen: send, stream, stop, regenerate, edit-and-resend.

It turns the app's Turn events (delivered on the GUI thread by the Bridge) into ChatView
calls, and every failure into an inline banner with one action. It never blocks: all
routing runs on the loop thread.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, Signal

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.router import UNLISTED_REASON, CancelToken
from halext_desktop.routing.types import Delta, Failed, Started
from halext_desktop.storage.logfile import see_the_log
from halext_desktop.storage.turns import TurnBegun, TurnSaved
from halext_desktop.ui.bridge import Bridge, describe_error
from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)

# How many messages to show when a conversation opens; older ones load on scroll.
PAGE = 200

# Banner action ids (ChatView.sig_banner_action -> MainWindow).
ACTION_SIGN_IN = "sign_in"
ACTION_SETTINGS = "settings"
ACTION_RETRY = "retry"
ACTION_PICK_MODEL = "pick_model"
ACTION_CANCEL_EDIT = "cancel_edit"


def banner_for(
    error: RouteError, *, partial: bool, not_sent: str | None = None
) -> tuple[str, str, str | None, str | None]:
    """(kind, text, action label, action id) for a failed request."""
    kept = " The partial reply is kept." if partial else ""
    text = error.message + (f" — {error.hint}" if error.hint else "") + kept
    kind = error.kind
    if not_sent == UNLISTED_REASON:
        # The server does not offer that model (any more): another one is the way out.
        return "warning", text, "Pick a model", ACTION_PICK_MODEL
    if kind is ErrorKind.AUTH_FAILED and error.route_id != "halext":
        # An API key of an Ollama host or an endpoint: fixed in Settings, not by signing in.
        return "error", text, "Open settings", ACTION_SETTINGS
    if kind in (ErrorKind.SIGNED_OUT, ErrorKind.AUTH_FAILED):
        return "error", text, "Sign in again", ACTION_SIGN_IN
    if kind in (ErrorKind.BLOCKED, ErrorKind.NOT_CONFIGURED, ErrorKind.INSECURE):
        return "warning", text, "Open settings", ACTION_SETTINGS
    if kind is ErrorKind.REDIRECT:
        return "error", text, "Open settings", ACTION_SETTINGS
    if kind is ErrorKind.MODEL_NOT_FOUND:
        return "error", text, "Pick a model", ACTION_PICK_MODEL
    if kind is ErrorKind.PLACEHOLDER:
        return "warning", text, "Pick a model", ACTION_PICK_MODEL
    return "error", text, "Retry", ACTION_RETRY


class ChatController(QObject):
    """Owns the conversation being shown and the request in flight.

    Signals:
        sig_streaming(bool): a request started or ended (composer Send/Stop, status).
        sig_conversation_changed(int): a conversation was created or touched (sidebar refresh).
        sig_model_used(str): the model reference the conversation now uses.
        sig_signed_out(): a reply failed because the halext session ended (every place
            that shows the sign-in state must say so now).
    """

    sig_streaming = Signal(bool)
    sig_conversation_changed = Signal(int)
    sig_model_used = Signal(str)
    sig_signed_out = Signal()

    def __init__(
        self,
        services: Services,
        bridge: Bridge,
        chat_view: Any,
        composer: Any,
        current_model: Callable[[], str | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._svc = services
        self._bridge = bridge
        self._view = chat_view
        self._composer = composer
        self._current_model = current_model
        self.conversation_id: int | None = None
        self._handle: Future[None] | None = None
        self._cancel: CancelToken | None = None
        self._streaming_id: int | None = None
        self._editing_id: int | None = None
        self._last_failed_text: str | None = None

    # ---- conversations ------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return self._handle is not None

    def open_conversation(self, conversation_id: int | None) -> None:
        """Show a conversation (None = the empty new-chat state)."""
        if self.streaming:
            self.stop()
        self._editing_id = None
        self._view.clear_banner()
        self.conversation_id = conversation_id
        if conversation_id is None:
            self._view.load([], has_more=False)
            return
        total = self._svc.conversations.count_messages(conversation_id)
        rows = self._svc.conversations.messages(conversation_id, limit=PAGE)
        self._view.load(rows, has_more=total > len(rows))

    def load_more(self, oldest_id: int) -> None:
        """Older messages for the lazily loaded view (the user scrolled to the top)."""
        if self.conversation_id is None:
            return
        rows = self._svc.conversations.messages(
            self.conversation_id, limit=PAGE, before_id=oldest_id
        )
        older_exists = bool(rows) and bool(
            self._svc.conversations.messages(self.conversation_id, limit=1, before_id=rows[0].id)
        )
        self._view.prepend(rows, has_more=older_exists)

    # ---- sending --------------------------------------------------------------------

    def _model_or_banner(self) -> ModelRef | None:
        text = self._current_model()
        if not text:
            self._view.show_banner(
                "warning",
                "No model selected. Pick one from the model menu (Ctrl+K). "
                "Start Ollama for local models, or sign in to halext in Settings.",
                "Pick a model",
                ACTION_PICK_MODEL,
            )
            return None
        try:
            ref = ModelRef.parse(text)
        except ModelRefError as exc:
            self._view.show_banner("error", str(exc), "Pick a model", ACTION_PICK_MODEL)
            return None
        reason = self._svc.router.refusal(ref)
        if reason:
            self._view.show_banner(
                "warning",
                f"{ref.model} was not sent: {reason}. Pick a local model or change Settings → AI.",
                "Pick a model",
                ACTION_PICK_MODEL,
            )
            # Policy is enforced in the router too; this only saves a round trip of UI.
        return ref

    def send(self, text: str) -> bool:
        """Send the composer's text; returns False when nothing was sent (text stays)."""
        if self.streaming or not text.strip():
            return False
        ref = self._model_or_banner()
        if ref is None:
            return False
        self._view.clear_banner()
        if self.conversation_id is None:
            title = " ".join(text.split())[:60] or "New chat"
            conv = self._svc.conversations.create(title=title, default_model_id=str(ref))
            self.conversation_id = conv.id
            self._view.load([], has_more=False)
            self.sig_conversation_changed.emit(conv.id)
        cid = self.conversation_id
        if self._editing_id is not None:
            mid, self._editing_id = self._editing_id, None
            self._view.remove_from(mid)

            def make(token: CancelToken) -> AsyncIterator[Any]:
                return self._svc.turns.edit_and_resend(cid, mid, text, ref, cancel=token)

        else:

            def make(token: CancelToken) -> AsyncIterator[Any]:
                return self._svc.turns.send(cid, text, ref, cancel=token)

        self._start(make)
        return True

    def regenerate(self, _message_id: int | None = None) -> None:
        """Answer the last user message again with the model selected now."""
        if self.streaming or self.conversation_id is None:
            return
        ref = self._model_or_banner()
        if ref is None:
            return
        rows = self._svc.conversations.messages(self.conversation_id, limit=50)
        last_user = next((m for m in reversed(rows) if m.role == "user"), None)
        if last_user is None:
            return
        later = [m for m in rows if m.id > last_user.id]
        if later:
            self._view.remove_from(later[0].id)
        self._view.clear_banner()
        cid = self.conversation_id

        def make(token: CancelToken) -> AsyncIterator[Any]:
            return self._svc.turns.regenerate(cid, ref, cancel=token)

        self._start(make, user_already_shown=True)

    def begin_edit(self, message_id: int) -> None:
        """Put a user message back into the composer; the next send replaces it."""
        if self.streaming:
            return
        msg = self._svc.conversations.get_message(message_id)
        if msg is None or msg.role != "user":
            return
        self._editing_id = message_id
        self._composer.set_text(msg.content)
        self._view.show_banner(
            "info",
            "Editing a message: sending replaces it and every reply after it.",
            "Cancel edit",
            ACTION_CANCEL_EDIT,
        )

    def cancel_edit(self) -> None:
        self._editing_id = None
        self._composer.set_text("")
        self._view.clear_banner()

    def stop(self) -> None:
        """Stop the reply in flight; the partial text stays, marked stopped."""
        if self._cancel is not None:
            self._cancel.cancel()

    # ---- stream plumbing --------------------------------------------------------------

    def _start(
        self,
        make: Callable[[CancelToken], AsyncIterator[Any]],
        *,
        user_already_shown: bool = False,
    ) -> None:
        token = self._cancel = CancelToken()
        self._user_already_shown = user_already_shown
        self._handle = self._bridge.stream(lambda: make(token), self._on_event, self._on_crash)
        self._composer.set_streaming(True)
        self.sig_streaming.emit(True)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, TurnBegun):
            if not self._user_already_shown:
                self._view.append_message(event.user)
            self._view.append_message(event.assistant)
            self._streaming_id = event.assistant.id
            self._view.stream_begin(event.assistant.id)
            if self.conversation_id is not None:
                self.sig_conversation_changed.emit(self.conversation_id)
        elif isinstance(event, Started):
            if self._streaming_id is not None:
                row = self._svc.conversations.get_message(self._streaming_id)
                if row is not None:
                    self._view.update_message(row)
            self.sig_model_used.emit(str(event.requested))
        elif isinstance(event, Delta):
            if self._streaming_id is not None:
                self._view.stream_delta(self._streaming_id, event.text)
        elif isinstance(event, TurnSaved):
            self._view.stream_end(event.assistant.id, event.assistant)
            terminal = event.event
            if isinstance(terminal, Failed):
                partial = terminal.partial_text and terminal.error.kind is not ErrorKind.PLACEHOLDER
                kind, text, label, action = banner_for(
                    terminal.error, partial=bool(partial), not_sent=terminal.not_sent
                )
                self._view.show_banner(kind, text, label, action)
                if terminal.error.kind is ErrorKind.SIGNED_OUT:
                    self.sig_signed_out.emit()
            self._finish()

    def _on_crash(self, exc: BaseException) -> None:
        """The turn's stream raised instead of ending with TurnSaved: a bug below the
        router (a storage error, say). Name it and the log file, and end the reply with
        whatever the database holds for it (nothing is claimed about what that is)."""
        if isinstance(exc, RouteError):
            kind, text, label, action = banner_for(exc, partial=False)
            if exc.kind is ErrorKind.SIGNED_OUT:
                self.sig_signed_out.emit()
        else:
            # The bridge hands the error over without logging it: log it here, so the
            # file the banner names holds its traceback.
            log.error("a reply failed unexpectedly", exc_info=exc)
            kind, text, label, action = (
                "error",
                f"Something went wrong ({describe_error(exc)}); {see_the_log()}.",
                "Retry",
                ACTION_RETRY,
            )
        self._view.show_banner(kind, text, label, action)
        if self._streaming_id is not None:
            row = self._svc.conversations.get_message(self._streaming_id)
            if row is not None:
                self._view.stream_end(row.id, row)
        self._finish()

    def _finish(self) -> None:
        self._handle = None
        self._cancel = None
        self._streaming_id = None
        self._composer.set_streaming(False)
        self.sig_streaming.emit(False)
        if self.conversation_id is not None:
            self.sig_conversation_changed.emit(self.conversation_id)
