"""The main window: sidebar, header with the model picker, chat view, composer, status bar.

It only wires widgets together; the conversation logic lives in ChatController, the
routing on the loop thread behind the Bridge, the database on its owner's thread. It opens
at once: the conversations, model lists and health checks arrive later, and the window
says how to connect while nothing is reachable. The database's state is watched: a lock
held by another program shows in the status bar (nothing is lost meanwhile), and a damaged
file brings up a dialog that offers a restore or a fresh start.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.backends.ollama_models import full_model_name
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.types import Health, ModelListing
from halext_desktop.storage.chat_settings import ChatSettings
from halext_desktop.storage.logfile import see_the_log
from halext_desktop.storage.settings import ROUTE_KEYS
from halext_desktop.ui.app_menu import APP_NAME, build_menu_bar
from halext_desktop.ui.bridge import Bridge, describe_error
from halext_desktop.ui.chat_controller import (
    ACTION_CANCEL_EDIT,
    ACTION_CONNECTIONS,
    ACTION_PICK_MODEL,
    ACTION_RETRY,
    ACTION_SETTINGS,
    ACTION_SIGN_IN,
    ChatController,
)
from halext_desktop.ui.chat_settings import ChatSettingsBar, ChatSettingsDialog
from halext_desktop.ui.chat_view import ChatView
from halext_desktop.ui.composer import Composer, has_attachable
from halext_desktop.ui.database_state import DatabaseRepair, DatabaseStateLabel
from halext_desktop.ui.image_viewer import ImageViewer
from halext_desktop.ui.model_picker import ModelPickerButton
from halext_desktop.ui.opened_files import draft_from_files
from halext_desktop.ui.qt_settings import SettingsNotifier
from halext_desktop.ui.services import Services
from halext_desktop.ui.sidebar import ConversationSidebar
from halext_desktop.ui.status_bar import (
    HALEXT_ERROR,
    HALEXT_NOT_CONFIGURED,
    HALEXT_SIGNED_OUT,
    StatusBarWidget,
)
from halext_desktop.ui.theme import apply_theme
from halext_desktop.ui.transfer_actions import TransferActions

if TYPE_CHECKING:
    # The side windows are imported when first opened: the main window shows without them.
    from halext_desktop.ui.assistant_panel import AssistantDialog
    from halext_desktop.ui.models.window import ModelsWindow
    from halext_desktop.ui.providers.panel import ProvidersPanel
    from halext_desktop.ui.settings.dialog import SettingsDialog
    from halext_desktop.ui.usage.dashboard import UsageDashboard

# How often the status bar re-checks the routes (ms). Offline mode checks Ollama only.
HEALTH_INTERVAL_MS = 30_000
# Coming back to the window after this long (s) asks the routes for their models again.
STALE_LISTING_S = 60.0
# Banner action: open the Models window (an Ollama host that has no model yet).
ACTION_MODELS = "models"


class MainWindow(QMainWindow):
    """The window people live in. Shortcuts: Ctrl+N new chat, Ctrl+K model picker,
    Ctrl+, settings, Esc stop, Ctrl+F search."""

    def __init__(
        self,
        services: Services,
        bridge: Bridge,
        notifier: SettingsNotifier,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._svc = services
        self._bridge = bridge
        self._notifier = notifier
        self._listing: ModelListing | None = None
        self._settings_dialog: SettingsDialog | None = None
        self._providers: ProvidersPanel | None = None
        self._assistants: AssistantDialog | None = None
        self._usage: UsageDashboard | None = None
        self._models: ModelsWindow | None = None
        # After a pull or delete: the model just pulled (to offer it to an empty chat), and
        # whether the next listing should check that the chat's model still exists.
        self._pulled_ref: str | None = None
        self._check_current_model = False
        # The model sent to or picked last: where a new chat starts (without a default).
        self._last_model: str | None = None
        self._auto_picked = True  # the empty chat's model was chosen for the user
        # Model lists: which request is the newest, when the last one arrived (monotonic
        # clock, replaceable by tests), and the banner it put up (cleared once models come).
        self._listing_gen = 0
        self._clock = time.monotonic
        self._listed_at: float | None = None
        self._listing_banner: str | None = None
        self._closed = False  # closeEvent ran: no more requests from this window
        # Requests of the Models window still in flight when this window closed: the app
        # waits for them before it closes the routes.
        self.pending_on_close: list[Future[Any]] = []
        self.setWindowTitle(APP_NAME)
        self.setObjectName("MainWindow")
        self.resize(1200, 780)

        # ---- header ------------------------------------------------------------------
        header = QWidget()
        header.setObjectName("Header")
        hl = QHBoxLayout(header)
        hl.setContentsMargins(12, 6, 12, 6)
        title = QLabel("Halext Desktop")
        title.setObjectName("AppTitle")
        f = title.font()
        f.setBold(True)
        title.setFont(f)
        self.picker = ModelPickerButton(self)
        self.picker.setAccessibleName("Model picker")
        self.picker.setToolTip("Choose the model for this conversation (Ctrl+K)")
        self.models_button = self._header_button(
            "Models", "Pull, inspect and delete models; what is loaded (Ctrl+Shift+M)"
        )
        self.providers_button = self._header_button(
            "Providers", "Routes, health and model IDs (Ctrl+Shift+P)"
        )
        self.assistants_button = self._header_button(
            "Assistants", "Task, event and note assistants (Ctrl+Shift+A)"
        )
        self.usage_button = self._header_button("Usage", "Usage dashboard (Ctrl+Shift+U)")
        self.settings_button = self._header_button("Settings", "Settings (Ctrl+,)")
        hl.addWidget(title)
        hl.addStretch(1)
        hl.addWidget(self.picker)
        hl.addStretch(1)
        hl.addWidget(self.models_button)
        hl.addWidget(self.providers_button)
        hl.addWidget(self.assistants_button)
        hl.addWidget(self.usage_button)
        hl.addWidget(self.settings_button)

        # ---- body --------------------------------------------------------------------
        self.sidebar = ConversationSidebar(services.conversations, bridge, self)
        self.chat_view = ChatView(self)
        self.composer = Composer(self)
        self.settings_bar = ChatSettingsBar(self)
        chat_col = QWidget()
        cl = QVBoxLayout(chat_col)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.settings_bar, 0)
        cl.addWidget(self.chat_view, 1)
        cl.addWidget(self.composer, 0)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.sidebar)
        splitter.addWidget(chat_col)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 940])
        splitter.setChildrenCollapsible(False)
        central = QWidget()
        vl = QVBoxLayout(central)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.setSpacing(0)
        vl.addWidget(header)
        vl.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.status = StatusBarWidget(self)
        self.statusBar().addPermanentWidget(self.status, 1)
        self.database_state = DatabaseStateLabel(self)
        self.statusBar().addPermanentWidget(self.database_state, 0)
        self.statusBar().setSizeGripEnabled(True)

        # An error no widget was prepared for still reaches the user, in one line.
        bridge.sig_unhandled_error.connect(self._on_unhandled_error)

        self.controller = ChatController(
            services, bridge, self.chat_view, self.composer, self.picker.current, self
        )
        # Watches the database (owner thread → GUI thread) and offers the repair dialog.
        self.repair = DatabaseRepair(services.storage, bridge, self.database_state, self)
        self.repair.sig_repaired.connect(self._after_repair)
        self.controller.sig_database_problem.connect(self.repair.offer)

        self.transfer = TransferActions(services, bridge, self)
        self.chat_settings_dialog: ChatSettingsDialog | None = None

        # ---- wiring ------------------------------------------------------------------
        self.controller.sig_chat_settings.connect(self._show_chat_settings)
        self.controller.sig_loaded.connect(self._show_chat_settings)
        self.controller.sig_unsent.connect(self._give_back)
        self.settings_bar.sig_edit.connect(self.edit_chat_settings)
        self.chat_view.sig_version_requested.connect(self.controller.select_version)
        self.chat_view.sig_thumbnail_needed.connect(self.controller.load_thumbnail)
        self.chat_view.sig_image_requested.connect(self.show_image)
        self.image_viewer: ImageViewer | None = None
        self.sidebar.sig_export_requested.connect(self._export_from_sidebar)
        self.transfer.sig_done.connect(lambda kind, line: self.chat_view.show_banner(kind, line))
        self.transfer.sig_imported.connect(self._after_import)
        self.setAcceptDrops(True)
        self.composer.sig_send.connect(self._on_send)
        self.composer.sig_stop.connect(self.controller.stop)
        self.chat_view.sig_regenerate_requested.connect(self.controller.regenerate)
        self.chat_view.sig_edit_requested.connect(self.controller.begin_edit)
        self.chat_view.sig_banner_action.connect(self._on_banner_action)
        self.chat_view.sig_load_more.connect(self.controller.load_more)
        self.sidebar.sig_conversation_selected.connect(self._open_conversation)
        self.sidebar.sig_new_requested.connect(self.new_chat)
        self.sidebar.sig_conversation_deleted.connect(self._on_conversation_deleted)
        self.picker.sig_model_chosen.connect(self._on_model_chosen)
        self.picker.sig_manage_models.connect(lambda: self.open_models())
        self.picker.sig_refresh_requested.connect(self.refresh_routes)
        self.picker.sig_current_changed.connect(
            lambda ref: self.chat_view.set_model_chosen(ref is not None)
        )
        self.models_button.clicked.connect(lambda: self.open_models())
        self.controller.sig_conversation_changed.connect(self._on_conversation_touched)
        self.controller.sig_model_used.connect(self._remember_model)
        self.picker.sig_model_chosen.connect(self._remember_model)
        self.picker.sig_model_chosen.connect(self._on_model_picked)
        self.sidebar.sig_typing.connect(self._type_in_composer)
        # Replies go on in other chats: the sidebar marks those streaming and those unread.
        self.controller.sig_replies_changed.connect(self.sidebar.set_streaming)
        self.controller.sig_reply_unseen.connect(self.sidebar.mark_unread)
        self.sidebar.sig_stop_requested.connect(self.controller.stop_conversation)
        # A reply that met an ended session: the status bar and Settings say so at once.
        self.controller.sig_signed_out.connect(self._show_halext_state)
        self.settings_button.clicked.connect(self.open_settings)
        self.providers_button.clicked.connect(self.open_providers)
        self.assistants_button.clicked.connect(self.open_assistants)
        self.usage_button.clicked.connect(self.open_usage)
        self.status.sig_open_settings.connect(lambda: self.open_settings("connections"))
        notifier.sig_changed.connect(self._on_setting_changed)

        self._shortcut("Ctrl+N", self.new_chat)
        self._shortcut("Ctrl+K", self.picker.open_popup)
        self._shortcut("Ctrl+,", self.settings_shortcut)
        self._shortcut("Ctrl+F", self.sidebar.focus_search)
        self._shortcut("Ctrl+Shift+P", self.open_providers)
        self._shortcut("Ctrl+Shift+M", lambda: self.open_models())
        self._shortcut("Ctrl+Shift+A", self.open_assistants)
        self._shortcut("Ctrl+Shift+U", self.open_usage)
        self._shortcut("F5", self.refresh_routes)
        # Esc stops a reply. Enabled only while one streams: an enabled shortcut takes the
        # key from every widget, and Esc also clears the search and cancels a rename.
        self._stop_shortcut = self._shortcut(
            "Esc", self._escape, context=Qt.ShortcutContext.WindowShortcut
        )
        self._stop_shortcut.setEnabled(False)
        self.controller.sig_streaming.connect(self._stop_shortcut.setEnabled)

        self.menu = build_menu_bar(
            self,
            new_chat=self.new_chat,
            settings=self.open_settings,
            models=self.open_models,
            providers=self.open_providers,
            assistants=self.open_assistants,
            usage=self.open_usage,
            refresh=self.refresh_routes,
        )
        self._add_transfer_entries()
        # The window title names the open chat (taskbars and window switchers show it).
        self.controller.sig_loaded.connect(lambda _cid: self._update_title())
        self.controller.sig_conversation_changed.connect(self._title_if_shown)
        self.sidebar.sig_conversation_renamed.connect(self._title_if_shown)

        self._health_timer = QTimer(self)
        self._health_timer.setInterval(HEALTH_INTERVAL_MS)
        self._health_timer.timeout.connect(self.refresh_health)

        self._apply_route_titles()
        self._restore_state()
        self._apply_policy_to_status()
        self._show_halext_state()
        # Nothing waits on the network: lists and health arrive when they arrive.
        QTimer.singleShot(0, self.refresh_models)
        QTimer.singleShot(0, self.refresh_health)
        self._health_timer.start()

    # ---- helpers ------------------------------------------------------------------------

    def _header_button(self, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setAccessibleName(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        return button

    def _shortcut(
        self, keys: str, slot: Any, context: Qt.ShortcutContext | None = None
    ) -> QShortcut:
        sc = QShortcut(QKeySequence(keys), self)
        sc.setContext(context or Qt.ShortcutContext.ApplicationShortcut)
        sc.activated.connect(slot)
        return sc

    def _escape(self) -> None:
        if self.controller.streaming:
            self.controller.stop()

    @staticmethod
    def _window_state() -> QSettings:
        """Window geometry and the last open chat: QSettings, but in our config dir so
        HALEXT_DESKTOP_HOME moves it like everything else."""
        from halext_desktop.storage.paths import config_dir

        return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def _restore_state(self) -> None:
        qs = self._window_state()
        geo = qs.value("main/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        last = qs.value("main/conversation")
        # The sidebar read its first page when it was made: once is enough.
        try:
            cid = int(last) if last not in (None, "") else None
        except (TypeError, ValueError):
            cid = None
        self.new_chat()
        self._bridge.call(
            self._svc.conversations.list(limit=1),
            self._seed_last_model,
            lambda _exc: None,  # the sidebar says when the database cannot be read
            owner=self,
        )
        if cid is not None and cid > 0:
            # Reopen the last chat once the database confirms it still exists.
            self._bridge.call(
                self._svc.conversations.get(cid),
                lambda conv: self._reopen_last(conv),
                lambda _exc: None,  # the repair dialog and the sidebar say what is wrong
                owner=self,
            )

    def _reopen_last(self, conv: Any) -> None:
        if conv is None or self.controller.conversation_id is not None:
            return  # gone, or the user started something already
        self._open_conversation(conv.id, conv)
        self.sidebar.select(conv.id)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self._closed = True
        qs = self._window_state()
        qs.setValue("main/geometry", self.saveGeometry())
        cid = self.controller.conversation_id
        qs.setValue("main/conversation", self._svc.conversations.resolve(cid) if cid else "")
        self.repair.stop_watching()
        if self.controller.any_streaming:
            self.controller.interrupt()
        if self._models is not None:
            # Closing the HTTP streams is what stops Ollama; it keeps what it downloaded.
            self.pending_on_close = self._models.shutdown()
            self._models.close()
        self._health_timer.stop()
        super().closeEvent(event)

    # ---- conversations ------------------------------------------------------------------

    def new_chat(self) -> None:
        """Ctrl+N: an empty chat (created on first send) on the default model when one is
        set, else on the model used last."""
        self.controller.open_conversation(None)
        self.sidebar.select(None)
        self.picker.set_current(self.model_for_new_chat())
        self._auto_picked = True
        self.composer.setFocus()

    def model_for_new_chat(self) -> str | None:
        """The default model setting; else the model used last (sent to, or picked); else
        the first allowed model of the listing, as at start."""
        if self._svc.settings.default_model:
            return self._svc.settings.default_model
        if self._last_model:
            return self._last_model
        default = self._svc.resolve_default(self._listing)
        return str(default) if default else None

    def _remember_model(self, ref: str) -> None:
        self._last_model = ref

    def _on_model_picked(self, _ref: str) -> None:
        self._auto_picked = False

    def _seed_last_model(self, rows: list[Any]) -> None:
        """At start: the model of the chat used last (its newest reply's); the empty chat
        the window opened on takes it, unless the user already chose."""
        if self._last_model is not None or not rows or not rows[0].default_model_id:
            return
        self._last_model = str(rows[0].default_model_id)
        if self.controller.conversation_id is None and self._auto_picked:
            self.picker.set_current(self.model_for_new_chat())

    def open_files(self, args: list[str]) -> None:
        """Files or ``file://`` URLs from the desktop ("Open with"): text files go into the
        message box as fenced blocks, after what is already typed; the rest is named in a
        banner."""
        draft = draft_from_files(args)
        if draft.text:
            typed = self.composer.text().rstrip()
            self.composer.set_text(f"{typed}\n\n{draft.text}" if typed else draft.text)
            self.composer.setFocus()
        if draft.problems:
            self.chat_view.show_banner("warning", "; ".join(draft.problems) + ".")

    def _on_unhandled_error(self, line: str) -> None:
        self.chat_view.show_banner("error", f"Something went wrong: {line}; {see_the_log()}.")

    def _open_conversation(self, cid: int, conv: Any = None) -> None:
        if cid == self.controller.conversation_id:
            return
        self.controller.open_conversation(cid)
        self.sidebar.select(cid)
        self.sidebar.mark_read(self._svc.conversations.resolve(cid))
        if conv is not None:
            self._pick_model_of(cid, conv)
        else:
            self._bridge.call(
                self._svc.conversations.get(cid),
                lambda found: self._pick_model_of(cid, found),
                lambda _exc: None,  # the chat view shows the read's failure
                owner=self,
            )
        # Chosen from the list with the mouse or the keys: the keyboard stays there (F2
        # renames, Delete deletes, typing goes on in the message box).
        if not self.sidebar.list.hasFocus():
            self.composer.setFocus()

    def _pick_model_of(self, cid: int, conv: Any) -> None:
        if cid != self.controller.conversation_id:
            return
        model = conv.default_model_id if conv else None
        if not model:
            d = self._svc.resolve_default(self._listing)
            model = str(d) if d else None
        self.picker.set_current(model)

    # ---- system prompt and parameters, attachments, export/import ---------------------------

    def _route_kind(self) -> str | None:
        current = self.picker.current()
        if not current:
            return None
        try:
            return ModelRef.parse(current).kind
        except ModelRefError:
            return None

    def _show_chat_settings(self, settings: Any = None) -> None:
        self.settings_bar.set_state(self.controller.chat_settings, self._route_kind())

    def edit_chat_settings(self) -> None:
        """The dialog for this conversation's system prompt and parameters (presets come
        from the database; it opens when they are there)."""

        def show(presets: list[tuple[str, ChatSettings]]) -> None:
            dialog = ChatSettingsDialog(
                self.controller.chat_settings, presets, self._route_kind(), self
            )
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.sig_save_preset.connect(self._save_preset)
            dialog.sig_delete_preset.connect(self._delete_preset)
            dialog.accepted.connect(
                lambda: self.controller.set_chat_settings(dialog.result_settings)
            )
            dialog.destroyed.connect(self._forget_settings_dialog)
            self.chat_settings_dialog = dialog
            dialog.open()

        self._bridge.call(
            self._svc.conversations.presets(),
            show,
            lambda exc: self.chat_view.show_banner("error", f"Presets: {describe_error(exc)}"),
            owner=self,
        )

    def show_image(self, sha256: str, name: str) -> None:
        """An attached image at full size (its thumbnail was clicked)."""

        def show(data: bytes) -> None:
            viewer = ImageViewer(name, data, self)
            viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            viewer.destroyed.connect(self._forget_image_viewer)
            self.image_viewer = viewer
            viewer.show()

        self.controller.load_image(sha256, show)

    def _forget_image_viewer(self, *_: Any) -> None:
        self.image_viewer = None

    def _forget_settings_dialog(self, *_: Any) -> None:
        self.chat_settings_dialog = None

    def _save_preset(self, name: str, settings: ChatSettings) -> None:
        self._bridge.call(
            self._svc.conversations.save_preset(name, settings),
            None,
            lambda exc: self.chat_view.show_banner("error", f"Preset: {describe_error(exc)}"),
            owner=self,
        )

    def _delete_preset(self, name: str) -> None:
        self._bridge.call(
            self._svc.conversations.delete_preset(name),
            None,
            lambda exc: self.chat_view.show_banner("error", f"Preset: {describe_error(exc)}"),
            owner=self,
        )

    def _give_back(self, text: str, attachments: Any) -> None:
        if not self.composer.text().strip():
            self.composer.set_text(text)
        if not self.composer.attachments():
            self.composer.set_attachments(list(attachments))

    def _export_from_sidebar(self, cid: Any, fmt: str) -> None:
        self.transfer.export(int(cid), fmt, self.sidebar.title_of(cid) or "")

    def export_current(self, fmt: str) -> None:
        cid = self.controller.conversation_id
        if cid is None:
            self.chat_view.show_banner("info", "Open a conversation to export it.")
            return
        self.transfer.export(cid, fmt, self.sidebar.title_of(cid) or "")

    def _after_import(self, cid: Any) -> None:
        self.sidebar.refresh()
        self._open_conversation(int(cid))

    def _add_transfer_entries(self) -> None:
        """File → Import and Export, above Quit (the menu bar is ``ui.app_menu``'s)."""
        quit_action = self.menu.quit
        menus = [a.menu() for a in self.menuBar().actions()]
        file_menu = next(
            (m for m in menus if isinstance(m, QMenu) and quit_action in m.actions()), None
        )
        assert file_menu is not None, "the File menu holds Quit"
        self.file_menu = file_menu
        entries = (
            ("&Import conversations…", self.transfer.import_),
            ("Export conversation as &Markdown…", lambda: self.export_current("markdown")),
            ("Export conversation as &JSON…", lambda: self.export_current("json")),
            ("Export all conversations as JSON…", lambda: self.transfer.export(None, "json")),
            (
                "Export all conversations as Markdown…",
                lambda: self.transfer.export(None, "markdown"),
            ),
        )
        self.transfer_actions: list[QAction] = []
        for text, slot in entries:
            act = QAction(text, self)
            act.triggered.connect(lambda _checked=False, slot=slot: slot())
            file_menu.insertAction(quit_action, act)
            self.transfer_actions.append(act)
        file_menu.insertSeparator(quit_action)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if has_attachable(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        if has_attachable(event.mimeData()):
            self.composer.add_mime(event.mimeData())
            event.acceptProposedAction()
            self.composer.setFocus()

    def _type_in_composer(self, text: str) -> None:
        """Typing in the chat list goes on in the message box (Enter just moves there)."""
        self.composer.setFocus()
        if text:
            self.composer.editor.insertPlainText(text)

    def _on_send(self, text: str) -> None:
        files = self.composer.last_attachments
        # Nothing was sent: give the text and files back so nothing is lost.
        if not self.controller.send(text, files):
            self._give_back(text, files)

    def _on_conversation_deleted(self, cid: int) -> None:
        # A reply on its way into a deleted chat has nowhere to go: stop it (its text is
        # kept with the chat, which Undo brings back).
        self.controller.stop_conversation(cid)
        # The open chat is gone: showing it (and sending into it) would fail. Undo reopens it.
        if cid == self.controller.conversation_id:
            self.new_chat()

    def _on_model_chosen(self, ref: str) -> None:
        """The selection is the conversation's default_model_id; the next reply uses it."""
        cid = self.controller.conversation_id
        if cid is not None:
            self._svc.conversations.set_default_model(cid, ref)
        self.chat_view.clear_banner()
        self._show_chat_settings()  # what the new route can carry
        # Ctrl+K, pick, type: the composer is where the user goes next.
        self.activateWindow()
        self.composer.setFocus()

    def _on_conversation_touched(self, cid: int) -> None:
        # A reply in a chat in the background must not pull the selection away.
        if self._svc.conversations.resolve(cid) == self._shown_id():
            self.sidebar.select(cid)
        self.sidebar.touch(cid)

    def _title_if_shown(self, cid: Any, *_rest: Any) -> None:
        if cid is not None and self._svc.conversations.resolve(cid) == self._shown_id():
            self._update_title()

    def _update_title(self) -> None:
        """``<chat title> — Halext Desktop``; ``New chat — …`` before the first send."""
        cid = self.controller.conversation_id
        if cid is None:
            self.setWindowTitle(f"New chat — {APP_NAME}")
            return
        self._bridge.call(
            self._svc.conversations.get(cid),
            lambda conv: self._show_title(cid, conv),
            lambda _exc: None,  # the chat view shows the read's failure
            owner=self,
        )

    def _show_title(self, cid: Any, conv: Any) -> None:
        if cid != self.controller.conversation_id:
            return  # another chat was opened meanwhile
        title = (getattr(conv, "title", "") or "").strip() if conv is not None else ""
        self.setWindowTitle(f"{title or 'Untitled chat'} — {APP_NAME}")

    def _shown_id(self) -> int | None:
        cid = self.controller.conversation_id
        return self._svc.conversations.resolve(cid) if cid is not None else None

    def _after_repair(self, _what: str) -> None:
        """The database was restored or started fresh: show what it holds now."""
        self.controller.open_conversation(None)
        self.sidebar.select(None)
        self.sidebar.refresh()

    def _on_banner_action(self, action: str) -> None:
        if action == ACTION_SIGN_IN:
            self.open_settings("connections")
        elif action == ACTION_SETTINGS:
            self.open_settings()
        elif action == ACTION_CONNECTIONS:
            self.open_settings("connections")
        elif action == ACTION_PICK_MODEL:
            self.picker.open_popup()
        elif action == ACTION_RETRY:
            self.controller.regenerate()
        elif action == ACTION_CANCEL_EDIT:
            self.controller.cancel_edit()
        elif action == ACTION_MODELS:
            self.open_models()

    # ---- side windows: providers, assistants, usage --------------------------------------

    def _side_window(self, widget: QWidget, title: str, size: tuple[int, int]) -> QWidget:
        widget.setWindowFlag(Qt.WindowType.Window, True)
        widget.setWindowTitle(f"{title} — Halext Desktop")
        widget.resize(*size)
        return widget

    def _present(self, widget: QWidget) -> None:
        widget.show()
        widget.raise_()
        widget.activateWindow()

    def open_models(self, route_id: str | None = None) -> ModelsWindow:
        """The Models window (Ctrl+Shift+M), at ``route_id`` (``halext``: its nodes) when
        given."""
        if self._models is None:
            from halext_desktop.ui.models.window import ModelsWindow

            self._models = ModelsWindow(self._svc, self._bridge, self.model_in_use, self)
            self._side_window(self._models, "Models", (1400, 820))
            self._models.sig_models_changed.connect(self._on_models_changed)
            self._models.sig_pulled.connect(self._on_model_pulled)
            self._models.sig_use_model.connect(self.use_model)
        if route_id is not None:
            self._models.select(route_id)
        self._present(self._models)
        return self._models

    def model_in_use(self, ref: str) -> str | None:
        """Why ``ref`` is in use by the open chat (asked before it is deleted), or None."""
        current = self.picker.current()
        if current is None or not same_ref(current, ref):
            return None
        if self.controller.streaming:
            return "A reply is streaming from this model in the open chat"
        return "The open chat uses this model"

    def use_model(self, ref: str) -> None:
        """Chat with ``ref`` now (the Models window's Use): the picker and the open chat."""
        self.picker.set_current(ref)
        self._on_model_chosen(ref)

    def _on_models_changed(self, _route_id: str) -> None:
        self._check_current_model = True
        self.refresh_models()

    def _on_model_pulled(self, ref: str) -> None:
        self._pulled_ref = ref

    def open_providers(self) -> ProvidersPanel:
        if self._providers is None:
            from halext_desktop.ui.providers.panel import ProvidersPanel

            self._providers = ProvidersPanel(self._svc, self._bridge, self)
            self._providers.sig_manage_models.connect(self.open_models)
            # A check may learn that the halext session ended: say so everywhere at once.
            self._providers.sig_checked.connect(lambda _rid: self._show_halext_state())
            self._side_window(self._providers, "Providers", (980, 620))
            self._present(self._providers)
            # Opening the panel means "how are my routes?": check them (off the GUI thread).
            self._providers.test_all()
            return self._providers
        self._present(self._providers)
        return self._providers

    def open_assistants(self, kind: str = "task") -> AssistantDialog:
        if self._assistants is None:
            from halext_desktop.ui.assistant_panel import AssistantDialog

            self._assistants = AssistantDialog(self._svc, self._bridge, lambda: self._listing, self)
            self._assistants.resize(760, 680)
            # An assistant run may meet an ended halext session too.
            for page in self._assistants.pages.values():
                page.sig_finished.connect(lambda _outcome: self._show_halext_state())
        if self._listing is not None:
            self._assistants.set_listing(self._listing)
        self._assistants.show_kind(kind if isinstance(kind, str) else "task")
        self._present(self._assistants)
        return self._assistants

    def open_usage(self) -> UsageDashboard:
        if self._usage is None:
            from halext_desktop.ui.usage.dashboard import UsageDashboard

            self._usage = UsageDashboard(self._svc, self._bridge, self._notifier, self)
            self._side_window(self._usage, "Usage", (1100, 820))
        self._present(self._usage)
        return self._usage

    # ---- settings -----------------------------------------------------------------------

    def settings_shortcut(self) -> None:
        """Ctrl+,: Settings where the user left them — the first time, at Connections while
        the status bar asks to sign in to halext (or says it is unreachable)."""
        first = self._settings_dialog is None
        wants_sign_in = self.status.halext_state in (HALEXT_SIGNED_OUT, HALEXT_ERROR)
        self.open_settings("connections" if first and wants_sign_in else None)

    def open_settings(self, tab: str | None = None) -> None:
        if self._settings_dialog is None:
            from halext_desktop.ui.settings.dialog import SettingsDialog

            self._settings_dialog = SettingsDialog(self._svc, self._bridge, self._notifier, self)
            self._settings_dialog.sig_signed_in.connect(self._on_signed_in)
            self._settings_dialog.sig_signed_out.connect(self._on_signed_in)
            self._settings_dialog.sig_reset_done.connect(self._on_reset)
            # An API key saved or removed rebuilt the routes without a settings change.
            self._settings_dialog.sig_routes_rebuilt.connect(self._after_rebuild)
        if tab:
            self._settings_dialog.show_tab(tab)
        if self._listing is not None:
            self._settings_dialog.set_listing(self._listing)
        self._settings_dialog.show()
        self._settings_dialog.raise_()
        self._settings_dialog.activateWindow()

    def _on_reset(self) -> None:
        """Reset to default also resets the selection: back to the global default."""
        default = self._svc.resolve_default(self._listing)
        ref = str(default) if default else None
        self.picker.set_current(ref)
        cid = self.controller.conversation_id
        if cid is not None:
            self._svc.conversations.set_default_model(cid, ref)

    def _on_signed_in(self, *_: Any) -> None:
        self._show_halext_state()
        # "Sign in again" did its job: its banner has nothing left to say.
        if self.chat_view.banner.action_id == ACTION_SIGN_IN and self._svc.signed_in_user():
            self.chat_view.clear_banner()
        self.refresh_models()
        if self._models is not None:
            self._models.reload_nodes()

    def _on_setting_changed(self, key: str, _value: Any) -> None:
        if key in ROUTE_KEYS:
            self._bridge.call(
                self._svc.rebuild_backends(), lambda _: self._after_rebuild(), owner=self
            )
        elif key == "usage_retention_days" and _value:
            self._bridge.call(self._svc.usage.prune(int(_value)), lambda _n: None, owner=self)
        elif key in ("disable_cloud", "offline"):
            self._apply_policy_to_status()
            self.picker.set_policy(self._svc.policy())
            self.refresh_models()
            self.refresh_health()
            if self._models is not None:
                self._models.reload_routes()
        elif key in ("theme", "font_size"):
            # Appearance applies at once, like every other setting (not on the next start).
            app = QApplication.instance()
            if isinstance(app, QApplication):
                st = self._svc.settings
                apply_theme(app, st.theme, st.font_size)
        elif key == "default_model" and self.controller.conversation_id is None:
            self.picker.set_current(_value or None)

    def route_names(self) -> dict[str, str]:
        """Route id → the one name its host is shown by everywhere (the settings' name)."""
        return {route.route_id: route.name for route in self._svc.routes()}

    def _apply_route_titles(self) -> None:
        names = self.route_names()
        self.picker.set_route_titles(names)
        self.chat_view.set_route_names(names)
        if self._assistants is not None:
            self._assistants.set_route_names(names)

    def _after_rebuild(self) -> None:
        self._apply_route_titles()
        if self._providers is not None:
            self._providers.reload_routes()
        if self._models is not None:
            self._models.reload_routes()
        self.refresh_models()
        self.refresh_health()

    def _apply_policy_to_status(self) -> None:
        p = self._svc.policy()
        self.status.set_cloud(p.disable_cloud)
        self.status.set_offline(p.offline)

    # ---- models and health --------------------------------------------------------------

    def refresh_routes(self) -> None:
        """F5 (or the picker's Refresh): the routes' models and health, now."""
        self.refresh_models()
        self.refresh_health()

    def refresh_models(self) -> None:
        if self._closed:
            return  # the routes are being closed; nobody is left to show a listing to
        self._listing_gen += 1
        gen = self._listing_gen
        self.picker.set_loading(True)
        self._bridge.call(
            self._svc.list_models(),
            lambda listing: self._on_listing(listing, gen),
            lambda exc: self._on_listing_error(exc, gen),
            owner=self,
        )

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        super().changeEvent(event)
        # Back after a while (Ollama started meanwhile, a model pulled in a terminal): what
        # the picker offers may be stale. (None: the first listing is still on its way.)
        if (
            event.type() == QEvent.Type.ActivationChange
            and self.isActiveWindow()
            and self._listed_at is not None
            and self._clock() - self._listed_at >= STALE_LISTING_S
        ):
            self.refresh_routes()

    def _on_listing(self, listing: ModelListing, gen: int | None = None) -> None:
        if gen is not None and gen != self._listing_gen:
            return  # a newer request is on its way
        self._listing = listing
        self._listed_at = self._clock()
        self.picker.set_loading(False)
        self.picker.set_listing(listing, self._svc.policy())
        if self._settings_dialog is not None:
            self._settings_dialog.set_listing(listing)
        if self._assistants is not None:
            self._assistants.set_listing(listing)
        pulled, self._pulled_ref = self._pulled_ref, None
        check, self._check_current_model = self._check_current_model, False
        current = self.picker.current()
        listed = {str(m.ref) for m in listing.models if m.available and m.can_chat}
        if pulled is not None and any(same_ref(pulled, r) for r in listed):
            if current is None or not any(same_ref(current, r) for r in listed):
                # The chat had no usable model (first run, or its model is gone): use the new one.
                self.use_model(next(r for r in listed if same_ref(pulled, r)))
                self.chat_view.clear_banner()
                current = self.picker.current()
        elif check and current is not None:
            self._warn_if_gone(current, listing)
        if not self.picker.current():
            # Nothing chosen yet (the app started before any route answered): choose as a
            # new chat does, so the user can simply type and send.
            cid = self.controller.conversation_id
            if cid is None:
                chosen = self.model_for_new_chat()
            else:
                default = self._svc.resolve_default(listing)
                chosen = str(default) if default is not None else None
            if chosen:
                self.picker.set_current(chosen)
                if cid is not None:
                    self._svc.conversations.set_default_model(cid, chosen)
        if listing.models and self._listing_banner is not None:
            # Models arrived: the "nothing reachable" banner has nothing left to say.
            if self.chat_view.banner.text == self._listing_banner:
                self.chat_view.clear_banner()
            self._listing_banner = None
        halext_err = listing.errors.get("halext")
        if halext_err is not None and halext_err.kind is ErrorKind.SIGNED_OUT:
            self._show_halext_state()
        if not listing.models and self.controller.conversation_id is None:
            reachable = [
                r.route_id
                for r in self._svc.routes()
                if r.kind == "ollama" and r.route_id not in listing.errors
            ]
            if reachable:
                text = (
                    "Ollama is running but has no models yet. Get one in the Models window — "
                    "a few small ones are suggested there, one click each."
                )
                self.chat_view.show_banner("info", text, "Get a model", ACTION_MODELS)
            else:
                text = (
                    "No models are reachable yet. Start Ollama (run “ollama serve”) for "
                    "local models, or sign in to halext in Settings → Connections. The list "
                    "updates by itself when a route comes up (F5 asks now)."
                )
                self.chat_view.show_banner("info", text, "Open settings", ACTION_CONNECTIONS)
            self._listing_banner = text

    def _warn_if_gone(self, current: str, listing: ModelListing) -> None:
        """After a delete: the open chat's model is no longer there — say so, offer the picker."""
        try:
            ref = ModelRef.parse(current)
        except ModelRefError:
            return
        route = next((r.route_id for r in self._svc.routes() if r.route_id == ref.route_id), None)
        if ref.kind == "ollama" and route is None and ref.host is None:
            route = next((r.route_id for r in self._svc.routes() if r.kind == "ollama"), None)
        if route is None or route in listing.errors or route in listing.skipped:
            return  # the route could not be asked: absence proves nothing
        if any(same_ref(current, str(m.ref)) for m in listing.models):
            return
        self.chat_view.show_banner(
            "warning",
            f"{ref.model} is no longer on {route} — pick another model for this chat.",
            "Pick a model",
            ACTION_PICK_MODEL,
        )

    def _on_listing_error(self, exc: BaseException, gen: int | None = None) -> None:
        if gen is not None and gen != self._listing_gen:
            return
        self.picker.set_loading(False)
        msg = exc.one_line() if isinstance(exc, RouteError) else f"{type(exc).__name__}: {exc}"
        self.chat_view.show_banner("error", f"Could not list models: {msg}", "Retry", ACTION_RETRY)

    def refresh_health(self) -> None:
        if self._closed:
            return
        self._bridge.call(self._svc.health_all(), self._on_health)

    def _on_health(self, healths: list[Health]) -> None:
        hosts = [h for h in healths if h.route_id.startswith("ollama")]
        addresses = {route.route_id: route.base_url for route in self._svc.routes()}
        self.status.set_hosts(hosts, addresses, self.route_names())
        self._show_halext_state()
        if self._listing_disagrees(healths):
            # A route came up (or went down) since its models were listed: list again, so
            # the picker and the banner say what the status bar says.
            self.refresh_models()

    def _listing_disagrees(self, healths: list[Health]) -> bool:
        listing = self._listing
        if listing is None:
            return False
        for health in healths:
            listed = health.route_id not in listing.errors
            if health.route_id in listing.skipped:
                continue
            if health.ok != listed:
                return True
        return False

    def _show_halext_state(self) -> None:
        """Every place that shows the halext sign-in state (status bar, Settings →
        Connections), from what is known without I/O, so none of them is ever stale."""
        if self._settings_dialog is not None:
            self._settings_dialog.connections.refresh_sign_in_state()
        if self._svc.policy().offline:
            self.status.set_halext("offline", None)
            return
        user = self._svc.signed_in_user()
        if user is None and not self._svc.settings.halext_url:
            # No server set: "signed out — Sign in…" would ask for what cannot be done yet.
            self.status.set_halext(HALEXT_NOT_CONFIGURED, None)
            return
        self.status.set_halext("signed_in" if user else "signed_out", user)


def same_ref(a: str, b: str) -> bool:
    """The same model reference, Ollama's implicit ``:latest`` tag aside."""
    if a == b:
        return True
    try:
        ra, rb = ModelRef.parse(a), ModelRef.parse(b)
    except ModelRefError:
        return False
    if ra.route_id != rb.route_id:
        return False
    if ra.kind == "ollama":
        return full_model_name(ra.model) == full_model_name(rb.model)
    return ra.model == rb.model


def app_icon() -> QIcon:
    from halext_desktop.resources.paths import icon_path

    return QIcon(str(icon_path("halext-desktop")))
