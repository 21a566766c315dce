"""The composer's attachments: the paperclip, paste (an image, copied files), drop, chips
that remove, one line for what cannot be attached, and sending attachments alone."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QToolButton
from pytestqt.qtbot import QtBot

from halext_desktop.ui.composer import Composer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def make(qtbot: QtBot) -> Composer:
    c = Composer()
    qtbot.addWidget(c)
    c.resize(600, 120)
    c.show()
    return c


def chips(c: Composer) -> list[QToolButton]:
    return [b for b in c.chips.findChildren(QToolButton) if b.isVisibleTo(c)]


def test_paperclip_adds_files_and_a_chip_removes_one(qtbot: QtBot, tmp_path: Path) -> None:
    c = make(qtbot)
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.txt").write_text("hello")
    c.choose_files = lambda: [str(tmp_path / "a.png"), str(tmp_path / "b.txt")]
    with qtbot.waitSignal(c.sig_attachments_changed):
        qtbot.mouseClick(c.attach_button, Qt.MouseButton.LeftButton)
    assert [a.ref.name for a in c.attachments()] == ["a.png", "b.txt"]
    assert [b.text() for b in chips(c)] == ["a.png  ✕", "b.txt  ✕"]
    qtbot.mouseClick(chips(c)[0], Qt.MouseButton.LeftButton)
    assert [a.ref.name for a in c.attachments()] == ["b.txt"]
    # The same file twice is one attachment.
    assert c.add_files([str(tmp_path / "b.txt")]) == 0


def test_pasting_an_image_attaches_it_as_png(qtbot: QtBot) -> None:
    c = make(qtbot)
    image = QImage(6, 4, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    mime = QMimeData()
    mime.setImageData(image)
    QApplication.clipboard().setMimeData(mime)
    c.editor.setFocus()
    c.editor.paste()
    (att,) = c.attachments()
    assert att.ref.mime == "image/png" and att.ref.name == "pasted image.png"
    assert QImage.fromData(att.data).size() == image.size()
    assert c.text() == ""


def test_dropping_files_attaches_them_and_text_stays_text(qtbot: QtBot, tmp_path: Path) -> None:
    c = make(qtbot)
    (tmp_path / "x.py").write_text("print(1)\n")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "x.py"))])
    event = QDropEvent(
        QPointF(QPoint(10, 10)),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    c.dropEvent(event)
    assert [a.ref.name for a in c.attachments()] == ["x.py"]
    text = QMimeData()
    text.setText("just words")
    c.editor.insertFromMimeData(text)
    assert c.text() == "just words" and len(c.attachments()) == 1


def test_what_cannot_be_attached_is_one_line_and_attachments_alone_can_be_sent(
    qtbot: QtBot, tmp_path: Path
) -> None:
    c = make(qtbot)
    (tmp_path / "bin.dat").write_bytes(b"\xff\x00\xfe")
    assert c.add_files([str(tmp_path / "bin.dat")]) == 0
    assert c.problem.isVisibleTo(c) and "bin.dat" in c.problem.text()
    assert not c.send_button.isEnabled()
    assert c.add_data("shot.png", PNG)
    assert not c.problem.isVisibleTo(c) and c.send_button.isEnabled()
    with qtbot.waitSignal(c.sig_send) as sent:
        qtbot.mouseClick(c.send_button, Qt.MouseButton.LeftButton)
    assert sent.args == [""]
    assert [a.ref.name for a in c.last_attachments] == ["shot.png"] and c.attachments() == []
