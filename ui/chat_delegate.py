"""Paints one message of the chat list: header (``You`` or the model chip and timings), the
Markdown body, the ⚠ lines, and a footer strip where the hover actions sit.

Why a delegate and not one widget per message: a 10,000-message history must open at once
and scroll smoothly, so only the rows on screen are ever rendered. Heights come from two
caches:

* an exact height per (id, version, width) once a row has been laid out for real, kept for
  every row (a few ints each) so scrolling back never relayouts;
* a cheap estimate (characters per line) for rows never shown, which the view refines just
  before they scroll into sight.

Rendered documents live in a small LRU keyed by (id, version, width), so memory does not
grow with the length of the conversation.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QDesktopServices,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QHelpEvent,
    QMouseEvent,
    QPainter,
    QPalette,
    QPixmap,
    QTextDocument,
    QTextLine,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
)

from halext_desktop.storage import versions
from halext_desktop.ui import theme
from halext_desktop.ui.chat_model import (
    ChatModel,
    MessageItem,
    chip_text,
    sent_text,
    sent_tooltip,
    stats_text,
    stats_tooltip,
    warning_lines,
)
from halext_desktop.ui.markdown import COPY_SCHEME, render_markdown

ModelIndex = QModelIndex | QPersistentModelIndex

# How many rendered rows to keep. A screen shows a few dozen at most; the view refines a
# margin above and below, so this is generous without growing with the history.
DOC_CACHE_SIZE = 160
# The reading column stops growing here (characters of the body font).
MAX_COLUMN_CHARS = 104
STREAM_CURSOR = "…"
SENT_SEPARATOR = "  ·  "
THUMB_PX = 96  # image attachments are shown this big (logical pixels) in their message


def attachment_list(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The attachments a message's meta lists (well-formed entries only)."""
    found = meta.get("attachments")
    if not isinstance(found, list):
        return []
    return [a for a in found if isinstance(a, dict) and "sha256" in a and "name" in a]


