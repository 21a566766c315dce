"""The usage dashboard over a real SQLite usage log (the test's isolated home), with the
report queries running on the database owner's thread behind a real Bridge (the rows are
seeded there too: the GUI thread never touches SQLite).

Expected numbers are counted by hand from the ROWS table below, independently of
storage's SQL, and compared with what the charts' QtCharts series and the table hold.
"""

from __future__ import annotations

import asyncio
import csv
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, Qt
from pytestqt.qtbot import QtBot

from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.storage.db import Database
from halext_desktop.storage.logfile import log_path
from halext_desktop.storage.settings import Settings
from halext_desktop.storage.usage import UsageLog
from halext_desktop.ui.bridge import Bridge
from halext_desktop.ui.charts import floor_bucket
from halext_desktop.ui.qt_settings import SettingsNotifier
from halext_desktop.ui.theme import dark_palette, light_palette
from halext_desktop.ui.usage.dashboard import UsageDashboard
from halext_desktop.ui.usage.table_model import COLUMNS
from tests.helpers.fake_services import FakeServices
from tests.helpers.storage import on_owner

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

WAIT_MS = 10_000
NOW = datetime.now(UTC)
OK, ERR, CAN, BLK, PLH = (
    UsageStatus.OK,
    UsageStatus.ERROR,
    UsageStatus.CANCELLED,
    UsageStatus.BLOCKED,
    UsageStatus.PLACEHOLDER,
)


@dataclass(frozen=True)
class Spec:
    model: str
    route: str
    status: UsageStatus
    age: timedelta
    latency: int | None = None
    ttft: int | None = None
    prompt: int = 0
    response: int = 0
    exact: bool = True
    error: str | None = None


H, D = timedelta(hours=1), timedelta(days=1)
ROWS: tuple[Spec, ...] = (
    Spec("llama3.1:8b", "ollama", OK, 1 * H, 100, 10, 10, 20),
    Spec("llama3.1:8b", "ollama", OK, 2 * H, 300, 30, 5, 7),
    Spec(
        "llama3.1:8b",
        "ollama",
        ERR,
        3 * H,
        50,
        None,
        4,
        0,
        error="Connection refused at 127.0.0.1:11434 — is `ollama serve` running?",
    ),
    Spec("openai:gpt-4o-mini", "halext", OK, H / 2, 1000, 200, 40, 60, exact=False),
    Spec("openai:gpt-4o-mini", "halext", CAN, 5 * H, 400, 90, 8, 2, exact=False),
    Spec("openai:gpt-4o-mini", "halext", BLK, 6 * H, None, None, 0, 0, exact=False),
    Spec("qwen2.5:7b", "ollama@studio", OK, 3 * D, 700, 70, 11, 13),
    Spec("qwen2.5:7b", "ollama@studio", ERR, 20 * D, 90, None, 3, 0, error="model not found"),
    Spec("mock:llama3.1", "halext", OK, 100 * D, 20, 5, 6, 9, exact=False),
    Spec("mock:llama3.1", "halext", PLH, 40 * D, 30, 6, 2, 17, exact=False),
)
WINDOW = {"24h": 1 * D, "7d": 7 * D, "30d": 30 * D, "all": None}


def in_range(spec: Spec, key: str) -> bool:
    limit = WINDOW[key]
    return limit is None or spec.age < limit


def record(usage: UsageLog, spec: Spec) -> None:
    usage.record(
        UsageRecord(
            model_identifier=spec.model,
            endpoint="/ai/chat/stream" if spec.route == "halext" else "/api/chat",
            prompt_tokens=spec.prompt,
            response_tokens=spec.response,
            latency_ms=spec.latency,
            ttft_ms=spec.ttft,
            created_at=NOW - spec.age,
            route=spec.route,
            requested_model=f"{spec.route}/{spec.model}",
            status=spec.status,
            error=spec.error,
            tokens_exact=spec.exact,
        )
    )


