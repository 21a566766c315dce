"""The model picker: grouping, details, policy, filtering, keyboard and mouse, the button."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.policy import CLOUD_REASON, OFFLINE_REASON, Policy
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import Locality, ModelInfo, ModelListing
from halext_desktop.ui.model_picker import (
    ModelPickerButton,
    RowKind,
    format_context,
    format_size,
    route_titles,
)

# The offscreen platform cannot raise windows or grab the keyboard for a Qt.Popup and says
# so at warning level; that is the test platform's limitation, not the widget's.
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")


@dataclass
class Host:
    name: str
    url: str


def info(ref: str, locality: Locality, provider: str = "ollama", **kw: object) -> ModelInfo:
    r = ModelRef.parse(ref)
    return ModelInfo(r, r.model, provider, provider, locality, **kw)  # type: ignore[arg-type]


LLAMA = info(
    "ollama/llama3.1:8b",
    Locality.LOCAL,
    size_bytes=4_920_753_328,
    quantization="Q4_K_M",
    context_length=131072,
)
QWEN = info(
    "ollama/qwen2.5:7b",
    Locality.LOCAL,
    size_bytes=4_683_087_332,
    quantization="Q4_K_M",
    context_length=32768,
)
NODE = info(
    "halext/client:3:qwen2.5:7b", Locality.SELF_HOSTED, node_name="Studio node", latency_ms=22
)
GPT = info("halext/openai:gpt-4o-mini", Locality.CLOUD, provider="openai", context_length=128000)
GEMINI = info("halext/gemini:gemini-2.5-flash", Locality.CLOUD, provider="gemini")
STUDIO = info("ollama@studio/qwen2.5:14b", Locality.SELF_HOSTED, size_bytes=8_988_124_069)


def listing() -> ModelListing:
    return ModelListing(
        [GPT, NODE, LLAMA, STUDIO, QWEN, GEMINI],
        errors={
            "openai@groq": RouteError(
                ErrorKind.CONNECTION, "Connection refused at 10.0.0.5:8000", "Is it running?"
            )
        },
    )


@pytest.fixture
def picker(qtbot: QtBot) -> ModelPickerButton:
    button = ModelPickerButton()
    qtbot.addWidget(button)
    button.set_route_titles(
        route_titles([Host("local", "http://127.0.0.1:11434/"), Host("studio", "http://s:11434")])
    )
    button.show()
    return button


def texts(picker: ModelPickerButton) -> list[tuple[RowKind, str]]:
    return [(r.kind, r.text) for r in picker.popup.visible_rows()]


def test_rows_are_grouped_by_locality_then_route_with_headers(picker: ModelPickerButton) -> None:
    picker.set_listing(listing(), Policy())
    assert texts(picker) == [
        (RowKind.HEADER, "LOCAL · Ollama local"),
        (RowKind.MODEL, "llama3.1:8b"),
        (RowKind.MODEL, "qwen2.5:7b"),
        (RowKind.HEADER, "SELF-HOSTED · halext"),
        (RowKind.MODEL, "client:3:qwen2.5:7b"),
        (RowKind.HEADER, "SELF-HOSTED · Ollama studio"),
        (RowKind.MODEL, "qwen2.5:14b"),
        (RowKind.HEADER, "CLOUD · halext"),
        (RowKind.MODEL, "gemini:gemini-2.5-flash"),
        (RowKind.MODEL, "openai:gpt-4o-mini"),
        (
            RowKind.NOTE,
            "groq (OpenAI-compatible) — connection refused at 10.0.0.5:8000: Is it running?",
        ),
    ]


def test_rows_show_size_quantization_context_node_and_latency(picker: ModelPickerButton) -> None:
    picker.set_listing(listing(), Policy())
    details = {r.text: r.detail for r in picker.popup.visible_rows() if r.kind is RowKind.MODEL}
    assert details["qwen2.5:7b"] == "4.7 GB  Q4_K_M  32k ctx"
    assert details["llama3.1:8b"] == "4.9 GB  Q4_K_M  128k ctx"
    assert details["client:3:qwen2.5:7b"] == "Studio node  22 ms"
    assert details["openai:gpt-4o-mini"] == "128k ctx"


def test_signed_out_and_skipped_routes_show_a_muted_line(picker: ModelPickerButton) -> None:
    out = RouteError(ErrorKind.SIGNED_OUT, "Signed out", "Sign in from Settings")
    picker.set_listing(ModelListing([QWEN], errors={"halext": out}), Policy())
    notes = [r for r in picker.popup.visible_rows() if r.kind is RowKind.NOTE]
    assert [n.text for n in notes] == ["halext — signed out: Sign in from Settings"]
    picker.set_listing(ModelListing([QWEN], skipped={"halext": OFFLINE_REASON}), Policy())
    notes = [r for r in picker.popup.visible_rows() if r.kind is RowKind.NOTE]
    assert [n.text for n in notes] == [f"halext — not asked: {OFFLINE_REASON}"]


def test_cloud_rows_are_disabled_with_the_reason_and_enabled_again(
    picker: ModelPickerButton,
) -> None:
    picker.set_listing(listing(), Policy(disable_cloud=True))
    model = picker.popup.model
    rows = {r.ref: (i, r) for i, r in enumerate(model.rows()) if r.kind is RowKind.MODEL}
    i, gpt = rows[str(GPT.ref)]
    assert gpt.reason == CLOUD_REASON and not gpt.enabled
    index = model.index(i, 0)
    assert not index.flags() & Qt.ItemFlag.ItemIsEnabled
    assert "disabled: " + CLOUD_REASON in index.data(Qt.ItemDataRole.AccessibleTextRole)
    assert rows[str(QWEN.ref)][1].enabled and rows[str(NODE.ref)][1].enabled

    picker.set_policy(Policy(disable_cloud=False))
    after = {r.ref: r for r in picker.popup.model.rows() if r.kind is RowKind.MODEL}
    assert after[str(GPT.ref)].enabled and after[str(GPT.ref)].reason is None


def test_offline_policy_disables_everything_but_ollama(picker: ModelPickerButton) -> None:
    picker.set_listing(listing(), Policy(offline=True))
    enabled = {r.ref for r in picker.popup.visible_rows() if r.enabled}
    assert enabled == {str(LLAMA.ref), str(QWEN.ref), str(STUDIO.ref)}


def test_only_route_errors_say_no_models_yet_not_no_match(picker: ModelPickerButton) -> None:
    # First start with nothing reachable: the list holds only error lines, no filter typed.
    down = RouteError(ErrorKind.CONNECTION, "Connection refused at 127.0.0.1:2", "Is it running?")
    out = RouteError(ErrorKind.SIGNED_OUT, "Signed out", "Sign in from Settings")
    picker.set_listing(ModelListing([], errors={"ollama": down, "halext": out}), Policy())
    picker.open_popup()
    assert [r.kind for r in picker.popup.visible_rows()] == [RowKind.NOTE, RowKind.NOTE]
    assert picker.popup.status_label.text().startswith("No models yet")


def test_typing_filters_by_name_provider_and_node_case_insensitively(
    qtbot: QtBot, picker: ModelPickerButton
) -> None:
    picker.set_listing(listing(), Policy())
    picker.open_popup()
    qtbot.keyClicks(picker.popup.filter_edit, "QWEN")
    assert texts(picker) == [
        (RowKind.HEADER, "LOCAL · Ollama local"),
        (RowKind.MODEL, "qwen2.5:7b"),
        (RowKind.HEADER, "SELF-HOSTED · halext"),
        (RowKind.MODEL, "client:3:qwen2.5:7b"),
        (RowKind.HEADER, "SELF-HOSTED · Ollama studio"),
        (RowKind.MODEL, "qwen2.5:14b"),
    ]
    picker.popup.filter_edit.clear()
    qtbot.keyClicks(picker.popup.filter_edit, "studio node")
    assert [t for k, t in texts(picker) if k is RowKind.MODEL] == ["client:3:qwen2.5:7b"]
    picker.popup.filter_edit.clear()
    qtbot.keyClicks(picker.popup.filter_edit, "Gemini")
    assert [t for k, t in texts(picker) if k is RowKind.MODEL] == ["gemini:gemini-2.5-flash"]
    picker.popup.filter_edit.clear()
    qtbot.keyClicks(picker.popup.filter_edit, "nothing-like-this")
    assert texts(picker) == []
    assert picker.popup.status_label.text() == "No models match “nothing-like-this”"


def test_keyboard_skips_headers_and_disabled_rows_and_enter_picks(
    qtbot: QtBot, picker: ModelPickerButton
) -> None:
    picker.set_listing(listing(), Policy(disable_cloud=True))
    picker.open_popup()
    popup, edit = picker.popup, picker.popup.filter_edit
    assert popup.isVisible()
    assert popup.selected_ref() == str(LLAMA.ref)  # first pickable row
    seen = [popup.selected_ref()]
    for _ in range(6):  # more presses than rows: cloud rows and the note are never reached
        qtbot.keyClick(edit, Qt.Key.Key_Down)
        seen.append(popup.selected_ref())
    assert seen == [str(x.ref) for x in (LLAMA, QWEN, NODE, STUDIO)] + [str(STUDIO.ref)] * 3
    qtbot.keyClick(edit, Qt.Key.Key_Up)
    qtbot.keyClick(edit, Qt.Key.Key_Up)
    assert popup.selected_ref() == str(QWEN.ref)
    with qtbot.waitSignal(picker.sig_model_chosen, timeout=2000) as blocker:
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert blocker.args == [str(QWEN.ref)]
    assert not popup.isVisible()
    assert picker.current() == str(QWEN.ref)
    assert picker.text() == "qwen2.5:7b · local ▾"


def test_filter_then_enter_picks_the_first_match(qtbot: QtBot, picker: ModelPickerButton) -> None:
    picker.set_listing(listing(), Policy())
    picker.open_popup()
    qtbot.keyClicks(picker.popup.filter_edit, "14b")
    with qtbot.waitSignal(picker.sig_model_chosen, timeout=2000) as blocker:
        qtbot.keyClick(picker.popup.filter_edit, Qt.Key.Key_Enter)
    assert blocker.args == [str(STUDIO.ref)]
    assert picker.text() == "qwen2.5:14b · studio ▾"


def test_escape_closes_without_choosing(qtbot: QtBot, picker: ModelPickerButton) -> None:
    picker.set_listing(listing(), Policy())
    picker.set_current(str(NODE.ref))
    picker.open_popup()
    assert picker.popup.selected_ref() == str(NODE.ref)  # opens on the current model
    with qtbot.assertNotEmitted(picker.sig_model_chosen):
        qtbot.keyClick(picker.popup.filter_edit, Qt.Key.Key_Escape)
    assert not picker.popup.isVisible()
    assert picker.current() == str(NODE.ref)


def test_mouse_click_picks_enabled_rows_only(qtbot: QtBot, picker: ModelPickerButton) -> None:
    picker.set_listing(listing(), Policy(disable_cloud=True))
    picker.open_popup()
    view, model = picker.popup.view, picker.popup.model
    qtbot.waitExposed(picker.popup)
    row_of = {r.ref: i for i, r in enumerate(model.rows())}

    def click(ref: str) -> None:
        rect = view.visualRect(model.index(row_of[ref], 0))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    view.scrollToBottom()
    with qtbot.assertNotEmitted(picker.sig_model_chosen):
        click(str(GPT.ref))
    assert picker.popup.isVisible()
    view.scrollToTop()
    with qtbot.waitSignal(picker.sig_model_chosen, timeout=2000) as blocker:
        click(str(NODE.ref))
    assert blocker.args == [str(NODE.ref)]
    assert picker.current() == str(NODE.ref)


def test_set_current_round_trip_and_placeholder_texts(picker: ModelPickerButton) -> None:
    assert picker.current() is None
    assert picker.text() == "Choose a model ▾"
    picker.set_loading(True)
    assert picker.text() == "Loading models… ▾"
    picker.set_listing(listing(), Policy())
    picker.set_current("halext/client:3:qwen2.5:7b")
    assert picker.current() == "halext/client:3:qwen2.5:7b"
    assert picker.text() == "client:3:qwen2.5:7b · halext ▾"
    picker.set_current(None)
    assert picker.current() is None
    assert picker.text() == "Choose a model ▾"


def test_current_model_refused_by_policy_is_struck_with_the_reason(
    picker: ModelPickerButton,
) -> None:
    picker.set_listing(listing(), Policy())
    picker.set_current(str(GPT.ref))
    assert not picker.font().strikeOut()
    assert picker.current_refusal() is None

    picker.set_policy(Policy(disable_cloud=True))
    assert picker.font().strikeOut()
    assert picker.text().startswith("⚠ openai:gpt-4o-mini · halext")
    assert CLOUD_REASON in picker.toolTip()
    assert picker.current() == str(GPT.ref)  # the lead decides what to do with it

    picker.set_listing(listing(), Policy(disable_cloud=False))
    assert not picker.font().strikeOut()
    assert CLOUD_REASON not in picker.toolTip()


def test_a_refused_model_missing_from_the_listing_is_still_recognised_as_cloud(
    picker: ModelPickerButton,
) -> None:
    picker.set_listing(ModelListing([QWEN]), Policy(disable_cloud=True))
    picker.set_current("halext/gemini:gemini-2.5-pro")
    assert picker.current_refusal() == CLOUD_REASON
    picker.set_current("halext/client:1:llama3")
    assert picker.current_refusal() is None


def test_five_hundred_models_filter_correctly(qtbot: QtBot, picker: ModelPickerButton) -> None:
    models = [
        info(f"ollama@h{i % 5}/model-{i:03d}:7b", Locality.SELF_HOSTED, size_bytes=10**9 + i)
        for i in range(500)
    ]
    picker.set_listing(ModelListing(models), Policy())
    assert sum(r.kind is RowKind.MODEL for r in picker.popup.visible_rows()) == 500
    picker.open_popup()
    qtbot.keyClicks(picker.popup.filter_edit, "model-12")
    shown = [r.text for r in picker.popup.visible_rows() if r.kind is RowKind.MODEL]
    assert sorted(shown) == [f"model-{i:03d}:7b" for i in range(120, 130)]
    assert picker.popup.selected_ref() is not None


def test_format_helpers() -> None:
    assert format_size(4_683_087_332) == "4.7 GB"
    assert format_size(None) == "" and format_size(0) == ""
    assert format_size(45_000_000) == "45 MB"
    assert format_context(32768) == "32k ctx"
    assert format_context(128000) == "128k ctx"
    assert format_context(512) == "512 ctx"
    assert format_context(131072) == "128k ctx"
    assert format_context(1_048_576) == "1M ctx"
    assert format_context(None) == ""
    titles = route_titles([Host("local", "http://127.0.0.1:11434"), Host("gpu", "http://g:1")])
    # Every host by the name it was given (the default route "ollama" is the first one).
    assert titles == {"ollama": "local", "ollama@gpu": "gpu"}


def test_embedding_only_models_are_listed_but_cannot_be_picked(qtbot) -> None:
    from halext_desktop.routing.policy import Policy
    from halext_desktop.routing.refs import ModelRef
    from halext_desktop.routing.types import Locality, ModelInfo, ModelListing
    from halext_desktop.ui.model_picker import ModelPickerButton

    button = ModelPickerButton()
    qtbot.addWidget(button)
    chat = ModelInfo(
        ModelRef.parse("ollama/llama3.2:latest"),
        "llama3.2:latest",
        "ollama",
        "ollama",
        Locality.LOCAL,
        capabilities=("completion",),
    )
    embed = ModelInfo(
        ModelRef.parse("ollama/nomic-embed-text:latest"),
        "nomic-embed-text",
        "ollama",
        "ollama",
        Locality.LOCAL,
        capabilities=("embedding",),
    )
    button.set_listing(ModelListing(models=[chat, embed]), Policy())
    rows = {r.ref: r for r in button.popup.visible_rows() if r.ref}
    assert rows["ollama/llama3.2:latest"].enabled
    assert not rows["ollama/nomic-embed-text:latest"].enabled
    assert "embedding" in (rows["ollama/nomic-embed-text:latest"].reason or "")
