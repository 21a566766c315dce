"""One of the halext server's AI client nodes, for its admins: test it, see its models, pull
and delete models on it — all through the server (halext-api.md §9).

```
Studio   node 3 · http://node3.lan:11434 · ● online · 22 ms              [Test] [Info]
[ Pull on this node: a model name                  ] [Pull]
halext gives no progress for pulls on a node: it answers when the pull ends.
 Model          Reference                                  [Use] [Delete]
```

The server answers a node pull only when it has ended, with no progress: the page says so
in one line and shows a busy bar until then, then the result (checked against the node's
model list, since the server calls an unknown name a success).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.backends.halext_admin import (
    NO_PROGRESS_NOTE,
    AdminNode,
    NodeAction,
    NodeInfo,
    NodeTest,
)
from halext_desktop.ui.models.confirm import ConfirmBar
from halext_desktop.ui.models.host_page import InUse, describe_error
from halext_desktop.ui.models.in_flight import InFlight
from halext_desktop.ui.providers.cells import bold, item, small_button, style_note, table
from halext_desktop.ui.theme import css, error_color, muted_text, success_color

if TYPE_CHECKING:
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.services import Services

T = TypeVar("T")
NODE_MODEL_COLUMNS: tuple[str, ...] = ("Model", "Reference", "")


class HalextNodePage(QWidget):
    """A node's models and what an admin can do with them.

    Signals:
        sig_changed(int): a pull or delete changed the node's models (node id).
        sig_use_model(str): chat with this reference (``halext/client:3:…``).
        sig_models_shown(int): the model list (or why there is none) is on screen.
        sig_tested(int), sig_info_shown(int): a Test or Info result is on screen.
        sig_pull_ended(str): a pull ended; its one-line outcome.
        sig_deleted(str): with the model name.
    """

    sig_changed = Signal(int)
    sig_use_model = Signal(str)
    sig_models_shown = Signal(int)
    sig_tested = Signal(int)
    sig_info_shown = Signal(int)
    sig_pull_ended = Signal(str)
    sig_deleted = Signal(str)

    def __init__(
        self,
        node: AdminNode,
        list_note: str | None,
        services: Services,
        bridge: Bridge,
        in_use: InUse,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("HalextNodePage")
        self.node = node
        self._svc = services
        self._bridge = bridge
        self._in_use = in_use
        self._models: list[str] = list(node.models)
        self._buttons: dict[tuple[str, str], QPushButton] = {}
        self._gen = 0
        self._loaded_once = False
        self._requests = InFlight(bridge)

        self.title = bold(QLabel(node.name), 1.25)
        self.where = QLabel("")
        self.status = QLabel("")
        self.test_button = QPushButton("Test")
        self.test_button.setToolTip("Have the halext server check this node now")
        self.test_button.clicked.connect(self.test)
        self.info_button = QPushButton("Info")
        self.info_button.setToolTip("The node's Ollama version and models, as halext sees them")
        self.info_button.clicked.connect(self.info)
        head = QHBoxLayout()
        head.setSpacing(10)
        head.addWidget(self.title)
        head.addWidget(self.where)
        head.addWidget(self.status)
        head.addStretch(1)
        head.addWidget(self.test_button)
        head.addWidget(self.info_button)
        self.list_note = QLabel(list_note or "")
        self.list_note.setWordWrap(True)
        self.list_note.setVisible(bool(list_note))
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note.hide()

        self.pull_edit = QLineEdit()
        self.pull_edit.setPlaceholderText(f"Pull on {node.name}: a model name, e.g. llama3.2:3b")
        self.pull_edit.setAccessibleName(f"Model to pull on {node.name}")
        self.pull_edit.setClearButtonEnabled(True)
        self.pull_edit.returnPressed.connect(self._pull_typed)
        self.pull_button = QPushButton("Pull")
        self.pull_button.clicked.connect(self._pull_typed)
        pull_line = QHBoxLayout()
        pull_line.addWidget(self.pull_edit, 1)
        pull_line.addWidget(self.pull_button)
        self.no_progress = QLabel(NO_PROGRESS_NOTE + ".")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.busy.setAccessibleName("Pull on the node in progress")
        self.busy.hide()

        self.confirm = ConfirmBar()
        self.models_table = table(NODE_MODEL_COLUMNS, stretch="Reference")
        self.models_table.setObjectName("NodeModelsTable")
        self.models_table.setAccessibleName(f"Models on {node.name}")

        root = QVBoxLayout(self)
        root.setContentsMargins(12, 8, 12, 8)
        root.setSpacing(8)
        root.addLayout(head)
        root.addWidget(self.list_note)
        root.addWidget(self.note)
        root.addLayout(pull_line)
        root.addWidget(self.no_progress)
        root.addWidget(self.busy)
        root.addWidget(self.confirm)
        root.addWidget(self.models_table, 1)
        self._render_head()
        self._render_models()
        self.restyle()

    def _call(
        self,
        coro: Coroutine[Any, Any, T],
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._requests.call(coro, on_done, on_error, owner=self)

    def shutdown(self) -> list[Future[Any]]:
        """The app is closing: send nothing more. Returns the requests still in flight
        (whoever closes the routes next may wait for them)."""
        return self._requests.shutdown()

    # ---- public API ---------------------------------------------------------------------

    def model_names(self) -> list[str]:
        return list(self._models)

    def action_button(self, model: str, action: str) -> QPushButton:
        return self._buttons[(model, action)]

    @property
    def pulling(self) -> bool:
        return self.busy.isVisible() or not self.pull_button.isEnabled()

    def load_models(self) -> None:
        self._gen += 1
        gen = self._gen
        self._call(
            self._svc.node_models(self.node.id),
            lambda models: self._on_models(gen, models),
            lambda exc: self._on_models_failed(gen, exc),
        )

    def test(self) -> None:
        self.test_button.setEnabled(False)
        self._say(f"Asking halext to check {self.node.name}…", "muted")
        self._call(
            self._svc.node_test(self.node.id),
            self._on_tested,
            lambda exc: self._on_failed(exc, "Testing the node", self.sig_tested.emit),
        )

    def info(self) -> None:
        self.info_button.setEnabled(False)
        self._call(
            self._svc.node_info(self.node.id),
            self._on_info,
            lambda exc: self._on_failed(exc, "Reading the node's info", self.sig_info_shown.emit),
        )

    def pull(self, model: str) -> None:
        name = model.strip()
        if not name:
            self._say("Type a model name to pull, e.g. llama3.2:3b", "warning")
            return
        self.pull_button.setEnabled(False)
        self.pull_edit.setEnabled(False)
        self.busy.show()
        self._say(
            f"Pulling {name} on {self.node.name} through halext — no progress until it ends…",
            "muted",
        )
        self._call(
            self._svc.node_pull(self.node.id, name),
            self._on_pulled,
            self._on_pull_failed,
        )

    def ask_delete(self, model: str) -> None:
        ref = self.node.ref_of(model)
        used = self._in_use(ref)
        self.confirm.ask(
            f"Delete {model} from {self.node.name} (node {self.node.id})?",
            "Delete",
            lambda: self._delete(model),
            f"{used} — it will need another model." if used else "",
        )

    # ---- results ------------------------------------------------------------------------

    def _on_models(self, gen: int, models: list[str]) -> None:
        if gen != self._gen:
            return
        self._models = list(models)
        self._loaded_once = True
        self._render_models()
        self.sig_models_shown.emit(self.node.id)

    def _on_models_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._gen:
            return
        self._say(describe_error(exc, "Listing the node's models"), "error")
        self.sig_models_shown.emit(self.node.id)

    def _on_tested(self, result: NodeTest) -> None:
        self.test_button.setEnabled(True)
        if result.online:
            ms = f" in {result.response_time_ms} ms" if result.response_time_ms is not None else ""
            n = len(result.models)
            self._say(f"{self.node.name} answered{ms}: {n} model{'s' if n != 1 else ''}.", "muted")
            self._models = list(result.models)
            self._render_models()
        else:
            self._say(
                f"{self.node.name} is {result.status}: {result.message or 'no answer'}", "error"
            )
        self.node = _with_status(self.node, result.status, result.response_time_ms)
        self._render_head()
        self.sig_tested.emit(self.node.id)

    def _on_info(self, info: NodeInfo) -> None:
        self.info_button.setEnabled(True)
        n = len(info.models)
        self._say(
            f"Ollama {info.version} at {info.url} · {n} model{'s' if n != 1 else ''}", "muted"
        )
        self.sig_info_shown.emit(self.node.id)

    def _on_failed(self, exc: BaseException, what: str, done: Callable[[int], None]) -> None:
        self.test_button.setEnabled(True)
        self.info_button.setEnabled(True)
        self._say(describe_error(exc, what), "error")
        done(self.node.id)

    def _pull_done_ui(self) -> None:
        self.pull_button.setEnabled(True)
        self.pull_edit.setEnabled(True)
        self.busy.hide()

    def _on_pulled(self, result: NodeAction) -> None:
        self._pull_done_ui()
        self.pull_edit.clear()
        text = result.message + (f" — {result.note}" if result.note else "")
        self._say(text, "warning" if result.note else "muted")
        if result.models is not None:
            self._models = list(result.models)
            self._render_models()
        else:
            self.load_models()
        self.sig_changed.emit(self.node.id)
        self.sig_pull_ended.emit(text)

    def _on_pull_failed(self, exc: BaseException) -> None:
        self._pull_done_ui()
        text = describe_error(exc, "Pulling on the node")
        self._say(text, "error")
        self.sig_pull_ended.emit(text)

    def _delete(self, model: str) -> None:
        button = self._buttons.get((model, "Delete"))
        if button is not None:
            button.setEnabled(False)
        self._call(
            self._svc.node_delete(self.node.id, model),
            lambda result: self._on_deleted(model, result),
            lambda exc: self._on_delete_failed(model, exc),
        )

    def _on_deleted(self, model: str, result: NodeAction) -> None:
        self._say(result.message + (f" — {result.note}" if result.note else ""), "muted")
        if result.models is not None:
            self._models = list(result.models)
        else:
            self._models = [m for m in self._models if m != model]
        self._render_models()
        self.sig_deleted.emit(model)
        self.sig_changed.emit(self.node.id)

    def _on_delete_failed(self, model: str, exc: BaseException) -> None:
        button = self._buttons.get((model, "Delete"))
        if button is not None:
            button.setEnabled(True)
        self._say(describe_error(exc, "Deleting on the node"), "error")
        self.sig_deleted.emit(model)

    # ---- rendering ----------------------------------------------------------------------

    def _pull_typed(self) -> None:
        self.pull(self.pull_edit.text())

    def _render_head(self) -> None:
        node = self.node
        parts = [f"node {node.id}"]
        if node.base_url:
            parts.append(node.base_url)
        if node.latency_ms is not None:
            parts.append(f"{node.latency_ms} ms")
        self.where.setText(" · ".join(parts))
        self.status.setText(f"● {node.status}")
        kind = {"online": "success", "listed": "muted"}.get(node.status, "error")
        if node.status == "unknown":
            kind = "muted"
        pal = self.palette()
        color = {"success": success_color(pal), "error": error_color(pal)}.get(
            kind, muted_text(pal)
        )
        sheet = f"color: {css(color)};"
        if self.status.styleSheet() != sheet:
            self.status.setStyleSheet(sheet)

    def _render_models(self) -> None:
        t = self.models_table
        t.setRowCount(len(self._models))
        self._buttons = {}
        for i, name in enumerate(self._models):
            ref = self.node.ref_of(name)
            t.setItem(i, 0, item(name))
            t.setItem(i, 1, item(ref, "The reference the model picker and --model accept"))
            use = small_button("Use", f"Chat with {name} on {self.node.name}")
            delete = small_button("Delete", f"Delete {name} from {self.node.name}")
            use.clicked.connect(lambda _c=False, r=ref: self.sig_use_model.emit(r))
            delete.clicked.connect(lambda _c=False, n=name: self.ask_delete(n))
            holder = QWidget()
            hl = QHBoxLayout(holder)
            hl.setContentsMargins(4, 2, 4, 2)
            hl.setSpacing(4)
            hl.addWidget(use)
            hl.addWidget(delete)
            t.setCellWidget(i, len(NODE_MODEL_COLUMNS) - 1, holder)
            self._buttons[(name, "Use")] = use
            self._buttons[(name, "Delete")] = delete

    def _say(self, text: str, kind: str) -> None:
        self.note.setText(text)
        self.note.setProperty("kind", kind)
        self.note.setVisible(bool(text))
        style_note(self.note, kind, self.palette())

    def restyle(self) -> None:
        pal = self.palette()
        style_note(self.where, "muted", pal)
        style_note(self.no_progress, "muted", pal)
        style_note(self.list_note, "warning", pal)
        style_note(self.note, str(self.note.property("kind") or "muted"), pal)
        self._render_head()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._loaded_once:
            self._loaded_once = True
            self.load_models()


def _with_status(node: AdminNode, status: str, latency: int | None) -> AdminNode:
    return replace(node, status=status, latency_ms=node.latency_ms if latency is None else latency)
