"""The status line at the bottom of the main window: halext sign-in, Ollama hosts, cloud.

``halext: signed in as dev · local ● up · studio ○ down · cloud: off``

Each host is called by its name in the settings, as everywhere else; its address is in
the tooltip.

It only shows what it is told (the lead feeds it from health checks and settings); it never
asks anything itself, so it can never cause a network call while offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolButton, QWidget

from halext_desktop.routing.display import route_name
from halext_desktop.routing.types import Health
from halext_desktop.ui.text import plain

HALEXT_SIGNED_IN = "signed_in"
HALEXT_SIGNED_OUT = "signed_out"
HALEXT_OFFLINE = "offline"
HALEXT_NOT_CONFIGURED = "not_configured"
HALEXT_ERROR = "error"

UP_DOT = "●"
DOWN_DOT = "○"
SEPARATOR = "·"


def host_label(route_id: str, names: Mapping[str, str] | None = None) -> str:
    """The host's name (``local``, ``studio``): ``names[route_id]``, else from the id."""
    return route_name(route_id, names)


def short_address(url: str) -> str:
    """``http://127.0.0.1:11434/`` → ``127.0.0.1:11434`` (what users recognise)."""
    text = url.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    return text.rstrip("/")


class StatusBarWidget(QWidget):
    """Halext state, one entry per Ollama host and the cloud switch, for QMainWindow's status bar.

    Signals:
        sig_open_settings(): the halext part was clicked (open Settings → Connections,
            where signing in happens).
    """

    sig_open_settings = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._halext_state = HALEXT_SIGNED_OUT
        self._halext_user: str | None = None
        self._halext_detail = ""
        self._offline = False
        self._host_labels: list[QLabel] = []

        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(8)

        self.halext_button = QToolButton(self)
        self.halext_button.setAutoRaise(True)
        self.halext_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.halext_button.setAccessibleName("halext connection")
        self.halext_button.clicked.connect(self.sig_open_settings)
        layout.addWidget(self.halext_button)

        self._hosts_box = QWidget(self)
        self._hosts_layout = QHBoxLayout(self._hosts_box)
        self._hosts_layout.setContentsMargins(0, 0, 0, 0)
        self._hosts_layout.setSpacing(8)
        layout.addWidget(self._hosts_box)

        self.cloud_label = QLabel(self)
        self.cloud_label.setAccessibleName("cloud providers")
        layout.addWidget(self._separator())
        layout.addWidget(self.cloud_label)
        layout.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

        self.set_cloud(False)
        self._render_halext()

    # ---- public API -------------------------------------------------------------------

    @property
    def halext_state(self) -> str:
        """What the halext part says now (HALEXT_SIGNED_IN, HALEXT_SIGNED_OUT…)."""
        return self._halext_state

    def set_halext(self, state: str, user: str | None = None, detail: str = "") -> None:
        """Show the halext sign-in state.

        Args:
            state: ``signed_in``, ``signed_out``, ``offline``, ``not_configured`` or ``error``.
            user: the signed-in username (``signed_in`` only).
            detail: the one-line error for ``error``, shown as the tooltip.
        """
        self._halext_state = state
        self._halext_user = user
        self._halext_detail = detail
        self._render_halext()

    def set_offline(self, offline: bool) -> None:
        """Offline mode wins over the sign-in state: halext is not contacted at all."""
        self._offline = offline
        self._render_halext()

    def set_cloud(self, disabled: bool) -> None:
        self.cloud_label.setText("cloud: off" if disabled else "cloud: on")
        self.cloud_label.setToolTip(
            "Cloud providers are disabled: nothing is sent to OpenAI, Gemini or public endpoints"
            if disabled
            else "Cloud providers are allowed (change in Settings → AI, Ctrl+,)"
        )

    def set_hosts(
        self,
        healths: Sequence[Health],
        addresses: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """One ``local ● up`` / ``studio ○ down`` entry per Ollama host.

        Args:
            healths: health results; only Ollama routes are shown (halext has its own part).
            addresses: optional route id → URL, for the tooltip.
            names: route id → the host's name in the settings.
        """
        for label in self._host_labels:
            self._hosts_layout.removeWidget(label)
            label.deleteLater()
        self._host_labels = []
        addresses = addresses or {}
        for health in healths:
            if health.route_id != "ollama" and not health.route_id.startswith("ollama@"):
                continue
            address = addresses.get(health.route_id)
            name = host_label(health.route_id, names)
            state = f"{UP_DOT} up" if health.ok else f"{DOWN_DOT} down"
            label = QLabel(f"{SEPARATOR} {name} {state}", self._hosts_box)
            label.setObjectName(f"host:{health.route_id}")
            label.setAccessibleName(f"Ollama host {name} {'up' if health.ok else 'down'}")
            where = f" at {short_address(address)}" if address else ""
            tip = f"Ollama host “{name}”{where}"
            label.setToolTip(f"{tip}\n{plain(health.detail)}" if health.detail else tip)
            self._hosts_layout.addWidget(label)
            self._host_labels.append(label)

    # ---- read-back (tests, accessibility) ----------------------------------------------

    def halext_text(self) -> str:
        return self.halext_button.text()

    def host_texts(self) -> list[str]:
        return [label.text() for label in self._host_labels]

    def cloud_text(self) -> str:
        return self.cloud_label.text()

    # ---- internals ----------------------------------------------------------------------

    def _separator(self) -> QLabel:
        sep = QLabel(SEPARATOR, self)
        sep.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        return sep

    def _render_halext(self) -> None:
        if self._offline:
            text, tip = "halext: offline", "Offline — local models only (Settings → AI, Ctrl+,)"
        elif self._halext_state == HALEXT_SIGNED_IN and self._halext_user:
            text = f"halext: signed in as {self._halext_user}"
            tip = "Settings → Connections"
        elif self._halext_state == HALEXT_NOT_CONFIGURED:
            text, tip = "halext: not set up — Set up…", "Set the halext server URL"
        elif self._halext_state == HALEXT_ERROR:
            text = "halext: unreachable — Check…"
            tip = plain(self._halext_detail) or "The halext server could not be reached"
        else:
            text, tip = "halext: signed out — Sign in…", "Sign in: Settings → Connections"
        self.halext_button.setText(text)
        self.halext_button.setToolTip(tip)
