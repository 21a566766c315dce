"""The providers panel through the real app wiring: a Core (settings, keyring store,
backends, Router) pointed at the halext and Ollama protocol test servers on 127.0.0.1,
checks running on a real LoopThread behind a real Bridge."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem
from pytestqt.qtbot import QtBot

from halext_desktop.app.core import Core
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.route_check import ADMIN_LIST_BUG_NOTE
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.bridge import Bridge
from halext_desktop.ui.providers.models_list import MODEL_COLUMNS
from halext_desktop.ui.providers.panel import (
    OFFLINE_SKIP,
    ROUTE_COLUMNS,
    ProvidersPanel,
    RouteState,
)
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

WAIT_MS = 10_000
NODES = [
    {"id": 3, "name": "Studio", "models": ["qwen2.5:7b"], "latency_ms": 22},
    {"id": 4, "name": "Attic", "models": [], "status": "offline", "reachable": False},
]


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        yield server
    assert server.errors == [], f"ollama test server errors: {server.errors}"


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread().start()
    yield lt
    lt.stop()


@pytest.fixture
def bridge(loop_thread: LoopThread, qtbot: QtBot) -> Bridge:
    return Bridge(loop_thread)


HalextFactory = Callable[..., HalextServer]
CoreFactory = Callable[..., Core]


@pytest.fixture
def make_halext() -> Iterator[HalextFactory]:
    servers: list[HalextServer] = []

    def factory(**kwargs: Any) -> HalextServer:
        kwargs.setdefault("client_nodes", NODES)
        server = HalextServer(**kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.errors == [], f"halext test server errors: {server.errors}"


@pytest.fixture
def make_core(loop_thread: LoopThread, ollama: OllamaServer) -> Iterator[CoreFactory]:
    """Cores whose settings point at the servers; closed (clients and database) after."""
    made: list[Core] = []

    def factory(halext: HalextServer, **overrides: Any) -> Core:
        settings = Settings.load()
        settings.set("halext_url", halext.url)
        settings.set("ollama_hosts", [{"name": "local", "url": ollama.url}])
        for key, value in overrides.items():
            settings.set(key, value)
        core = Core(settings=settings)
        made.append(core)
        return core

    yield factory
    for core in made:
        loop_thread.run(core.aclose(), timeout=10)
        core.close()


def cell(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    item = table.item(row, column)
    assert item is not None, f"no item at ({row}, {column})"
    return item


def open_panel(qtbot: QtBot, core: Core, bridge: Bridge) -> ProvidersPanel:
    panel = ProvidersPanel(core, bridge)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def check_row(qtbot: QtBot, panel: ProvidersPanel, route_id: str) -> dict[str, str]:
    """Click the row's [Test] and wait for its result; returns the row's cells."""
    with qtbot.waitSignal(
        panel.sig_checked, timeout=WAIT_MS, check_params_cb=lambda rid: rid == route_id
    ):
        qtbot.mouseClick(panel.test_button(route_id), Qt.MouseButton.LeftButton)
    return panel.row_texts(route_id)


def show_models(qtbot: QtBot, panel: ProvidersPanel, route_id: str) -> None:
    with qtbot.waitSignal(
        panel.sig_models_shown, timeout=WAIT_MS, check_params_cb=lambda rid: rid == route_id
    ):
        qtbot.mouseClick(panel.models_button(route_id), Qt.MouseButton.LeftButton)


def test_one_row_per_route(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    ollama: OllamaServer,
) -> None:
    halext = make_halext()
    core = make_core(
        halext,
        ollama_hosts=[
            {"name": "local", "url": ollama.url},
            {"name": "studio", "url": "http://192.168.7.20:11434"},
        ],
        openai_endpoints=[{"name": "lmstudio", "url": f"{ollama.url}/v1"}],
    )
    panel = open_panel(qtbot, core, bridge)
    assert panel.route_ids() == ["halext", "ollama", "ollama@studio", "openai@lmstudio"]
    rows = {rid: panel.row_texts(rid) for rid in panel.route_ids()}
    assert rows["ollama@studio"]["Address"] == "192.168.7.20:11434"
    assert rows["openai@lmstudio"]["Provider"] == "OpenAI-compatible"
    assert all(r["Status"] == RouteState.UNCHECKED.value for r in rows.values())
    # Opening the panel contacts nobody; only Test does.
    assert halext.requests == [] and ollama.requests == []


def test_the_details_keep_their_width_next_to_the_row_buttons(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    ollama: OllamaServer,
) -> None:
    """At a modest width, a checked row's details stay readable: the row's buttons take
    no more than they need (three push buttons per row once left the details ~45 px, a
    word per line, and rows so tall that one route filled the table)."""
    core = make_core(make_halext())
    panel = open_panel(qtbot, core, bridge)
    panel.resize(980, 620)
    for route_id in panel.route_ids():
        check_row(qtbot, panel, route_id)
    t = panel.routes_table
    details = ROUTE_COLUMNS.index("Details")
    buttons = len(ROUTE_COLUMNS) - 1
    assert t.columnWidth(details) >= 120, [t.columnWidth(c) for c in range(t.columnCount())]
    assert t.columnWidth(buttons) < 200  # three compact buttons, not three wide ones
    # Every route is in view at once.
    shown = sum(t.rowHeight(row) for row in range(t.rowCount()))
    assert shown <= t.viewport().height()


def test_row_follows_a_server_going_down_and_coming_back(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    ollama: OllamaServer,
) -> None:
    panel = open_panel(qtbot, make_core(make_halext()), bridge)

    row = check_row(qtbot, panel, "ollama")
    assert row["Status"] == "up"
    assert row["Version"] == ollama.version
    assert row["Models"] == str(len(ollama.models))
    assert row["Latency"].endswith(" ms") and row["Last checked"]
    assert row["Details"].startswith(f"Ollama {ollama.version}")

    ollama.stop()
    row = check_row(qtbot, panel, "ollama")
    assert row["Status"] == "down"
    assert f"127.0.0.1:{ollama.port}" in row["Details"]
    assert row["Version"] == "" and row["Models"] == ""
    assert panel.row("ollama").state is RouteState.DOWN

    ollama.start()  # same port: the server came back
    row = check_row(qtbot, panel, "ollama")
    assert row["Status"] == "up"
    assert row["Models"] == str(len(ollama.models))


def test_test_does_not_block_the_gui(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    ollama: OllamaServer,
) -> None:
    panel = open_panel(qtbot, make_core(make_halext()), bridge)
    ollama.delay_first_byte(0.5)
    with qtbot.waitSignal(panel.sig_checked, timeout=WAIT_MS):
        qtbot.mouseClick(panel.test_button("ollama"), Qt.MouseButton.LeftButton)
        # The click returned at once: the check is still under way on the loop thread.
        assert panel.row_texts("ollama")["Status"] == RouteState.CHECKING.value
        assert not panel.test_button("ollama").isEnabled()
    assert panel.row_texts("ollama")["Status"] == "up"
    assert panel.test_button("ollama").isEnabled()


def test_copy_id_puts_a_reference_the_router_lists_on_the_clipboard(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    loop_thread: LoopThread,
) -> None:
    core = make_core(make_halext())
    loop_thread.run(core.sign_in("dev", "dev123", False), timeout=10)
    panel = open_panel(qtbot, core, bridge)
    listed = {str(m.ref) for m in loop_thread.run(core.list_models(), timeout=10).models}

    for route_id, ref in (
        ("ollama", "ollama/qwen2.5:7b"),
        ("halext", "halext/client:3:qwen2.5:7b"),
    ):
        show_models(qtbot, panel, route_id)
        assert panel.models_route == route_id
        QGuiApplication.clipboard().clear()
        qtbot.mouseClick(panel.models.copy_button(ref), Qt.MouseButton.LeftButton)
        copied = QGuiApplication.clipboard().text()
        assert copied == ref
        parsed = ModelRef.parse(copied)
        assert parsed.route_id == route_id
        assert copied in listed
        assert str(parsed) == copied

    # Every model the route lists has its button, and each reference round-trips.
    shown = {str(m.ref) for m in panel.models.models()}
    assert shown == {r for r in listed if r.startswith("halext/")}


def test_models_list_shows_what_is_known(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    loop_thread: LoopThread,
    ollama: OllamaServer,
) -> None:
    core = make_core(make_halext(), disable_cloud=True)
    loop_thread.run(core.sign_in("dev", "dev123", False), timeout=10)
    panel = open_panel(qtbot, core, bridge)

    show_models(qtbot, panel, "ollama")
    table = panel.models.table
    headers = list(MODEL_COLUMNS)
    spec = ollama.find("qwen2.5:7b")
    assert spec is not None
    rows = {
        cell(table, r, 0).text(): {
            h: cell(table, r, c).text() for c, h in enumerate(headers) if c < len(headers) - 1
        }
        for r in range(table.rowCount())
    }
    assert set(rows) == {m.name for m in ollama.models}
    qwen = rows["qwen2.5:7b"]
    assert qwen["Size"] == "4.7 GB"  # 4,683,087,332 bytes
    assert qwen["Parameters"] == spec.parameter_size
    assert qwen["Quantization"] == spec.quantization_level
    assert qwen["Context"] == "32k"  # 32,768 from /api/show
    assert qwen["Capabilities"] == ", ".join(spec.capabilities)
    assert qwen["Locality"] == "local"
    assert qwen["Reference"] == "ollama/qwen2.5:7b"

    show_models(qtbot, panel, "halext")
    localities = {
        cell(table, r, headers.index("Reference")).text(): cell(
            table, r, headers.index("Locality")
        ).text()
        for r in range(table.rowCount())
    }
    assert localities["halext/openai:gpt-4o-mini"] == "cloud (blocked)"  # cloud is off
    assert localities["halext/client:3:qwen2.5:7b"] == "self-hosted"


def test_offline_skips_halext_and_openai_without_contacting_them(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    ollama: OllamaServer,
) -> None:
    halext = make_halext()
    core = make_core(
        halext,
        offline=True,
        openai_endpoints=[{"name": "lmstudio", "url": f"{ollama.url}/v1"}],
    )
    panel = open_panel(qtbot, core, bridge)
    assert panel.offline_label.isVisibleTo(panel)
    for rid in ("halext", "openai@lmstudio"):
        assert panel.row_texts(rid)["Status"] == OFFLINE_SKIP

    checked: list[str] = []
    panel.sig_checked.connect(checked.append)
    qtbot.mouseClick(panel.test_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sorted(checked) == sorted(panel.route_ids()), timeout=WAIT_MS)
    assert panel.row_texts("ollama")["Status"] == "up"
    for rid in ("halext", "openai@lmstudio"):
        assert panel.row_texts(rid)["Status"] == OFFLINE_SKIP
        assert panel.row_texts(rid)["Latency"] == ""

    show_models(qtbot, panel, "halext")
    assert panel.models.note.text().startswith(OFFLINE_SKIP)
    assert panel.models.table.rowCount() == 0

    assert halext.requests == []
    assert not [r for r in ollama.requests if r.path.startswith("/v1")]


def test_signed_out_halext_is_up_but_cannot_count_models(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
) -> None:
    halext = make_halext()
    panel = open_panel(qtbot, make_core(halext), bridge)
    row = check_row(qtbot, panel, "halext")
    assert row["Status"] == "up"
    assert row["Version"] == "0.2.0-refactored"
    assert "not signed in" in row["Details"]
    assert row["Models"] == "—"
    i = panel.route_ids().index("halext")
    assert (
        cell(panel.routes_table, i, ROUTE_COLUMNS.index("Models")).toolTip()
        == "sign in to list models"
    )
    assert not panel.nodes.isVisibleTo(panel)
    assert not halext.requests_to("/admin/ai-clients")


def test_admin_sees_the_servers_ai_client_nodes(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    loop_thread: LoopThread,
) -> None:
    halext = make_halext()
    core = make_core(halext)
    loop_thread.run(core.sign_in("dev", "dev123", False), timeout=10)
    panel = open_panel(qtbot, core, bridge)
    with qtbot.waitSignal(panel.sig_nodes_shown, timeout=WAIT_MS):
        row = check_row(qtbot, panel, "halext")
    assert row["Status"] == "up" and "signed in as dev" in row["Details"]
    halext_models = loop_thread.run(core.router.backends["halext"].list_models(), timeout=10)
    assert row["Models"] == str(len(halext_models))

    assert panel.nodes.isVisibleTo(panel)
    t = panel.nodes.table
    names = [cell(t, r, 1).text() for r in range(t.rowCount())]
    assert names == ["Studio", "Attic"]
    assert cell(t, 0, 3).text() == "http://node3.lan:11434"
    assert cell(t, 0, 4).text() == "online"
    assert cell(t, 0, 5).text() == "qwen2.5:7b"
    assert cell(t, 1, 4).text() == "offline"
    assert cell(t, 0, 6).text() == "never"
    assert "2 nodes" in panel.nodes.note.text()


def test_admin_nodes_known_500_gets_a_clear_note(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    loop_thread: LoopThread,
) -> None:
    seen = [{**NODES[0], "last_seen_at": "2026-11-25T20:22:17"}]
    halext = make_halext(client_nodes=seen)
    core = make_core(halext)
    loop_thread.run(core.sign_in("dev", "dev123", False), timeout=10)
    panel = open_panel(qtbot, core, bridge)
    with qtbot.waitSignal(panel.sig_nodes_shown, timeout=WAIT_MS):
        row = check_row(qtbot, panel, "halext")
    assert [r.status for r in halext.requests_to("/admin/ai-clients")] == [500]
    assert row["Status"] == "up"  # the route works; only the admin list failed
    assert panel.nodes.isVisibleTo(panel)
    assert panel.nodes.note.text() == f"1 node. {ADMIN_LIST_BUG_NOTE}"
    assert panel.nodes.admin is not None and panel.nodes.admin.error == ADMIN_LIST_BUG_NOTE
    # The nodes /ai/models knows stand in for the list.
    t = panel.nodes.table
    assert t.isVisibleTo(panel) and t.rowCount() == 1
    assert [cell(t, 0, c).text() for c in (1, 3, 4, 5)] == [
        "Studio",
        "http://node3.lan:11434",
        "listed",
        "qwen2.5:7b",
    ]


def test_non_admin_is_not_shown_nodes(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    loop_thread: LoopThread,
) -> None:
    halext = make_halext(users={"dev": "dev123", "amy": "amy-pw"}, admins=("dev",))
    core = make_core(halext)
    loop_thread.run(core.sign_in("amy", "amy-pw", False), timeout=10)
    panel = open_panel(qtbot, core, bridge)
    with qtbot.waitSignal(panel.sig_nodes_shown, timeout=WAIT_MS):
        row = check_row(qtbot, panel, "halext")
    assert "signed in as amy" in row["Details"]
    assert halext.requests_to("/users/me/")  # asked who we are
    assert not halext.requests_to("/admin/ai-clients")  # and did not try the admin list
    assert not panel.nodes.isVisibleTo(panel)


def test_esc_and_close_close_the_window_and_hosts_are_named_as_in_settings(
    qtbot: QtBot,
    make_halext: HalextFactory,
    make_core: CoreFactory,
    bridge: Bridge,
    ollama: OllamaServer,
) -> None:
    core = make_core(make_halext(), ollama_hosts=[{"name": "home", "url": ollama.url}])
    panel = open_panel(qtbot, core, bridge)
    qtbot.waitExposed(panel)
    # The default host (route id "ollama") is called by its name, as everywhere else.
    assert panel.row_texts("ollama")["Route"] == "home"
    panel.activateWindow()  # as the main window presents it
    qtbot.waitUntil(panel.isActiveWindow)
    panel.routes_table.setFocus()
    qtbot.keyClick(panel.routes_table, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not panel.isVisible())
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.mouseClick(panel.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.isVisible())
