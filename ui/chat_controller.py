"""Drives one conversation on screen: send, stream, stop, regenerate, edit-and-resend.

It turns the app's Turn events (delivered on the GUI thread by the Bridge) into ChatView
calls, and every failure into an inline banner with one action. It never blocks: routing
runs on the loop thread, every read of the database on the database owner's thread, and
their answers come back through the Bridge.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, Signal

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.router import UNLISTED_REASON, CancelToken
from halext_desktop.routing.types import Delta, Failed, Started
from halext_desktop.storage.attachments import Prepared
from halext_desktop.storage.chat_settings import ChatSettings
from halext_desktop.storage.conversations import MessageRow
from halext_desktop.storage.db import DatabaseDamaged, DatabaseError
from halext_desktop.storage.logfile import see_the_log
from halext_desktop.storage.turns import TurnBegun, TurnSaved, TurnUpdated
from halext_desktop.ui.bridge import Bridge, describe_error
from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)

# How many messages to show when a conversation opens; older ones load on scroll.
PAGE = 200

# Banner action ids (ChatView.sig_banner_action -> MainWindow).
ACTION_SIGN_IN = "sign_in"
ACTION_SETTINGS = "settings"
ACTION_CONNECTIONS = "connections"  # Settings → Connections (hosts, keys, sign-in)
ACTION_RETRY = "retry"
ACTION_PICK_MODEL = "pick_model"
ACTION_CANCEL_EDIT = "cancel_edit"


def banner_for(
    error: RouteError, *, partial: bool, not_sent: str | None = None, inline: bool = False
) -> tuple[str, str, str | None, str | None]:
    """(kind, text, action label, action id) for a failed request.

    ``inline``: the reply's own row already says what failed (its ⚠ line); the banner then
    says what to do next instead of repeating it.
    """
    kept = " The partial reply is kept." if partial else ""
    full = error.message + (f" — {error.hint}" if error.hint else "") + kept
    kind = error.kind

    def text(next_step: str) -> str:
        return next_step if inline else full

    if not_sent == UNLISTED_REASON:
        # The server does not offer that model (any more): another one is the way out.
        return (
            "warning",
            text("Nothing was sent: pick another model."),
            "Pick a model",
            ACTION_PICK_MODEL,
        )
    if kind is ErrorKind.AUTH_FAILED and error.route_id != "halext":
        # An API key of an Ollama host or an endpoint: fixed in Settings, not by signing in.
        return (
            "error",
            text("Check the API key in Settings → Connections."),
            "Open settings",
            ACTION_CONNECTIONS,
        )
    if kind in (ErrorKind.SIGNED_OUT, ErrorKind.AUTH_FAILED):
        return "error", text("Sign in again, then Retry."), "Sign in again", ACTION_SIGN_IN
    if kind in (ErrorKind.BLOCKED, ErrorKind.NOT_CONFIGURED, ErrorKind.INSECURE):
        return (
            "warning",
            text("Nothing was sent: pick another model, or change Settings."),
            "Open settings",
            ACTION_SETTINGS,
        )
    if kind is ErrorKind.REDIRECT:
        return (
            "error",
            text("Check the address in Settings → Connections."),
            "Open settings",
            ACTION_CONNECTIONS,
        )
    if kind is ErrorKind.MODEL_NOT_FOUND:
        return (
            "error",
            text("Pick another model, or get this one in Models."),
            "Pick a model",
            ACTION_PICK_MODEL,
        )
    if kind is ErrorKind.PLACEHOLDER:
        return (
            "warning",
            text("Pick a model that works on the server."),
            "Pick a model",
            ACTION_PICK_MODEL,
        )
    step = (
        "The reply stopped part-way (what arrived is kept); Retry when the route is back."
        if partial
        else "The reply failed; Retry when the route is back."
    )
    return "error", text(step), "Retry", ACTION_RETRY


INTERRUPTED_TEXT = "Interrupted — partial reply kept"


class _Reply:
    """One reply in flight, in whichever conversation it belongs to (shown or not)."""

    __slots__ = (
        "cid",
        "cancel",
        "handle",
        "user",
        "assistant",
        "parts",
        "user_already_shown",
        "unsent",
        "unsent_files",
        "shown",
        "attached",
        "view_id",
    )

    def __init__(self, cid: int | None, *, user_already_shown: bool) -> None:
        self.cid = cid  # None until the turn has created the conversation
        self.cancel = CancelToken()
        self.handle: Future[None] | None = None
        self.user: MessageRow | None = None
        self.assistant: MessageRow | None = None
        self.parts: list[str] = []  # the text so far, for when its chat is opened again
        self.user_already_shown = user_already_shown
        self.unsent: str | None = None  # sent, not yet stored: given back on failure
        self.unsent_files: list[Prepared] = []  # its attachments, given back with it
        self.shown = True  # it belongs to the conversation on screen
        self.attached = False  # its rows are in the view, which takes its text as it comes
        self.view_id: int | None = None  # the assistant row's id as the view knows it


class ChatController(QObject):
    """Owns the conversation being shown and every reply in flight.

    Replies go on in the background: opening another conversation (or a new chat) leaves
    them streaming, several at once, each stoppable on its own. The one of the conversation
    on screen feeds the view; the others keep their text until that conversation is opened
    again.

    Signals:
        sig_streaming(bool): the conversation on screen has a reply in flight, or not any
            more (composer Send/Stop, the Esc shortcut).
        sig_replies_changed(object): the set of conversation ids with a reply in flight
            changed (the sidebar marks them); carries the set.
        sig_reply_unseen(object): a reply finished in a conversation that is not on screen
            (the sidebar marks it unread); carries its id.
        sig_conversation_changed(object): a conversation was created or touched (sidebar
            refresh); its id (``object``: a provisional id can be any integer).
        sig_model_used(str): the model reference a reply was sent to.
        sig_signed_out(): a reply failed because the halext session ended (every place
            that shows the sign-in state must say so now).
        sig_loaded(object): a conversation's messages are on screen (its id, or None).
        sig_database_problem(object): the database cannot take the turn (a DatabaseError:
            damaged, unavailable); the window offers what can be done.
        sig_chat_settings(object): the conversation's system prompt and parameters (a
            ChatSettings) were loaded or changed.
        sig_unsent(str, object): a send was refused before anything was stored (an image
            for a model that cannot take it); carries the text and the attachments to give
            back to the composer.
    """

    sig_streaming = Signal(bool)
    sig_replies_changed = Signal(object)
    sig_reply_unseen = Signal(object)
    sig_conversation_changed = Signal(object)
    sig_model_used = Signal(str)
    sig_signed_out = Signal()
    sig_loaded = Signal(object)
    sig_database_problem = Signal(object)
    sig_chat_settings = Signal(object)
    sig_unsent = Signal(str, object)

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
        self._replies: list[_Reply] = []
        self._editing_id: int | None = None
        self._load_gen = 0
        self._view_ready = True  # the view shows the conversation's messages (not loading)
        # What a reply that ended off screen left to say, shown when its chat is opened.
        self._later: dict[int, tuple[str, str, str | None, str | None]] = {}
        # The conversation's system prompt and parameters; for a chat not started yet,
        # what its first message will keep with it.
        self.chat_settings = ChatSettings()
        self._settings_gen = 0

    # ---- conversations ------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        """The conversation on screen has a reply in flight."""
        return self._shown_reply() is not None

    @property
    def any_streaming(self) -> bool:
        """Some conversation has a reply in flight."""
        return bool(self._replies)

    def streaming_conversations(self) -> set[int]:
        """The conversations with a reply in flight (real ids once written)."""
        return {self._real(r.cid) for r in self._replies if r.cid is not None}

    def is_streaming_in(self, conversation_id: int) -> bool:
        return any(self._same(r.cid, conversation_id) for r in self._replies)

    def _real(self, some_id: int) -> int:
        return self._svc.conversations.resolve(some_id)

    def _same(self, a: int | None, b: int | None) -> bool:
        return a is not None and b is not None and self._real(a) == self._real(b)

    def _shown_reply(self) -> _Reply | None:
        return next((r for r in self._replies if r.shown), None)

    def open_conversation(self, conversation_id: int | None) -> None:
        """Show a conversation (None = the empty new-chat state); its messages arrive from
        the database owner (``sig_loaded`` says when they are on screen). Replies in flight
        go on, here or in the background."""
        self._editing_id = None
        self._view.clear_banner()
        self.conversation_id = conversation_id
        for reply in self._replies:
            reply.shown = self._same(reply.cid, conversation_id)
            reply.attached = False
        self._load_gen += 1
        gen = self._load_gen
        self._show_streaming_state()
        self._load_chat_settings(conversation_id)
        if conversation_id is None:
            self._view.load([], has_more=False)
            self._view_ready = True
            self.sig_loaded.emit(None)
            return
        self._view_ready = False
        self._view.load([], has_more=False)
        self._bridge.call(
            self._svc.conversations.page(conversation_id, PAGE),
            lambda page: self._on_page(gen, conversation_id, page),
            lambda exc: self._on_read_failed(gen, exc),
            owner=self,
        )

    def _on_page(self, gen: int, cid: int, page: tuple[list[MessageRow], bool]) -> None:
        if gen != self._load_gen:
            return  # another conversation was opened meanwhile
        rows, has_more = page
        self._view.load(rows, has_more=has_more)
        # Where the model's context started for the newest reply (older turns not sent).
        self._view.show_context_of(next((m for m in reversed(rows) if m.role == "assistant"), None))
        self._view_ready = True
        for reply in self._replies:
            if reply.shown and reply.assistant is not None:
                self._attach(reply)
        last = next((m for m in reversed(rows) if m.role == "assistant"), None)
        later = next((key for key in self._later if self._same(key, cid)), None)
        if later is not None:
            self._view.show_banner(*self._later.pop(later))
        elif (
            last is not None
            and last.status == "interrupted"
            and last is rows[-1]
            and not self.streaming
        ):
            self._view.show_banner(
                "warning",
                f"{INTERRUPTED_TEXT}: the app stopped before this reply finished.",
                "Retry",
                ACTION_RETRY,
            )
        self.sig_loaded.emit(cid)

    def _attach(self, reply: _Reply) -> None:
        """Show a reply in flight in the view (its chat was opened again): its rows as
        stored, then all of the text that has arrived so far."""
        assistant = reply.assistant
        assert assistant is not None
        view = self._view
        aid = assistant.id
        if view.model.item_by_id(aid) is None and view.model.item_by_id(self._real(aid)):
            aid = self._real(aid)  # written since the turn began: the view has the real id
        if view.model.item_by_id(aid) is None:
            user = reply.user
            if user is not None and view.model.item_by_id(self._real(user.id)) is None:
                view.append_message(user)
            view.append_message(assistant)
        reply.view_id = aid
        reply.attached = True
        view.stream_begin(aid)
        text = "".join(reply.parts)
        if text:
            view.update_message(
                dataclasses.replace(assistant, id=aid, content=text, status="streaming")
            )

    def _on_read_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._load_gen:
            return
        self._database_error(exc, "Could not read this conversation")

    def _database_error(self, exc: BaseException, what: str) -> None:
        if isinstance(exc, DatabaseError):
            self._view.show_banner("error", str(exc))
            self.sig_database_problem.emit(exc)
        else:
            log.error("%s", what, exc_info=exc)
            self._view.show_banner("error", f"{what} ({describe_error(exc)}); {see_the_log()}.")

    def load_more(self, oldest_id: int) -> None:
        """Older messages for the lazily loaded view (the user scrolled to the top)."""
        cid = self.conversation_id
        if cid is None:
            return
        gen = self._load_gen

        def loaded(page: tuple[list[MessageRow], bool]) -> None:
            if gen == self._load_gen:
                self._view.prepend(page[0], has_more=page[1])

        self._bridge.call(
            self._svc.conversations.page(cid, PAGE, before_id=oldest_id),
            loaded,
            lambda exc: self._on_read_failed(gen, exc),
            owner=self,
        )

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

    def send(self, text: str, attachments: list[Prepared] | None = None) -> bool:
        """Send the composer's text (and attachments); returns False when nothing was sent
        (text stays). The text is given back to the composer if the database cannot take
        it, and with the attachments when the model cannot take them (``sig_unsent``)."""
        files = list(attachments or [])
        if self.streaming or not (text.strip() or files):
            return False
        ref = self._model_or_banner()
        if ref is None:
            return False
        self._view.clear_banner()
        self._view.before_send()
        cid = self.conversation_id
        reply = _Reply(cid, user_already_shown=False)
        reply.unsent = text
        reply.unsent_files = files
        settings = self.chat_settings
        if cid is None:
            # The turn creates the conversation with its first message (one transaction).
            self._view.load([], has_more=False)
            first = None if settings.empty else settings

            def make(token: CancelToken) -> AsyncIterator[Any]:
                return self._svc.turns.send(
                    None, text, ref, cancel=token, attachments=files, settings=first
                )

        elif self._editing_id is not None:
            mid, self._editing_id = self._editing_id, None
            self._view.remove_from(mid)

            def make(token: CancelToken) -> AsyncIterator[Any]:
                return self._svc.turns.edit_and_resend(cid, mid, text, ref, cancel=token)

        else:

            def make(token: CancelToken) -> AsyncIterator[Any]:
                return self._svc.turns.send(cid, text, ref, cancel=token, attachments=files)

        self._start(reply, make, ref)
        return True

    def regenerate(self, _message_id: int | None = None) -> None:
        """Answer the last user message again with the model selected now."""
        if self.streaming or self.conversation_id is None:
            return
        ref = self._model_or_banner()
        if ref is None:
            return
        cid = self.conversation_id
        self._view.clear_banner()

        def with_rows(rows: list[MessageRow]) -> None:
            if self.streaming or cid != self.conversation_id:
                return
            last_user = next((m for m in reversed(rows) if m.role == "user"), None)
            if last_user is None:
                return
            later = rows[rows.index(last_user) + 1 :]
            if later:
                self._view.remove_from(later[0].id)

            def make(token: CancelToken) -> AsyncIterator[Any]:
                return self._svc.turns.regenerate(cid, ref, cancel=token)

            self._start(_Reply(cid, user_already_shown=True), make, ref)

        self._bridge.call(
            self._svc.conversations.messages(cid, limit=50),
            with_rows,
            lambda exc: self._database_error(exc, "Could not read this conversation"),
            owner=self,
        )

    def begin_edit(self, message_id: int) -> None:
        """Put a user message back into the composer; the next send replaces it."""
        if self.streaming:
            return

        def loaded(msg: Any) -> None:
            if msg is None or msg.role != "user" or self.streaming:
                return
            self._editing_id = message_id
            self._composer.set_text(msg.content)
            self._view.show_banner(
                "info",
                "Editing a message: sending replaces it and every reply after it.",
                "Cancel edit",
                ACTION_CANCEL_EDIT,
            )

        shown = self._view.model.item_by_id(message_id)
        if shown is not None:
            loaded(shown)  # the view holds the message as stored: no need to ask
            return
        self._bridge.call(
            self._svc.conversations.get_message(message_id),
            loaded,
            lambda exc: self._database_error(exc, "Could not read that message"),
            owner=self,
        )

    def cancel_edit(self) -> None:
        self._editing_id = None
        self._composer.set_text("")
        self._view.clear_banner()

    def stop(self) -> None:
        """Stop the reply of the conversation on screen; the partial text stays, marked
        stopped."""
        reply = self._shown_reply()
        if reply is not None:
            reply.cancel.cancel()

    def stop_conversation(self, conversation_id: int) -> bool:
        """Stop the reply in flight in ``conversation_id`` (on screen or not); False when
        it has none."""
        stopped = False
        for reply in self._replies:
            if self._same(reply.cid, conversation_id):
                reply.cancel.cancel()
                stopped = True
        return stopped

    def interrupt(self) -> None:
        """The window is closing: stop every reply in flight and keep the partial texts,
        marked interrupted (the user did not press Stop; the app went away)."""
        for reply in self._replies:
            if not self._svc.turns.interrupt(reply.cancel):
                reply.cancel.cancel()

    # ---- system prompt and parameters, versions, attachments ------------------------------

    def _load_chat_settings(self, cid: int | None) -> None:
        self._settings_gen += 1
        gen = self._settings_gen
        if cid is None:
            self.chat_settings = ChatSettings()
            self.sig_chat_settings.emit(self.chat_settings)
            return

        def loaded(settings: ChatSettings) -> None:
            if gen == self._settings_gen and cid == self.conversation_id:
                self.chat_settings = settings
                self.sig_chat_settings.emit(settings)

        self._bridge.call(
            self._svc.conversations.chat_settings(cid),
            loaded,
            lambda exc: self._database_error(exc, "Could not read this conversation's settings"),
            owner=self,
        )

    def set_chat_settings(self, settings: ChatSettings) -> None:
        """Use ``settings`` from the next message on, kept with the conversation (a chat
        not started yet keeps them with its first message)."""
        self._settings_gen += 1
        self.chat_settings = settings
        self.sig_chat_settings.emit(settings)
        cid = self.conversation_id
        if cid is None:
            return
        self._bridge.call(
            self._svc.conversations.set_chat_settings(cid, settings),
            lambda _saved: None,
            lambda exc: self._database_error(exc, "Could not keep the settings"),
            owner=self,
        )

    def select_version(self, message_id: int, index: int) -> None:
        """Show another version of a regenerated reply (it becomes the one sent as
        history)."""
        if self.streaming:
            return
        self._bridge.call(
            self._svc.conversations.select_version(message_id, index),
            self._view.update_message,
            lambda exc: self._database_error(exc, "Could not show that version"),
            owner=self,
        )

    def load_image(self, sha256: str, on_loaded: Callable[[bytes], None]) -> None:
        """Fetch an attachment's bytes (to show it at full size)."""

        def loaded(found: tuple[str, bytes] | None) -> None:
            if found is None:
                self._view.show_banner("warning", "That attachment is not in the database.")
            else:
                on_loaded(found[1])

        self._bridge.call(
            self._svc.conversations.attachment(sha256),
            loaded,
            lambda exc: self._database_error(exc, "Could not read that attachment"),
            owner=self,
        )

    def load_thumbnail(self, sha256: str) -> None:
        """Fetch an image attachment's bytes for its thumbnail."""

        def loaded(found: tuple[str, bytes] | None) -> None:
            self._view.set_thumbnail(sha256, found[1] if found else None)

        self._bridge.call(
            self._svc.conversations.attachment(sha256),
            loaded,
            lambda exc: log.warning("thumbnail %s: %s", sha256[:12], exc),
            owner=self,
        )

    # ---- stream plumbing --------------------------------------------------------------

    def _start(
        self, reply: _Reply, make: Callable[[CancelToken], AsyncIterator[Any]], ref: ModelRef
    ) -> None:
        self._replies.append(reply)
        token = reply.cancel
        reply.handle = self._bridge.stream(
            lambda: make(token),
            lambda event: self._on_event(reply, event),
            lambda exc: self._on_crash(reply, exc),
            owner=self,
        )
        self.sig_model_used.emit(str(ref))
        self._show_streaming_state()
        self.sig_replies_changed.emit(self.streaming_conversations())

    def _show_streaming_state(self) -> None:
        streaming = self.streaming
        self._composer.set_streaming(streaming)
        self.sig_streaming.emit(streaming)

    def _view_row(self, reply: _Reply, row: MessageRow) -> MessageRow:
        """``row`` under the id the view knows it by."""
        if reply.view_id is None or reply.view_id == row.id:
            return row
        return dataclasses.replace(row, id=reply.view_id)

    def _on_event(self, reply: _Reply, event: Any) -> None:
        view = self._view
        if isinstance(event, TurnBegun):
            reply.unsent = None  # stored (or queued for the database): never lost now
            reply.unsent_files = []
            reply.user, reply.assistant = event.user, event.assistant
            if event.conversation is not None:
                reply.cid = event.conversation.id
                if reply.shown and self.conversation_id is None:
                    self.conversation_id = reply.cid  # the new chat on screen is this one
            if reply.shown and self._view_ready:
                if not reply.user_already_shown:
                    view.append_message(event.user)
                view.append_message(event.assistant)
                view.show_context_of(event.assistant)
                reply.view_id = event.assistant.id
                reply.attached = True
                view.stream_begin(event.assistant.id)
            if reply.cid is not None:
                self.sig_conversation_changed.emit(reply.cid)
            self.sig_replies_changed.emit(self.streaming_conversations())
        elif isinstance(event, TurnUpdated):
            reply.assistant = event.assistant
            if reply.attached:
                view.update_message(self._view_row(reply, event.assistant))
        elif isinstance(event, Started):
            pass  # the chip shows what answers (TurnUpdated)
        elif isinstance(event, Delta):
            reply.parts.append(event.text)
            if reply.attached and reply.view_id is not None:
                view.stream_delta(reply.view_id, event.text)
        elif isinstance(event, TurnSaved):
            reply.assistant = event.assistant
            banner = self._banner_after(reply, event)
            if reply.attached and reply.view_id is not None:
                view.stream_end(reply.view_id, self._view_row(reply, event.assistant))
            if banner is not None:
                if reply.shown:
                    view.show_banner(*banner)
                elif reply.cid is not None:
                    self._later[reply.cid] = banner
            if not reply.shown and reply.cid is not None:
                self.sig_reply_unseen.emit(self._real(reply.cid))
            self._finish(reply)

    def _banner_after(
        self, reply: _Reply, event: TurnSaved
    ) -> tuple[str, str, str | None, str | None] | None:
        terminal = event.event
        banner: tuple[str, str, str | None, str | None] | None = None
        if isinstance(terminal, Failed):
            partial = terminal.partial_text and terminal.error.kind is not ErrorKind.PLACEHOLDER
            # The reply's ⚠ line says what failed; the banner says what to do about it.
            banner = banner_for(
                terminal.error, partial=bool(partial), not_sent=terminal.not_sent, inline=True
            )
            if terminal.error.kind is ErrorKind.SIGNED_OUT:
                self.sig_signed_out.emit()
        if not event.saved and event.problem and self._svc.storage.state.kind == "damaged":
            text = f"The reply is shown but could not be saved: {event.problem}"
            banner = ("error", text, None, None)
        return banner

    def _on_crash(self, reply: _Reply, exc: BaseException) -> None:
        """The turn's stream raised instead of ending with TurnSaved: the database refused
        the turn (damaged, unavailable) or a bug below the router. Say which; give back
        the text that was not stored; end the reply with what the database holds for it."""
        unsent, reply.unsent = reply.unsent, None
        if isinstance(exc, DatabaseError):
            if unsent is not None and not self._composer.text().strip():
                self._composer.set_text(unsent)  # nothing was stored: nothing typed is lost
            what = "Your message was not sent; it is back in the message box."
            kind, text, label, action = "error", f"{exc} {what}", None, None
            if isinstance(exc, DatabaseDamaged):
                self.sig_database_problem.emit(exc)
        elif isinstance(exc, RouteError):
            kind, text, label, action = banner_for(exc, partial=False)
            if exc.kind is ErrorKind.SIGNED_OUT:
                self.sig_signed_out.emit()
            if unsent is not None:
                # Refused before anything was stored (an image the model cannot take):
                # the message and its files go back to the composer.
                self.sig_unsent.emit(unsent, list(reply.unsent_files))
                kind, label, action = "warning", "Pick a model", ACTION_PICK_MODEL
            elif reply.user_already_shown and reply.assistant is None and reply.shown:
                # A regenerate refused before it began (the model cannot take the
                # message's image): the reply it took off the screen is still stored.
                self.open_conversation(self.conversation_id)
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
        if reply.shown or reply.cid is None:
            self._view.show_banner(kind, text, label, action)
        else:
            self._later[reply.cid] = (kind, text, label, action)
        view_id = reply.view_id if reply.attached else None
        assistant = reply.assistant
        if assistant is not None and view_id is not None:

            def show(row: MessageRow | None) -> None:
                if row is not None and reply.attached:
                    self._view.stream_end(view_id, self._view_row(reply, row))

            self._bridge.call(
                self._svc.conversations.get_message(assistant.id),
                show,
                lambda _exc: self._view.stream_end(view_id, None) if reply.attached else None,
                owner=self,
            )
        self._finish(reply)

    def _finish(self, reply: _Reply) -> None:
        if reply in self._replies:
            self._replies.remove(reply)
        reply.handle = None
        if reply.shown:
            self._show_streaming_state()
        self.sig_replies_changed.emit(self.streaming_conversations())
        if reply.cid is not None:
            self.sig_conversation_changed.emit(reply.cid)
