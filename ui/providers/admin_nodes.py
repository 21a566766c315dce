"""The halext server's AI client nodes, shown to a signed-in admin under the routes.

The list comes with a halext route's check (``GET /admin/ai-clients``), which at upstream
a689c6c fails with a plain-text 500 once a node has been seen; then the nodes come from
``/ai/models`` and the note says so (``routing.route_check.ADMIN_LIST_BUG_NOTE``). The
Models window (``ui/models``) is where nodes are tested and their models pulled or deleted.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from halext_desktop.routing.route_check import AdminNodes
from halext_desktop.ui.providers.cells import DOT, bold, item, small_button, style_note, table
from halext_desktop.ui.providers.text import seen_text
from halext_desktop.ui.theme import error_color, muted_text, success_color

NODE_COLUMNS: tuple[str, ...] = ("", "Name", "Type", "Address", "Status", "Models", "Last seen")


class AdminNodesBox(QFrame):
    """Title, a one-line note, and one row per node; hidden unless the user is an admin.

    Attributes:
        admin: what is shown (None: nothing, the box is hidden).
        note: the count, or why the nodes could not be listed.
        table: one row per node.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("NodesBox")
        self.admin: AdminNodes | None = None
        self.title = bold(QLabel("halext AI client nodes"))
        self.title.setToolTip("Self-hosted Ollama nodes registered on the halext server")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.table = table(NODE_COLUMNS, stretch="Models")
        self.table.setObjectName("NodesTable")
        self.manage_button = small_button(
            "Manage nodes…", "Test nodes, pull and delete their models (Models window)"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.note, 1)
        top.addWidget(self.manage_button)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self.setVisible(False)

    def show_admin(self, admin: AdminNodes | None) -> None:
        """Show ``admin``'s nodes (or why there are none); None hides the box."""
        self.admin = admin
        if admin is None:
            self.setVisible(False)
            return
        self.setVisible(True)
        if admin.error and not admin.nodes:
            self.note.setText(admin.error)
        elif admin.error:
            n = len(admin.nodes)
            self.note.setText(f"{n} node{'s' if n != 1 else ''}. {admin.error}")
        else:
            n = len(admin.nodes)
            self.note.setText(
                f"{n} node{'s' if n != 1 else ''} registered on the server (you are an admin)"
                if n
                else "No AI client nodes are registered on the server."
            )
        self.restyle()
        pal = self.palette()
        t = self.table
        t.setVisible(bool(admin.nodes))
        t.setRowCount(len(admin.nodes))
        for i, node in enumerate(admin.nodes):
            status = node.status
            color: QColor = (
                success_color(pal)
                if status == "online"
                else error_color(pal)
                if status in ("offline", "error", "timeout")
                else muted_text(pal)
            )
            dot = item(DOT, status)
            dot.setForeground(color)
            dot.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            status_item = item(status)
            status_item.setForeground(color)
            model_text = ", ".join(node.models)
            row = [
                dot,
                item(node.name, f"node {node.id}"),
                item(node.node_type),
                item(node.base_url, node.base_url),
                status_item,
                item(model_text, model_text),
                item(seen_text(node.last_seen_at) if node.raw else "—"),
            ]
            for c, cell in enumerate(row):
                t.setItem(i, c, cell)

    def restyle(self) -> None:
        """Follow the palette (light/dark): the note's colour."""
        if self.admin is not None:
            style_note(self.note, "warning" if self.admin.error else "muted", self.palette())
