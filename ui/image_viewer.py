"""An attached image at full size (a thumbnail in the chat was clicked)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QScrollArea, QVBoxLayout, QWidget


class ImageViewer(QDialog):
    """Shows one image, scaled down to fit the screen when it is larger (Esc closes)."""

    def __init__(self, name: str, data: bytes, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(name)
        self.setObjectName("imageViewer")
        image = QImage.fromData(data)
        self.image_size = image.size()
        self.label = QLabel(self)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setAccessibleName(name)
        if image.isNull():
            self.label.setText(f"{name} cannot be shown (not an image Qt can read)")
        else:
            screen = QGuiApplication.primaryScreen()
            room = screen.availableGeometry().size() * 0.8 if screen is not None else image.size()
            pix = QPixmap.fromImage(image)
            if pix.width() > room.width() or pix.height() > room.height():
                pix = pix.scaled(
                    room,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            self.label.setPixmap(pix)
        scroll = QScrollArea(self)
        scroll.setWidget(self.label)
        scroll.setWidgetResizable(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        hint = self.label.sizeHint()
        self.resize(max(240, hint.width() + 24), max(160, hint.height() + 24))
