"""Attachment thumbnails are decoded on a worker thread, never on the GUI thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from halext_desktop.ui import thumbnail_decoder
from halext_desktop.ui.chat_view import ChatView


def image_bytes(width: int, height: int, fmt: str) -> bytes:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("#3366cc"))
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    assert image.save(buf, fmt)  # type: ignore[call-overload]  # str works, stubs say bytes
    return bytes(buf.data().data())


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[ChatView]:
    v = ChatView()
    qtbot.addWidget(v)
    yield v


@pytest.mark.parametrize("fmt", ["JPG", "PNG"])
def test_a_large_image_is_read_at_thumbnail_size(fmt: str) -> None:
    image = thumbnail_decoder.decode_scaled(image_bytes(1600, 900, fmt), 100)
    assert (image.width(), image.height()) == (100, 56)
    small = thumbnail_decoder.decode_scaled(image_bytes(40, 30, fmt), 100)
    assert (small.width(), small.height()) == (40, 30)  # never scaled up
    assert thumbnail_decoder.decode_scaled(b"not an image", 100).isNull()


def test_the_view_gets_its_thumbnail_decoded_on_another_thread(
    view: ChatView, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded_on: list[str] = []
    real = thumbnail_decoder.decode_scaled

    def recording(data: bytes, side: int) -> QImage:
        decoded_on.append(threading.current_thread().name)
        return real(data, side)

    monkeypatch.setattr(thumbnail_decoder, "decode_scaled", recording)
    view.set_thumbnail("a" * 64, image_bytes(1200, 800, "PNG"))
    assert not view.has_thumbnail("a" * 64)  # not decoded here, on the GUI thread
    qtbot.waitUntil(lambda: view.has_thumbnail("a" * 64), timeout=5000)
    assert decoded_on and decoded_on[0] != threading.current_thread().name
    # Bytes that are no image leave the attachment's name in place of a thumbnail.
    # (The view's slot was connected first: it has run when the wait ends.)
    with qtbot.waitSignal(thumbnail_decoder.delivery().sig_decoded, timeout=5000):
        view.set_thumbnail("b" * 64, b"%PDF-1.7 not an image")
    assert not view.has_thumbnail("b" * 64)


def test_a_view_closed_while_its_image_decodes_is_left_alone(qtbot: QtBot) -> None:
    other = ChatView()
    qtbot.addWidget(other)
    doomed = ChatView()
    doomed.set_thumbnail("c" * 64, image_bytes(2000, 1500, "PNG"))
    with qtbot.waitSignal(doomed.destroyed, timeout=5000):
        doomed.deleteLater()
    with qtbot.waitSignal(thumbnail_decoder.delivery().sig_decoded, timeout=5000):
        other.set_thumbnail("d" * 64, image_bytes(300, 200, "PNG"))
    qtbot.waitUntil(lambda: other.has_thumbnail("d" * 64), timeout=5000)
    assert not other.has_thumbnail("c" * 64)  # another view's image is not this one's
