"""Screens of issue 8 — what the window says when servers misbehave:
``xvfb-run -a -s "-screen 0 1600x1000x24" python -m tests.helpers.issue8_screenshots OUTDIR``.

The real app wiring (Core, loop thread, bridge, main window) against the protocol test
servers, made hostile: an Ollama host that redirects to another host, a halext server asked
for an id it does not list while cloud providers are off, a halext server with no working
model (its placeholder), and the usage dashboard with blocked requests counted apart.
Secrets go to an in-memory keyring, data to a temporary home.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import keyring

from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.screenshots import _settle, _wait


def _send(app: Any, window: Any, ref: str, text: str) -> None:
    window.picker.set_current(ref)
    window.composer.set_text(text)
    window._on_send(window.composer.text())
    window.composer.set_text("")
    _wait(app, lambda: window.controller.streaming, 5)
    _wait(app, lambda: not window.controller.streaming, 15)
    _settle(app, 0.4)


def main(outdir: str) -> int:
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HALEXT_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="halext-shots-8-")
    keyring.set_keyring(MemoryKeyring())

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from tests.servers.halext_server import HalextServer
    from tests.servers.ollama_server import OllamaServer

    QCoreApplication.setOrganizationName("halext-screenshots")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")

    from halext_desktop.app.core import Core
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.routing.backends.halext import LISTING_TTL_S
    from halext_desktop.storage.settings import Settings
    from halext_desktop.ui.theme import apply_theme

    with (
        HalextServer() as halext,
        OllamaServer() as ollama,
        OllamaServer() as proxy,
        OllamaServer() as elsewhere,
    ):
        # "studio" is a LAN Ollama behind a proxy that moved: every request gets a 307.
        proxy.redirect_to(elsewhere.url)
        settings = Settings.load()
        settings.set("halext_url", halext.url)
        settings.set(
            "ollama_hosts",
            [{"name": "local", "url": ollama.url}, {"name": "studio", "url": proxy.url}],
        )
        settings.set("default_model", "ollama/qwen2.5:7b")
        core = Core(settings=settings)
        lt = LoopThread().start()
        lt.run(core.sign_in("dev", "dev123", False))

        apply_theme(app, "light", 0)
        window: Any = build_window(core, lt)
        window.resize(1400, 880)
        window.show()
        _wait(app, lambda: window._listing is not None)
        _settle(app)

        # 1. An Ollama host that redirects: named as such, nothing re-posted elsewhere.
        window.new_chat()
        _send(app, window, "ollama/qwen2.5:7b", "Summarise the board minutes for me.")
        _send(app, window, "ollama@studio/qwen2.5:14b", "And draft the reply to the auditor.")
        assert elsewhere.requests == [], "the redirect was followed"
        window.grab().save(str(out / "issue8-ollama-redirect.png"))

        # 2. Cloud off, a halext id the server does not list (a node since deactivated).
        settings.set("disable_cloud", True)
        _settle(app, 0.5)
        window.new_chat()
        _send(app, window, "halext/client:3:qwen2.5:7b", "Plan the migration in three steps.")
        halext.set_node(3, is_active=False)  # an admin deactivates the node meanwhile
        _settle(app, LISTING_TTL_S + 0.5)  # the next turn, a few seconds later
        _send(app, window, "halext/client:3:qwen2.5:7b", "Now list the risks.")
        sent = [r.json["model"] for r in halext.requests_to("/ai/chat/stream")]
        assert sent == ["client:3:qwen2.5:7b"], sent
        window.grab().save(str(out / "issue8-halext-unlisted-cloud-off.png"))
        settings.set("disable_cloud", False)
        halext.set_node(3, is_active=True)
        _settle(app, 0.5)

        # 3. halext had no working model: its placeholder is not an answer.
        window.new_chat()
        _send(app, window, "halext/ollama:llama3.1:70b", "Translate this contract clause.")
        window.grab().save(str(out / "issue8-halext-placeholder.png"))

        # 4. The usage dashboard: blocked requests counted apart from requests and tokens.
        settings.set("disable_cloud", True)
        _settle(app, 0.3)
        window.new_chat()
        for prompt in ("Quick question for GPT.", "Another one for Gemini."):
            ref = "halext/openai:gpt-4o-mini" if "GPT" in prompt else "halext/gemini:gemini-2.5-pro"
            _send(app, window, ref, prompt)
        window.grab().save(str(out / "issue8-blocked-chat.png"))
        loaded: list[bool] = []
        dash = window.open_usage()
        dash.sig_loaded.connect(lambda: loaded.append(True))
        dash.set_range("all")
        dash.refresh()
        _wait(app, lambda: bool(loaded))
        _settle(app, 0.6)
        dash.grab().save(str(out / "issue8-usage-blocked.png"))
        dash.close()

        # 5. Settings → Connections: per-host Ollama keys, plain-http consents shown.
        core.secrets.set("ollama-key:studio", "studio-secret")
        settings.set("plain_http_ok", ["192.168.1.20:8000"])
        window.open_settings("connections")
        dlg = window._settings_dialog
        dlg.resize(820, 760)
        dlg.connections.reload()
        _settle(app, 0.5)
        dlg.grab().save(str(out / "issue8-settings-connections.png"))
        dlg.close()

        window.close()
        lt.run(core.aclose())
        lt.stop()
        core.close()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
