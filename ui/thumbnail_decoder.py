"""Attachment thumbnails, decoded off the GUI thread.

Decoding a photo takes 20–140 ms here (a 12-megapixel PNG ~140 ms, a JPEG ~20 ms once it is
read at thumbnail size): on the GUI thread that was a stall each time an image message
scrolled into view. Qt's image readers release the GIL while they decode, so one worker
thread decodes while the GUI keeps painting, and the image comes back as a queued signal.

This is not a second bridge to the router: it carries only bytes already fetched (through
``ui/bridge.py``) and the ``QImage`` made from them. The signal lives on one object that is
never deleted, so a view closed while its images decode simply stops receiving (Qt drops a
connection whose receiver is gone); nothing is emitted on a half-destroyed object.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QSize, Qt, Signal
from PySide6.QtGui import QImage, QImageReader


class Delivery(QObject):
    """Carries decoded images back to the GUI thread.

    Signals:
        sig_decoded(object, str, QImage): (who asked, its key, the image; null when the bytes
            are not an image Qt can read).
    """

    sig_decoded = Signal(object, str, QImage)


_lock = threading.Lock()
_delivery: Delivery | None = None
_executor: ThreadPoolExecutor | None = None


def delivery() -> Delivery:
    """The one object decoded images arrive on (created on first use, on the GUI thread)."""
    global _delivery, _executor  # noqa: PLW0603 (one per process, created on first use)
    with _lock:
        if _delivery is None:
            _delivery = Delivery()
            # One thread: thumbnails arrive in the order asked, and decoding never takes
            # both cores from the GUI.
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnails")
        return _delivery


def decode_scaled(data: bytes, side: int) -> QImage:
    """``data`` as an image that fits ``side`` × ``side`` pixels, turned upright (a phone's
    EXIF orientation); a null image when it is not one. JPEG decodes at that size directly,
    other formats are read whole and scaled smoothly."""
    buf = QBuffer()
    buf.setData(QByteArray(data))
    buf.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buf)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > side or size.height() > side):
        reader.setScaledSize(size.scaled(QSize(side, side), Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


def request(token: object, key: str, data: bytes, side: int) -> None:
    """Decode ``data`` on the worker; ``sig_decoded(token, key, image)`` follows on
    ``delivery()``. Call on the GUI thread."""
    target = delivery()
    assert _executor is not None

    def work() -> None:
        try:
            image = decode_scaled(data, side)
        except Exception:  # a reader that fails outright: shown as not an image
            image = QImage()
        target.sig_decoded.emit(token, key, image)

    _executor.submit(work)