class GatedUsageLog(UsageLog):
    """A real UsageLog whose windowed report (24h: ``since`` set) waits for a gate, and
    which records the threads its reports run on. "all" (no ``since``) is never held, so
    which load is held does not depend on which worker thread starts first."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.gate = threading.Event()
        self.held = threading.Event()
        self.held_done = threading.Event()
        self.threads: set[int] = set()

    def requests_by_model(self, since: datetime | None = None) -> Any:
        self.threads.add(threading.get_ident())
        if since is None:
            return super().requests_by_model(since)
        self.held.set()
        assert self.gate.wait(10), "the test never opened the gate"
        try:
            return super().requests_by_model(since)
        finally:
            self.held_done.set()


@pytest.fixture
def services() -> FakeServices:
    return FakeServices(Settings.load())


@pytest.fixture
def usage(services: FakeServices) -> UsageLog:
    """The usage log, seeded with ROWS; every call runs on the owner thread."""
    log = on_owner(services).usage
    for spec in ROWS:
        record(log, spec)
    return log


@pytest.fixture
def bridge(qtbot: QtBot) -> Iterator[Bridge]:
    lt = LoopThread().start()
    yield Bridge(lt)
    lt.stop()


def make_dashboard(qtbot: QtBot, services: FakeServices, bridge: Bridge) -> UsageDashboard:
    """A dashboard over ``services`` and the settings on disk; it owns its notifier."""
    notifier = SettingsNotifier(services.settings)
    dash = UsageDashboard(services, bridge, notifier)
    notifier.setParent(dash)
    qtbot.addWidget(dash)
    return dash


def open_dashboard(qtbot: QtBot, services: FakeServices, bridge: Bridge) -> UsageDashboard:
    dash = make_dashboard(qtbot, services, bridge)
    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        dash.show()
    return dash


def switch(qtbot: QtBot, dash: UsageDashboard, key: str) -> None:
    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        qtbot.mouseClick(dash.range_buttons[key], Qt.MouseButton.LeftButton)


def table_column(dash: UsageDashboard, name: str) -> list[str]:
    c = COLUMNS.index(name)
    return [row[c] for row in dash.visible_rows()]


# ---- hand counts -------------------------------------------------------------------------


def hand_requests(key: str) -> dict[str, float]:
    """Requests: every row but blocked ones (a refused request sent nothing)."""
    out: dict[str, float] = {}
    for s in ROWS:
        if in_range(s, key) and s.status is not BLK:
            out[s.model] = out.get(s.model, 0) + 1
    return out


def hand_blocked(key: str) -> dict[str, float]:
    """Blocked rows, counted apart, per model of the requests chart (0 where none)."""
    out = dict.fromkeys(hand_requests(key), 0.0)
    for s in ROWS:
        if in_range(s, key) and s.status is BLK:
            out[s.model] = out.get(s.model, 0) + 1
    return out


def hand_latency(key: str) -> tuple[dict[str, float], dict[str, float]]:
    lat: dict[str, list[int]] = {}
    ttft: dict[str, list[int]] = {}
    for s in ROWS:
        if in_range(s, key) and s.status is OK:
            lat.setdefault(s.model, [])
            ttft.setdefault(s.model, [])
            if s.latency is not None:
                lat[s.model].append(s.latency)
            if s.ttft is not None:
                ttft[s.model].append(s.ttft)
    avg = {m: round(sum(v) / len(v)) if v else 0.0 for m, v in lat.items()}
    avg_ttft = {m: round(sum(v) / len(v)) if v else 0.0 for m, v in ttft.items()}
    return avg, avg_ttft


def hand_error_rate(key: str) -> dict[str, float]:
    errors: dict[str, int] = {}
    total: dict[str, int] = {}
    for s in ROWS:
        if in_range(s, key) and s.status is not BLK:
            total[s.model] = total.get(s.model, 0) + 1
            errors[s.model] = errors.get(s.model, 0) + (s.status in (ERR, PLH))
    return {m: round(100 * errors[m] / total[m], 1) for m in total}


# ---- tests -------------------------------------------------------------------------------


def test_charts_and_table_equal_hand_counts_for_24h(
    qtbot: QtBot, usage: UsageLog, services: FakeServices, bridge: Bridge
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    assert dash.range_key == "24h"

    requests = dash.requests_chart.values()["Requests"]
    assert requests == hand_requests("24h") == {"llama3.1:8b": 3, "openai:gpt-4o-mini": 2}
    blocked = dash.requests_chart.values()["Blocked (not sent)"]
    assert blocked == hand_blocked("24h") == {"llama3.1:8b": 0, "openai:gpt-4o-mini": 1}
    assert "1 blocked request counted apart" in dash.requests_chart.note_label.text()

    latency = dash.latency_chart.values()
    avg, avg_ttft = hand_latency("24h")
    assert latency["Average latency"] == avg == {"llama3.1:8b": 200, "openai:gpt-4o-mini": 1000}
    assert latency["Time to first token"] == avg_ttft
    assert avg_ttft == {"llama3.1:8b": 20, "openai:gpt-4o-mini": 200}

    rates = dash.errors_chart.values()["Error rate"]
    assert rates == hand_error_rate("24h") == {"llama3.1:8b": 33.3, "openai:gpt-4o-mini": 0.0}

    # Tokens per hour: each row lands in the bucket of its UTC hour; the rest are zeros.
    tokens = dash.tokens_chart.values()
    times = dash.tokens_chart.times()
    expected_prompt = dict.fromkeys(times, 0)
    expected_response = dict.fromkeys(times, 0)
    for s in ROWS:
        if in_range(s, "24h") and s.status is not BLK:
            bucket = floor_bucket(NOW - s.age, "hour")
            expected_prompt[bucket] += s.prompt
            expected_response[bucket] += s.response
    assert len(expected_prompt) == len(times)  # every row's hour is on the axis
    assert tokens["Prompt tokens"] == [expected_prompt[t] for t in times]
    assert tokens["Response tokens"] == [expected_response[t] for t in times]
    assert sum(tokens["Prompt tokens"]) == 10 + 5 + 4 + 40 + 8

    # The table: the six rows of the last day, newest first, with "~" on estimates.
    recent = sorted((s for s in ROWS if in_range(s, "24h")), key=lambda s: s.age)
    assert table_column(dash, "Model") == [s.model for s in recent]
    assert table_column(dash, "Status") == [s.status.value for s in recent]
    assert table_column(dash, "Route") == [s.route for s in recent]
    assert table_column(dash, "Latency (ms)") == [
        "" if s.latency is None else str(s.latency) for s in recent
    ]
    assert table_column(dash, "Tokens") == [
        f"{'' if s.exact else '~'}{s.prompt + s.response}" for s in recent
    ]
    assert table_column(dash, "Error")[recent.index(ROWS[2])].startswith("Connection refused")
    assert dash.chart_stack.currentIndex() == 0
    status = dash.status_label.text()
    assert "5 requests in the last 24 hours · 1 blocked (not sent, not counted)" in status


@pytest.mark.parametrize("key", ["7d", "30d", "all"])
def test_range_switching_recounts_everything(
    qtbot: QtBot, usage: UsageLog, services: FakeServices, bridge: Bridge, key: str
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    switch(qtbot, dash, key)
    assert dash.range_key == key
    assert dash.range_buttons[key].isChecked()
    assert dash.requests_chart.values()["Requests"] == hand_requests(key)
    assert dash.requests_chart.values()["Blocked (not sent)"] == hand_blocked(key)
    avg, avg_ttft = hand_latency(key)
    assert dash.latency_chart.values() == {
        "Average latency": avg,
        "Time to first token": avg_ttft,
    }
    assert dash.errors_chart.values()["Error rate"] == hand_error_rate(key)
    expected_rows = [s for s in ROWS if in_range(s, key)]
    assert len(dash.visible_rows()) == len(expected_rows)
    # Daily buckets beyond a day; tokens sum to the hand total whatever the bucketing.
    tokens = dash.tokens_chart.values()
    requests = [s for s in expected_rows if s.status is not BLK]
    assert sum(tokens["Prompt tokens"]) == sum(s.prompt for s in requests)
    assert sum(tokens["Response tokens"]) == sum(s.response for s in requests)
    assert dash.snapshot is not None and dash.snapshot.bucket == "day"
    # Busiest model on top in every per-model chart, and the same order in all three.
    order = dash.requests_chart.categories()
    assert dash.errors_chart.categories() == order
    counts = [hand_requests(key)[m] for m in order]
    assert counts == sorted(counts, reverse=True)


def test_filters_narrow_the_table_but_not_the_charts(
    qtbot: QtBot, usage: UsageLog, services: FakeServices, bridge: Bridge
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    switch(qtbot, dash, "all")
    charts_before = dash.requests_chart.values()

    # The combos offer what the range holds.
    models = [dash.model_filter.itemData(i) for i in range(1, dash.model_filter.count())]
    assert sorted(models) == sorted({s.model for s in ROWS})
    routes = [dash.route_filter.itemData(i) for i in range(1, dash.route_filter.count())]
    assert sorted(routes) == sorted({s.route for s in ROWS})

    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        dash.model_filter.setCurrentIndex(dash.model_filter.findData("llama3.1:8b"))
    assert table_column(dash, "Model") == ["llama3.1:8b"] * 3

    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        dash.status_filter.setCurrentIndex(dash.status_filter.findData("error"))
    assert table_column(dash, "Status") == ["error"]
    assert table_column(dash, "Model") == ["llama3.1:8b"]

    # Model back to all, route halext: halext rows of every status... that are errors: none.
    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        dash.model_filter.setCurrentIndex(0)
    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        dash.route_filter.setCurrentIndex(dash.route_filter.findData("halext"))
    assert dash.visible_rows() == []
    assert dash.no_match_label.isVisibleTo(dash)
    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        dash.status_filter.setCurrentIndex(0)
    expected = sorted((s for s in ROWS if s.route == "halext"), key=lambda s: s.age)
    assert table_column(dash, "Model") == [s.model for s in expected]
    assert all(t.startswith("~") for t in table_column(dash, "Tokens"))
    assert not dash.no_match_label.isVisibleTo(dash)

    assert dash.requests_chart.values() == charts_before


def test_export_csv_writes_exactly_the_visible_rows(
    qtbot: QtBot,
    usage: UsageLog,
    services: FakeServices,
    bridge: Bridge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    switch(qtbot, dash, "30d")
    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        dash.route_filter.setCurrentIndex(dash.route_filter.findData("halext"))
    # Sort by latency, ascending: the export follows the order shown.
    dash.table.sortByColumn(COLUMNS.index("Latency (ms)"), Qt.SortOrder.AscendingOrder)
    shown = dash.visible_rows()
    assert len(shown) == 3  # gpt-4o-mini's three; mock:llama3.1 is 100 days old

    path = tmp_path / "usage.csv"
    assert dash.export_csv(path) == 3
    with path.open(newline="", encoding="utf-8") as f:
        written = list(csv.reader(f))
    assert written[0] == list(COLUMNS)
    assert written[1:] == shown
    # The cells as the view shows them, read through the view's own model.
    view_model = dash.table.model()
    for r, row in enumerate(written[1:]):
        for c, text in enumerate(row):
            assert view_model.index(r, c).data() == text
    assert [row[COLUMNS.index("Latency (ms)")] for row in written[1:]] == ["", "400", "1000"]
    assert {row[COLUMNS.index("Tokens")] for row in written[1:]} == {"~100", "~10", "~0"}

    # The button goes through a save dialog, then the same export.
    button_path = tmp_path / "from-button.csv"
    monkeypatch.setattr(
        "halext_desktop.ui.usage.dashboard.QFileDialog.getSaveFileName",
        lambda *a, **k: (str(button_path), "CSV files (*.csv)"),
    )
    qtbot.mouseClick(dash.export_button, Qt.MouseButton.LeftButton)
    assert button_path.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    assert "Exported 3 rows" in dash.status_label.text()


def test_clear_asks_first_and_deletes_only_when_confirmed(
    qtbot: QtBot, usage: UsageLog, services: FakeServices, bridge: Bridge
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    asked: list[tuple[str, str]] = []

    def say_no(title: str, text: str) -> bool:
        asked.append((title, text))
        return False

    dash.retention.confirm = say_no
    qtbot.mouseClick(dash.retention.clear_button, Qt.MouseButton.LeftButton)
    assert asked and asked[0][0] == "Clear usage" and "cannot be undone" in asked[0][1]
    assert len(usage.recent(None)) == len(ROWS)

    dash.retention.confirm = lambda title, text: True
    with (
        qtbot.waitSignal(dash.sig_changed, timeout=WAIT_MS) as changed,
        qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS),
    ):
        qtbot.mouseClick(dash.retention.clear_button, Qt.MouseButton.LeftButton)
    assert changed.args == [len(ROWS)]
    assert usage.recent(None) == []
    assert dash.chart_stack.currentWidget() is dash.empty_label
    assert "No requests in the last 24 hours" in dash.empty_label.text()
    assert dash.visible_rows() == []
    assert f"deleted {len(ROWS)} requests" in dash.status_label.text()


def test_retention_setting_is_saved_and_prunes_older_rows(
    qtbot: QtBot, usage: UsageLog, services: FakeServices, bridge: Bridge
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    assert dash.retention.spin.value() == 0
    assert not dash.retention.apply_button.isEnabled()  # nothing to apply yet
    dash.retention.spin.setValue(10)
    assert dash.retention.apply_button.isEnabled()
    with (
        qtbot.waitSignal(dash.sig_changed, timeout=WAIT_MS) as changed,
        qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS),
    ):
        qtbot.mouseClick(dash.retention.apply_button, Qt.MouseButton.LeftButton)
    older = [s for s in ROWS if s.age > 10 * D]
    assert changed.args == [len(older)] and len(older) == 3
    assert Settings.load().usage_retention_days == 10  # on disk, for the next start
    assert len(usage.recent(None)) == len(ROWS) - len(older)
    assert not dash.retention.apply_button.isEnabled()

    # A change made elsewhere (Settings → Data) shows up in the spin box.
    dash._svc.settings.set("usage_retention_days", 30)
    qtbot.waitUntil(lambda: dash.retention.spin.value() == 30, timeout=WAIT_MS)


def test_empty_log_shows_the_empty_state(
    qtbot: QtBot, services: FakeServices, bridge: Bridge
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    assert dash.chart_stack.currentWidget() is dash.empty_label
    assert "No requests in the last 24 hours" in dash.empty_label.text()
    # Nothing anywhere: a longer range would not help, so it is not suggested.
    assert "longer range" not in dash.empty_label.text()
    assert dash.visible_rows() == []
    assert dash.snapshot is not None and dash.snapshot.total == 0


def test_an_empty_range_with_older_requests_suggests_a_longer_range(
    qtbot: QtBot, services: FakeServices, bridge: Bridge
) -> None:
    record(on_owner(services).usage, Spec("qwen2.5:7b", "ollama", UsageStatus.OK, 3 * D, 900))
    dash = open_dashboard(qtbot, services, bridge)
    assert dash.chart_stack.currentWidget() is dash.empty_label
    assert "Older requests are in a longer range." in dash.empty_label.text()
    switch(qtbot, dash, "7d")
    assert dash.snapshot is not None and dash.snapshot.total == 1


def test_the_error_rate_axis_stops_at_100_percent(qtbot: QtBot) -> None:
    from halext_desktop.ui.charts import BarChartCard

    card = BarChartCard("Error rate by model", unit="%", decimals=1, danger=True, ceiling=100.0)
    qtbot.addWidget(card)
    card.set_data(["always-fails", "sometimes"], [("Error rate", [100.0, 40.0])])
    assert card.value_range() == (0.0, 100.0)
    card.set_data(["sometimes"], [("Error rate", [12.5])])
    assert card.value_range()[1] < 100.0  # room for the label, well below the ceiling


class BrokenUsageLog(UsageLog):
    """A usage log whose reports fail with a bug (not a database error)."""

    def requests_by_model(self, since: datetime | None = None) -> Any:
        raise RuntimeError("a bug in a report")


def test_an_unexpected_read_error_names_the_log_file(
    qtbot: QtBot, services: FakeServices, bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    services.use_usage_log(BrokenUsageLog(services.db))
    dash = make_dashboard(qtbot, services, bridge)
    with qtbot.waitSignal(dash.sig_load_failed, timeout=WAIT_MS) as failed:
        dash.show()
    message = failed.args[0]
    assert message.startswith("Could not read the usage log: unexpected error (RuntimeError)")
    assert str(log_path()) in message
    assert dash.status_label.text() == message
    assert any(r.exc_info and "a bug in a report" in str(r.exc_info[1]) for r in caplog.records)


def test_loading_runs_on_the_database_thread_and_a_newer_load_wins(
    qtbot: QtBot, services: FakeServices, bridge: Bridge
) -> None:
    gated = GatedUsageLog(services.db)
    services.use_usage_log(gated)
    for spec in ROWS:
        record(on_owner(services).usage, spec)
    dash = make_dashboard(qtbot, services, bridge)
    loaded: list[str] = []
    dash.sig_loaded.connect(lambda: loaded.append(dash.snapshot.range_key if dash.snapshot else ""))

    dash.refresh()  # 24h: held at the gate on the database owner's thread
    assert gated.held.wait(10)
    assert dash.loading and dash.status_label.text() == "Loading…"
    dash.set_range("all")  # a newer load: the older answer must never be shown
    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        gated.gate.set()
    assert gated.held_done.wait(10)
    # Let the loop thread and the GUI deliver anything still queued.
    bridge.loop_thread.submit(asyncio.sleep(0)).result(timeout=5)
    on_owner(services).flush()
    QCoreApplication.processEvents()
    assert loaded == ["all"]
    assert dash.snapshot is not None and dash.snapshot.range_key == "all"
    assert dash.requests_chart.values()["Requests"] == hand_requests("all")
    assert gated.threads == {services.storage.owner.thread.ident}


def test_charts_follow_the_palette(
    qtbot: QtBot, usage: UsageLog, services: FakeServices, bridge: Bridge
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    for palette in (dark_palette(), light_palette()):
        dash.setPalette(palette)
        base = palette.color(palette.ColorRole.Base)
        text = palette.color(palette.ColorRole.Text)
        for card in (dash.requests_chart, dash.latency_chart, dash.errors_chart, dash.tokens_chart):
            assert card.chart.backgroundBrush().color() == base
            assert card.chart.legend().labelColor() == text
            for axis in card.chart.axes():
                assert axis.labelsBrush().color() != base
    # Several measures get a legend (requests and the blocked ones apart); one does not.
    assert dash.latency_chart.chart.legend().isVisible()
    assert dash.requests_chart.chart.legend().isVisible()
    assert not dash.errors_chart.chart.legend().isVisible()


def test_esc_and_close_close_the_usage_window(
    qtbot: QtBot, services: FakeServices, bridge: Bridge
) -> None:
    dash = open_dashboard(qtbot, services, bridge)
    qtbot.waitExposed(dash)
    dash.table.setFocus()
    qtbot.keyClick(dash.table, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not dash.isVisible())
    with qtbot.waitSignal(dash.sig_loaded, timeout=WAIT_MS):
        dash.show()
    qtbot.mouseClick(dash.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dash.isVisible())