class _Metrics:
    """Font-derived spacing, computed once per font."""

    def __init__(self, font: QFont) -> None:
        self.font = QFont(font)
        fm = QFontMetrics(self.font)
        self.line = fm.height()
        self.avg_char = max(4, fm.averageCharWidth())
        self.small = QFont(self.font)
        if self.font.pointSizeF() > 0:
            self.small.setPointSizeF(self.font.pointSizeF() * 0.88)
        else:
            self.small.setPixelSize(max(8, round(self.font.pixelSize() * 0.88)))
        self.small_fm = QFontMetrics(self.small)
        self.small_line = self.small_fm.height()
        self.small_bold = QFont(self.small)
        self.small_bold.setWeight(QFont.Weight.DemiBold)
        self.small_bold_fm = QFontMetrics(self.small_bold)
        self.side = max(16, self.line)  # margin left and right of the column
        self.pad_top = max(4, self.line // 3)  # above each message
        self.pad_h = max(10, round(self.line * 0.75))  # inside the user bubble, both sides
        self.pad_v = max(8, self.line // 2)
        self.chip_h = self.small_fm.height() + 6
        self.header_h = max(self.small_bold_fm.height(), self.chip_h)
        self.header_gap = max(4, self.line // 3)
        self.warn_gap = max(4, self.line // 3)
        self.footer = self.small_fm.height() + 14  # hover actions sit here
        self.radius = 10.0
        self.max_column = MAX_COLUMN_CHARS * self.avg_char + 2 * self.pad_h
        self.marker_h = 2 * self.small_line + 8  # a context note: up to two lines


class RowLayout:
    """Where everything of one row goes, in row coordinates (the row's top-left is 0,0)."""

    __slots__ = (
        "height",
        "doc",
        "codes",
        "body",
        "bubble",
        "header",
        "chip",
        "chip_text",
        "stats",
        "stats_text",
        "sent",
        "sent_text",
        "warnings",
        "warn_rect",
        "footer",
        "text_x",
        "text_w",
        "cursor",
        "thumbs",
        "switch_text",
        "prev_rect",
        "next_rect",
        "switch_rect",
        "marker",
    )

    def __init__(self) -> None:
        self.height = 0
        self.doc: QTextDocument | None = None
        self.codes: list[str] = []
        self.body = QRectF()
        self.bubble = QRectF()
        self.header = QRectF()
        self.chip = QRectF()
        self.chip_text = ""
        self.stats = QRectF()
        self.stats_text = ""
        self.sent = QRectF()  # when the message was written, left of the stats
        self.sent_text = ""
        self.warnings: list[tuple[str, QRectF]] = []
        self.warn_rect = QRectF()
        self.footer = QRectF()
        self.text_x = 0
        self.text_w = 0
        self.cursor: QPointF | None = None  # where the streaming "…" goes, body coordinates
        # Image attachments: (sha256, file name, where the thumbnail goes).
        self.thumbs: list[tuple[str, str, QRectF]] = []
        # A regenerated reply's "‹ 2/3 ›" at the right of the footer.
        self.switch_text = ""
        self.prev_rect = QRectF()
        self.next_rect = QRectF()
        self.switch_rect = QRectF()
        self.marker = QRectF()  # the "context starts here" line above the message


class ChatDelegate(QStyledItemDelegate):
    """Renders ChatModel rows; owns the height and document caches.

    Signals:
        sig_copied(str): a code block or message was copied; carries the copied text.
        sig_link_activated(str): a web link in a message was clicked (it is also opened).
        sig_version_requested(int, int): ‹ or › on a regenerated reply; carries the message
            id and the version index to show.
        sig_thumbnail_activated(str, str): an attachment's thumbnail was clicked; its
            sha256 and file name.
    """

    sig_copied = Signal(str)
    sig_link_activated = Signal(str)
    sig_version_requested = Signal(int, int)
    sig_thumbnail_activated = Signal(str, str)

    def __init__(self, model: ChatModel, view: QAbstractItemView) -> None:
        super().__init__(view)
        self._model = model
        self._view = view
        self._width = 400
        self._metrics = _Metrics(view.font())
        # (width, chars per line, fixed part, line height, code block extra) for estimates.
        self._estimate_basis: tuple[int, int, int, int, int] = (-1, 1, 0, 0, 0)
        self._dark = theme.is_dark(view.palette())
        # id -> (version, width, height, exact, QSize(width, height))
        self._heights: dict[int, tuple[int, int, int, bool, QSize]] = {}
        # Extra height kept for a streaming row so it can grow without a relayout per line.
        self._reserve: dict[int, int] = {}
        self._docs: OrderedDict[tuple[int, int, int], RowLayout] = OrderedDict()
        self._latest: dict[int, tuple[int, int, int]] = {}  # id -> its key in _docs
        # The local date the rows' "today 14:02" labels count from; on a new day the rows
        # are rendered again (checked at most once a second). Replaceable for tests.
        self.today: Callable[[], date] = date.today
        self._day = self.today()
        self._day_checked = time.monotonic()
        # Called when a painted row turns out to need another height than it was given.
        self.on_height_mismatch: Callable[[int], None] | None = None
        # The height a row has in the view's current layout (set by the view).
        self.laid_out_height: Callable[[int], int | None] | None = None
        # The message whose text the view's text view shows (selectable) over its row: its
        # body is drawn there, with the selection, not here.
        self.text_id: int | None = None
        # The thumbnail of an attachment by sha256, None while it loads (set by the view).
        self.thumbnail: Callable[[str], QPixmap | None] | None = None

    # ---- configuration -----------------------------------------------------------------------

    @property
    def width(self) -> int:
        return self._width

    def set_width(self, width: int) -> bool:
        """The width rows are laid out for; returns True when it changed."""
        width = max(120, int(width))
        if width == self._width:
            return False
        self._width = width
        return True

    def set_font(self, font: QFont) -> None:
        self._metrics = _Metrics(font)
        self._estimate_basis = (-1, 1, 0, 0, 0)
        self.clear_caches()

    def set_dark(self, dark: bool) -> None:
        """Colours changed (palette switch): documents are re-rendered, heights stay."""
        if dark != self._dark:
            self._dark = dark
            self._docs.clear()
            self._latest.clear()

    def forget_renderings(self) -> None:
        """The rows' texts around the body changed (a route's name): render them again,
        heights stay."""
        self._docs.clear()
        self._latest.clear()

    def clear_caches(self) -> None:
        self._heights.clear()
        self._reserve.clear()
        self._docs.clear()
        self._latest.clear()

    def forget(self, message_id: int) -> None:
        self._heights.pop(message_id, None)
        self._reserve.pop(message_id, None)
        key = self._latest.pop(message_id, None)
        if key is not None:
            self._docs.pop(key, None)

    @property
    def cached_documents(self) -> int:
        """How many rendered rows are held (bounded by DOC_CACHE_SIZE)."""
        return len(self._docs)

    # ---- heights -----------------------------------------------------------------------------

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        # Called for every row on every relayout (the list's relayout is O(rows)): the
        # common case is one dict lookup returning a prepared QSize.
        item = self._model.items[index.row()]
        entry = self._heights.get(item.id)
        if (
            entry is not None
            and entry[0] == item.version
            and entry[1] == self._width
            and item.id not in self._reserve
        ):
            return entry[4]
        return QSize(self._width, self.row_height(item))

    def row_height(self, item: MessageItem) -> int:
        """The height the list lays this row out with (exact if known, else an estimate,
        plus any streaming reserve)."""
        entry = self._heights.get(item.id)
        if entry is not None and entry[0] == item.version and entry[1] == self._width:
            height = entry[2]
        else:
            height = self._estimate(item)
            self._heights[item.id] = (
                item.version,
                self._width,
                height,
                False,
                QSize(self._width, height),
            )
        reserve = self._reserve.get(item.id)
        return reserve if reserve is not None and reserve > height else height

    def is_exact(self, item: MessageItem) -> bool:
        entry = self._heights.get(item.id)
        return (
            entry is not None and entry[3] and entry[0] == item.version and entry[1] == self._width
        )

    def ensure_exact(self, item: MessageItem) -> bool:
        """Lay the row out for real; True when its list height changes as a result."""
        if self.is_exact(item):
            return False
        before = self.row_height(item)
        self.layout_for(item)
        return self.row_height(item) != before

    def exact_height(self, item: MessageItem) -> int:
        """The row's content height (without the streaming reserve)."""
        return self.layout_for(item).height

    def reserve(self, message_id: int) -> int:
        return self._reserve.get(message_id, 0)

    def set_reserve(self, message_id: int, height: int | None) -> None:
        if height:
            self._reserve[message_id] = int(height)
        else:
            self._reserve.pop(message_id, None)

    def _estimate(self, item: MessageItem) -> int:
        # Runs for every row of a freshly loaded history: plain arithmetic, no Qt calls.
        if self._estimate_basis[0] != self._width:
            m = self._metrics
            per_line = max(8, self._text_width() // m.avg_char)
            fixed = m.pad_top + m.header_h + m.header_gap + m.footer
            self._estimate_basis = (self._width, per_line, fixed, m.line, m.small_line + 18)
        _, per_line, fixed, line, code_extra = self._estimate_basis
        content = item.content
        lines = content.count("\n") + 1 + len(content) // per_line if content else 1
        fences = content.count("```")
        body = lines * line + (fences + 1) // 2 * code_extra - fences * line
        height = fixed + max(line, body)
        if item.role != "assistant":
            height += 2 * self._metrics.pad_v
        if item.context_note:
            height += self._metrics.marker_h
        return height

    # ---- geometry ----------------------------------------------------------------------------

    def _column(self) -> tuple[int, int]:
        m = self._metrics
        col_w = max(80, min(self._width - 2 * m.side, m.max_column))
        col_x = max(m.side // 2, (self._width - col_w) // 2)
        return col_x, col_w

    def _text_width(self) -> int:
        return max(60, self._column()[1] - 2 * self._metrics.pad_h)

    def layout_for(self, item: MessageItem) -> RowLayout:
        """The row's layout at the current width, from the cache or rendered now."""
        clock = time.monotonic()
        if clock - self._day_checked >= 1.0:
            self._day_checked = clock
            day = self.today()
            if day != self._day:  # "today 23:59" is "yesterday 23:59" now
                self._day = day
                self._docs.clear()
                self._latest.clear()
        key = (item.id, item.version, self._width)
        cached = self._docs.get(key)
        if cached is not None:
            self._docs.move_to_end(key)
            return cached
        previous = self._latest.get(item.id)
        doc: QTextDocument | None = None
        codes: list[str] = []
        if previous is not None:
            old = self._docs.pop(previous, None)
            # Same text at another width: re-wrap the document instead of re-parsing it.
            if old is not None and previous[1] == item.version:
                doc, codes = old.doc, old.codes
        layout = self._build(item, doc, codes)
        self._docs[key] = layout
        self._latest[item.id] = key
        while len(self._docs) > DOC_CACHE_SIZE:
            old_key, _ = self._docs.popitem(last=False)
            if self._latest.get(old_key[0]) == old_key:
                del self._latest[old_key[0]]
        self._heights[item.id] = (
            item.version,
            self._width,
            layout.height,
            True,
            QSize(self._width, layout.height),
        )
        return layout

    def _make_doc(self, item: MessageItem) -> tuple[QTextDocument, list[str]]:
        html, codes = render_markdown(item.content, dark=self._dark)
        doc = QTextDocument()
        doc.setUndoRedoEnabled(False)
        doc.setDocumentMargin(0)
        doc.setDefaultFont(self._metrics.font)
        doc.setIndentWidth(max(14, self._metrics.line))
        doc.setHtml(html)
        return doc, codes

    def _build(self, item: MessageItem, doc: QTextDocument | None, codes: list[str]) -> RowLayout:
        m = self._metrics
        col_x, col_w = self._column()
        text_x = col_x + m.pad_h
        text_w = max(60, col_w - 2 * m.pad_h)
        rl = RowLayout()
        rl.text_x, rl.text_w = text_x, text_w
        boxed = item.role != "assistant"
        y = m.pad_top
        if item.context_note:
            rl.marker = QRectF(col_x, y, col_w, m.marker_h)
            y += m.marker_h
        bubble_top = y
        if boxed:
            y += m.pad_v

        # Header: "You" or the chip on the left; on the right, quietly, the timings and
        # when the message was written.
        rl.header = QRectF(text_x, y, text_w, m.header_h)
        rl.chip_text = chip_text(item, self._model.route_names)
        right = text_x + text_w  # the right-hand pieces are laid out leftwards from here
        if item.role == "assistant":
            rl.stats_text = stats_text(item.meta)
            stats_w = m.small_fm.horizontalAdvance(rl.stats_text) if rl.stats_text else 0
            if stats_w:
                rl.stats = QRectF(right - stats_w, y, stats_w, m.header_h)
                right -= stats_w
        sent = sent_text(item.created_at, self._day)
        if sent:
            rl.sent_text = f"{sent}{SENT_SEPARATOR}" if rl.stats_text else sent
            sent_w = m.small_fm.horizontalAdvance(rl.sent_text)
            rl.sent = QRectF(right - sent_w, y, sent_w, m.header_h)
            right -= sent_w
        if item.role == "assistant":
            chip_max = max(40, right - text_x - 16)
            chip_w = min(chip_max, m.small_fm.horizontalAdvance(rl.chip_text) + 16)
            rl.chip = QRectF(text_x, y + (m.header_h - m.chip_h) / 2, chip_w, m.chip_h)
        else:
            w = m.small_bold_fm.horizontalAdvance(rl.chip_text)
            rl.chip = QRectF(text_x, y, w, m.header_h)
        if not rl.sent.isNull() and rl.sent.left() < rl.chip.right() + 8:
            rl.sent, rl.sent_text = QRectF(), ""  # too narrow: the chip matters more
        y += m.header_h + m.header_gap

        # Body.
        if item.content or item.is_live:
            if item.content:
                if doc is None:
                    doc, codes = self._make_doc(item)
                doc.setTextWidth(text_w)
                body_h = max(m.line, int(doc.size().height() + 0.999))
            else:
                body_h = m.line
            rl.doc, rl.codes = doc, codes
            rl.body = QRectF(text_x, y, text_w, body_h)
            if item.is_live:
                rl.cursor = self._cursor_pos(doc) if item.content else QPointF(0, 0)
            y += body_h

        # Warning lines.
        lines = warning_lines(item)
        if lines:
            y += m.warn_gap
            top = y
            for text in lines:
                r = m.small_fm.boundingRect(
                    QRect(0, 0, text_w, 100_000), int(Qt.TextFlag.TextWordWrap), text
                )
                rl.warnings.append((text, QRectF(text_x, y, text_w, r.height())))
                y += r.height()
            rl.warn_rect = QRectF(text_x, top, text_w, y - top)

        images = [a for a in attachment_list(item.meta) if a.get("kind") == "image"]
        if images:
            y += m.warn_gap
            x = text_x
            for a in images:
                if x + THUMB_PX > text_x + text_w and x > text_x:
                    x = text_x
                    y += THUMB_PX + m.warn_gap
                rl.thumbs.append(
                    (str(a["sha256"]), str(a["name"]), QRectF(x, y, THUMB_PX, THUMB_PX))
                )
                x += THUMB_PX + m.warn_gap
            y += THUMB_PX

        if boxed:
            y += m.pad_v
            rl.bubble = QRectF(col_x, bubble_top, col_w, y - bubble_top)
        rl.footer = QRectF(text_x, y, text_w, m.footer)
        shown = versions.info(item.meta) if item.role == "assistant" else None
        if shown is not None:
            rl.switch_text = f"{shown[0] + 1}/{shown[1]}"
            arrow = m.small_fm.horizontalAdvance("‹") + 12
            mid_w = m.small_fm.horizontalAdvance(rl.switch_text) + 6
            right = text_x + text_w
            h = m.small_fm.height() + 6
            sw_y = y + (m.footer - h) / 2
            rl.next_rect = QRectF(right - arrow, sw_y, arrow, h)
            rl.switch_rect = QRectF(right - arrow - mid_w, sw_y, mid_w, h)
            rl.prev_rect = QRectF(right - 2 * arrow - mid_w, sw_y, arrow, h)
        rl.height = int(y + m.footer)
        return rl

    def _cursor_pos(self, doc: QTextDocument | None) -> QPointF:
        if doc is None:
            return QPointF(0, 0)
        block = doc.lastBlock()
        while block.isValid() and not block.text() and block.previous().isValid():
            block = block.previous()
        layout = block.layout()
        if layout is None or layout.lineCount() == 0:
            return QPointF(0, 0)
        line = layout.lineAt(layout.lineCount() - 1)
        origin = doc.documentLayout().blockBoundingRect(block).topLeft()
        return QPointF(origin.x() + line.x() + line.naturalTextWidth() + 2, origin.y() + line.y())

    # ---- painting ----------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        item = self._model.items[index.row()]
        rl = self.layout_for(item)
        if self.laid_out_height is not None and self.on_height_mismatch is not None:
            given = self.laid_out_height(index.row())
            if given is not None and given != self.row_height(item):
                # Laid out with an estimate the view has not refined yet: ask for a relayout.
                self.on_height_mismatch(item.id)
        m = self._metrics
        pal = option.palette
        painter.save()
        painter.setClipRect(option.rect)
        painter.translate(option.rect.topLeft())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)

        if not rl.marker.isNull() and item.context_note:
            self._paint_marker(painter, pal, item.context_note, rl.marker)

        if not rl.bubble.isNull():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.user_bubble(pal))
            painter.drawRoundedRect(rl.bubble, m.radius, m.radius)

        # A focus ring only for keyboard users (Tab, arrows), not after every click.
        focused = (
            bool(option.state & QStyle.StateFlag.State_HasFocus)
            and bool(option.state & QStyle.StateFlag.State_KeyboardFocusChange)
            and self._view.hasFocus()
        )
        if focused:
            ring = QColor(pal.color(QPalette.ColorRole.Highlight))
            ring.setAlpha(150)
            painter.setPen(ring)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            area = (
                rl.bubble
                if not rl.bubble.isNull()
                else QRectF(
                    rl.text_x - m.pad_h,
                    m.pad_top,
                    rl.text_w + 2 * m.pad_h,
                    rl.footer.top() - m.pad_top,
                )
            )
            painter.drawRoundedRect(area.adjusted(0.5, 0.5, -0.5, -0.5), m.radius, m.radius)

        self._paint_header(painter, pal, item, rl)

        if rl.doc is not None and not rl.body.isNull() and item.id != self.text_id:
            painter.save()
            painter.translate(rl.body.topLeft())
            ctx = QAbstractTextDocumentLayout.PaintContext()
            ctx.palette = pal
            # Only the part of the body on screen: a long reply, mostly scrolled away, is
            # not laid out into lines and drawn whole on every flush of a stream.
            clip = QRectF(0, 0, rl.body.width() + 2, rl.body.height() + 2)
            shown = QRectF(self._view.viewport().rect()).translated(
                -option.rect.left() - rl.body.left(), -option.rect.top() - rl.body.top()
            )
            ctx.clip = clip.intersected(shown.adjusted(0, -2, 0, 2))
            rl.doc.documentLayout().draw(painter, ctx)
            painter.restore()
        if rl.cursor is not None:
            painter.setFont(m.font)
            painter.setPen(theme.muted_text(pal))
            pos = rl.body.topLeft() + rl.cursor
            painter.drawText(
                QRectF(pos.x(), pos.y(), m.line * 2, m.line),
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
                STREAM_CURSOR,
            )

        if rl.warnings:
            painter.setFont(m.small)
            painter.setPen(theme.warning_color(pal))
            for text, rect in rl.warnings:
                painter.drawText(rect, int(Qt.TextFlag.TextWordWrap), text)
        if rl.thumbs:
            self._paint_thumbs(painter, pal, rl)
        if rl.switch_text:
            self._paint_switch(painter, pal, item, rl)
        painter.restore()

    def _paint_thumbs(self, painter: QPainter, pal: QPalette, rl: RowLayout) -> None:
        m = self._metrics
        for sha, name, rect in rl.thumbs:
            pix = self.thumbnail(sha) if self.thumbnail is not None else None
            painter.setPen(theme.muted_text(pal))
            painter.setBrush(pal.color(QPalette.ColorRole.Base))
            painter.drawRoundedRect(rect, 6, 6)
            if pix is not None and not pix.isNull():
                size = pix.deviceIndependentSize()
                x = rect.x() + (rect.width() - size.width()) / 2
                y = rect.y() + (rect.height() - size.height()) / 2
                painter.drawPixmap(QPointF(x, y), pix)
            else:
                painter.setFont(m.small)
                text = m.small_fm.elidedText(name, Qt.TextElideMode.ElideMiddle, THUMB_PX - 8)
                painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)

    def _paint_switch(
        self, painter: QPainter, pal: QPalette, item: MessageItem, rl: RowLayout
    ) -> None:
        shown = versions.info(item.meta)
        if shown is None:
            return
        index, count = shown
        painter.setFont(self._metrics.small)
        muted = theme.muted_text(pal)
        text_c = pal.color(QPalette.ColorRole.Text)
        painter.setPen(text_c if index > 0 else muted)
        painter.drawText(rl.prev_rect, int(Qt.AlignmentFlag.AlignCenter), "‹")
        painter.setPen(muted)
        painter.drawText(rl.switch_rect, int(Qt.AlignmentFlag.AlignCenter), rl.switch_text)
        painter.setPen(text_c if index < count - 1 else muted)
        painter.drawText(rl.next_rect, int(Qt.AlignmentFlag.AlignCenter), "›")

    def version_step_at(self, item: MessageItem, row_rect: QRect, pos: QPoint) -> int | None:
        """-1 or +1 when ``pos`` (viewport coordinates) is on the row's ‹ or ›."""
        rl = self.layout_for(item)
        if not rl.switch_text:
            return None
        local = QPointF(pos - row_rect.topLeft())
        if rl.prev_rect.contains(local):
            return -1
        if rl.next_rect.contains(local):
            return 1
        return None

    def thumb_at(self, item: MessageItem, row_rect: QRect, pos: QPoint) -> tuple[str, str] | None:
        """(sha256, name) of the thumbnail under ``pos`` (viewport coordinates)."""
        local = QPointF(pos - row_rect.topLeft())
        for sha, name, rect in self.layout_for(item).thumbs:
            if rect.contains(local):
                return sha, name
        return None

    def _paint_marker(self, painter: QPainter, pal: QPalette, note: str, rect: QRectF) -> None:
        """A thin rule with a muted note in the middle: where the model's context starts."""
        m = self._metrics
        painter.save()
        painter.setFont(m.small)
        muted = theme.muted_text(pal)
        flags = int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap)
        text_rect = rect.adjusted(m.side * 2, 2, -m.side * 2, -6)
        bound = painter.boundingRect(text_rect, flags, note)
        mid = rect.top() + (rect.height() - 4) / 2
        line = QColor(muted)
        line.setAlpha(90)
        painter.setPen(line)
        if bound.left() - 8 > rect.left():
            painter.drawLine(QPointF(rect.left(), mid), QPointF(bound.left() - 8, mid))
            painter.drawLine(QPointF(bound.right() + 8, mid), QPointF(rect.right(), mid))
        painter.setPen(muted)
        painter.drawText(text_rect, flags, note)
        painter.restore()

    def _paint_header(
        self, painter: QPainter, pal: QPalette, item: MessageItem, rl: RowLayout
    ) -> None:
        m = self._metrics
        if rl.sent_text:
            painter.setFont(m.small)
            painter.setPen(theme.muted_text(pal))
            painter.drawText(
                rl.sent,
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                rl.sent_text,
            )
        if item.role != "assistant":
            painter.setFont(m.small_bold)
            painter.setPen(theme.muted_text(pal))
            painter.drawText(
                rl.header,
                int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                rl.chip_text,
            )
            return
        bg, fg = theme.chip_colors(pal)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(bg)
        radius = rl.chip.height() / 2
        painter.drawRoundedRect(rl.chip, radius, radius)
        painter.setFont(m.small)
        painter.setPen(fg)
        text = m.small_fm.elidedText(
            rl.chip_text, Qt.TextElideMode.ElideMiddle, int(rl.chip.width() - 14)
        )
        painter.drawText(rl.chip, int(Qt.AlignmentFlag.AlignCenter), text)
        if rl.stats_text:
            painter.setPen(theme.muted_text(pal))
            painter.drawText(
                rl.stats,
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                rl.stats_text,
            )

    # ---- anchors (code "Copy" links, web links) ----------------------------------------------

    def anchor_at(self, item: MessageItem, row_rect: QRect, pos: QPoint) -> str | None:
        """The link under ``pos`` (viewport coordinates) in the row drawn at ``row_rect``."""
        rl = self.layout_for(item)
        if rl.doc is None:
            return None
        local = QPointF(pos - row_rect.topLeft()) - rl.body.topLeft()
        if not (0 <= local.y() <= rl.body.height() and -2 <= local.x() <= rl.body.width() + 2):
            return None
        href = rl.doc.documentLayout().anchorAt(local)
        return href or None

    def anchor_rect(self, item: MessageItem, row_rect: QRect, href: str) -> QRect | None:
        """Where the link ``href`` is drawn, in viewport coordinates (first occurrence)."""
        rl = self.layout_for(item)
        doc = rl.doc
        if doc is None:
            return None
        layout = doc.documentLayout()
        block = doc.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                if frag.isValid() and frag.charFormat().anchorHref() == href:
                    tl = block.layout()
                    start = frag.position() - block.position()
                    end = start + frag.length()
                    line = tl.lineForTextPosition(start)
                    if not line.isValid():
                        return None
                    origin = layout.blockBoundingRect(block).topLeft()
                    x1 = _cursor_x(line, start)
                    end_line = tl.lineForTextPosition(end)
                    x2 = (
                        _cursor_x(line, end)
                        if end_line.isValid() and end_line.lineNumber() == line.lineNumber()
                        else line.x() + line.naturalTextWidth()
                    )
                    rect = QRectF(
                        origin.x() + x1, origin.y() + line.y(), max(1.0, x2 - x1), line.height()
                    )
                    rect.translate(rl.body.topLeft() + QPointF(row_rect.topLeft()))
                    return rect.toAlignedRect()
                it += 1
            block = block.next()
        return None

    def code_block(self, item: MessageItem, n: int) -> str | None:
        codes = self.layout_for(item).codes
        return codes[n] if 0 <= n < len(codes) else None

    def activate_anchor(self, item: MessageItem, href: str) -> None:
        """A click on a link: copy a code block, or open a web link."""
        if href.startswith(COPY_SCHEME):
            try:
                n = int(href[len(COPY_SCHEME) :])
            except ValueError:
                return
            code = self.code_block(item, n)
            if code is not None:
                QGuiApplication.clipboard().setText(code)
                self.sig_copied.emit(code)
            return
        if href.lower().startswith(("http://", "https://", "mailto:")):
            self.sig_link_activated.emit(href)
            QDesktopServices.openUrl(QUrl(href))

    def editorEvent(
        self,
        event: QEvent,
        model: object,
        option: QStyleOptionViewItem,
        index: ModelIndex,
    ) -> bool:
        etype = event.type()
        if (
            etype in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease)
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.LeftButton
            and index.isValid()
        ):
            item = self._model.items[index.row()]
            step = self.version_step_at(item, option.rect, event.position().toPoint())
            if step is not None:
                shown = versions.info(item.meta)
                if etype == QEvent.Type.MouseButtonRelease and shown is not None:
                    target = shown[0] + step
                    if 0 <= target < shown[1]:
                        self.sig_version_requested.emit(item.id, target)
                return True
            thumb = self.thumb_at(item, option.rect, event.position().toPoint())
            if thumb is not None:
                if etype == QEvent.Type.MouseButtonRelease:
                    self.sig_thumbnail_activated.emit(*thumb)
                return True
            href = self.anchor_at(item, option.rect, event.position().toPoint())
            if href:
                if etype == QEvent.Type.MouseButtonRelease:
                    self.activate_anchor(item, href)
                return True  # a link click does not select the row
        return super().editorEvent(event, model, option, index)  # type: ignore[arg-type]

    def helpEvent(
        self,
        event: QHelpEvent,
        view: QAbstractItemView,
        option: QStyleOptionViewItem,
        index: ModelIndex,
    ) -> bool:
        if event is None or not index.isValid():
            return False
        item = self._model.items[index.row()]
        rl = self.layout_for(item)
        local = QPointF(event.pos() - option.rect.topLeft())
        tip = ""
        if rl.sent.contains(local):
            tip = sent_tooltip(item)
        elif item.role == "assistant" and rl.stats.contains(local):
            tip = stats_tooltip(item.meta)
        elif item.role == "assistant" and rl.chip.contains(local):
            tip = _chip_tooltip(item)
        elif rl.switch_text and (
            rl.prev_rect.contains(local)
            or rl.next_rect.contains(local)
            or rl.switch_rect.contains(local)
        ):
            tip = "Earlier and later answers; the one shown is sent as history"
        elif self.thumb_at(item, option.rect, event.pos()) is not None:
            found = self.thumb_at(item, option.rect, event.pos())
            tip = f"{found[1]} — click to see it full size" if found else ""
        elif rl.doc is not None:
            href = self.anchor_at(item, option.rect, event.pos())
            if href and href.startswith(COPY_SCHEME):
                tip = "Copy this code block"
            elif href:
                tip = href
        if tip:
            QToolTip.showText(event.globalPos(), tip, view)
            return True
        QToolTip.hideText()
        return False


def _cursor_x(line: QTextLine, position: int) -> float:
    # PySide returns (x, position) for the C++ in/out int* argument.
    result: Any = line.cursorToX(position, QTextLine.Edge.Leading)
    return float(result[0] if isinstance(result, tuple) else result)


def _chip_tooltip(item: MessageItem) -> str:
    lines = []
    if item.model_ref:
        lines.append(f"Answered by {item.model_ref}")
    answered = item.meta.get("answered_model")
    if answered:
        lines.append(f"Server reported model: {answered}")
    if item.requested_model and item.requested_model != item.model_ref:
        lines.append(f"Asked for {item.requested_model}")
    locality = item.meta.get("locality")
    if locality:
        lines.append(f"Route: {locality}")
    return "\n".join(lines)
