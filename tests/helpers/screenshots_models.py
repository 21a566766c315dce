"""Render the Models window into PNG files:
``python -m tests.helpers.screenshots_models OUTDIR``.

The real app wiring (Core, loop thread, bridge, main window) against the protocol test
servers, like ``tests.helpers.screenshots``: the installed models with a card, a pull in
progress (with a queued one behind it), a model card, what is loaded, a host with no models
(the starter list) and the halext admin nodes view. Run it under a display
(``xvfb-run -a -s "-screen 0 1600x1000x24"``) or with QT_QPA_PLATFORM=offscreen.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import keyring

from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.screenshots import _settle, _wait


def main(outdir: str) -> int:
    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HALEXT_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="halext-shots-")
    keyring.set_keyring(MemoryKeyring())

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from tests.servers.halext_server import HalextServer
    from tests.servers.ollama_server import DEFAULT_MODELS, ModelSpec, OllamaServer

    QCoreApplication.setOrganizationName("halext-screenshots")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("halext-desktop")

    import ollama as ollama_client

    from halext_desktop.app.core import Core
    from halext_desktop.app.gui import build_window
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.storage.settings import Settings
    from halext_desktop.ui.models.window import ModelsWindow
    from halext_desktop.ui.theme import apply_theme

    big = ModelSpec(
        "llama3.3:70b",
        parameter_size="70.6B",
        size=42_520_413_916,
        size_vram=24_000_000_000,
        modified_at="2025-11-02T09:14:05.5Z",
    )
    vision = ModelSpec(
        "gemma3:4b",
        family="gemma3",
        parameter_size="4.3B",
        size=3_338_801_804,
        capabilities=("completion", "vision"),
        modified_at="2025-10-30T12:00:00Z",
    )
    nodes = [
        {
            "id": 3,
            "name": "Studio",
            "models": ["qwen2.5:7b", "llama3.1:8b", "deepseek-r1:14b"],
            "latency_ms": 22,
        },
        {"id": 4, "name": "Attic", "models": ["phi3:mini"], "latency_ms": 41},
    ]
    with (
        HalextServer(client_nodes=nodes) as halext,
        OllamaServer(models=[*DEFAULT_MODELS, vision, big]) as ollama,
        OllamaServer(models=[]) as empty,
    ):
        ollama.set_pullable(
            [
                ModelSpec("llama3.2:1b", size=1_321_098_329),
                ModelSpec("phi4-mini", family="phi3", parameter_size="3.8B", size=2_491_876_774),
            ]
        )
        settings = Settings.load()
        settings.set("halext_url", halext.url)
        settings.set(
            "ollama_hosts",
            [{"name": "local", "url": ollama.url}, {"name": "laptop", "url": empty.url}],
        )
        settings.set("default_model", "ollama/qwen2.5:7b")
        core = Core(settings=settings)
        lt = LoopThread().start()
        lt.run(core.sign_in("dev", "dev123", False))
        # Something in memory for the Loaded tab: a big model kept loaded, a small one for 5 min.
        with ollama_client.Client(host=ollama.url, timeout=10) as client:
            hi = [{"role": "user", "content": "hi"}]
            client.chat(model="llama3.3:70b", messages=hi, keep_alive=-1)
            client.chat(model="qwen2.5:7b", messages=hi)
            client.chat(model="gemma3:4b", messages=hi, keep_alive="30m")

        apply_theme(app, "light", 0)
        window = build_window(core, lt)
        window.resize(1300, 820)  # type: ignore[attr-defined]
        window.show()  # type: ignore[attr-defined]
        _wait(app, lambda: window._listing is not None)  # type: ignore[attr-defined]
        models = window.open_models("ollama")  # type: ignore[attr-defined]
        assert isinstance(models, ModelsWindow)
        models.resize(1400, 820)
        page = models.page("ollama")
        _wait(app, lambda: len(page.installed_names()) == 6)
        _wait(app, lambda: models.node_ids() == [3, 4])

        # Installed, with the card of a model that can see images.
        page.select_model("gemma3:4b")
        _wait(app, lambda: page.card.card is not None and page.card.card.name == "gemma3:4b")
        _settle(app, 0.5)
        models.grab().save(str(out / "models-installed.png"))

        # A model card: the prompt template of the big model.
        page.select_model("llama3.3:70b")
        _wait(app, lambda: page.card.card is not None and page.card.card.name == "llama3.3:70b")
        page.card.tabs.setCurrentIndex(2)  # Template
        _settle(app, 0.4)
        models.grab().save(str(out / "models-card.png"))
        page.card.tabs.setCurrentIndex(0)

        # A pull in progress (per layer, speed, time left) with another queued behind it.
        ollama.set_token_delay(0.25)
        pause = ollama.pause_after(4)
        page.pull("llama3.2:1b")
        page.pull("phi4-mini")
        _wait(app, pause.reached.is_set)

        def bytes_arrived() -> bool:
            progress = page.pull_row("llama3.2:1b").job.progress
            return progress is not None and progress.completed > 0

        _wait(app, bytes_arrived)
        _settle(app, 0.4)
        page.pull_row("llama3.2:1b").layers_button.setChecked(True)
        _settle(app, 0.4)
        models.grab().save(str(out / "models-pull.png"))
        ollama.set_token_delay(0)
        pause.release()
        _wait(app, lambda: all(not r.job.active for r in page.pull_rows()))

        # What is loaded.
        done: list[str] = []
        page.sig_loaded_shown.connect(done.append)
        page.show_loaded_tab()
        _wait(app, lambda: bool(done))
        _settle(app, 0.4)
        models.grab().save(str(out / "models-loaded.png"))
        page.tabs.setCurrentIndex(0)

        # A host with nothing on it: starter models, one click each.
        laptop = models.page("ollama@laptop")
        shown: list[str] = []
        laptop.sig_installed_shown.connect(shown.append)
        models.select("ollama@laptop")
        _wait(app, lambda: bool(shown))
        _settle(app, 0.4)
        models.grab().save(str(out / "models-starters.png"))

        # halext admin: a node, tested, with its models.
        node = models.node_page(3)
        tested: list[int] = []
        node.sig_tested.connect(tested.append)
        models.select_node(3)
        node.test()
        _wait(app, lambda: bool(tested))
        _settle(app, 0.4)
        models.grab().save(str(out / "models-admin-nodes.png"))

        window.close()  # type: ignore[attr-defined]
        lt.run(core.aclose())
        lt.stop()
        core.close()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
