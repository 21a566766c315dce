"""Palette helpers: every colour the chat widgets paint is derived from the current palette,
so the app follows the system's light or dark theme without a hard-coded white anywhere.

``apply_theme`` is the one place that forces light or dark (Settings → Appearance); the
other helpers only read a palette.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

# Semantic accents. Two shades each so text stays readable on light and dark bases.
_WARNING_LIGHT, _WARNING_DARK = QColor("#9a5b00"), QColor("#f0b04a")
_ERROR_LIGHT, _ERROR_DARK = QColor("#b3261e"), QColor("#ff8a80")
_SUCCESS_LIGHT, _SUCCESS_DARK = QColor("#1e7d32"), QColor("#81c995")

THEMES: tuple[str, ...] = ("system", "light", "dark")

# Application property remembering the platform style while a theme is forced.
_FORCED_STYLE = "halext_platform_style"


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` blended towards ``b`` by ``t`` (0 → a, 1 → b), opaque."""
    t = min(1.0, max(0.0, t))
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


def is_dark(palette: QPalette) -> bool:
    """True when the palette's base (where text is read) is darker than its text."""
    return (
        palette.color(QPalette.ColorRole.Base).lightness()
        < palette.color(QPalette.ColorRole.Text).lightness()
    )


def muted_text(palette: QPalette) -> QColor:
    """Secondary text (timings, "You", language labels): text pulled towards the base."""
    return mix(palette.color(QPalette.ColorRole.Text), palette.color(QPalette.ColorRole.Base), 0.42)


def user_bubble(palette: QPalette) -> QColor:
    """The tint behind the user's messages: alternateBase, made visible if the style's
    alternateBase is (almost) the base colour, with a hint of the highlight."""
    base = palette.color(QPalette.ColorRole.Base)
    alt = palette.color(QPalette.ColorRole.AlternateBase)
    if abs(alt.lightness() - base.lightness()) < 6:
        alt = mix(base, palette.color(QPalette.ColorRole.Text), 0.05)
    return mix(alt, palette.color(QPalette.ColorRole.Highlight), 0.07)


def chip_colors(palette: QPalette) -> tuple[QColor, QColor]:
    """(background, text) of the model chip: a quiet highlight tint."""
    base = palette.color(QPalette.ColorRole.Base)
    hl = palette.color(QPalette.ColorRole.Highlight)
    text = palette.color(QPalette.ColorRole.Text)
    bg = mix(base, hl, 0.22 if is_dark(palette) else 0.12)
    fg = mix(hl, text, 0.15 if is_dark(palette) else 0.35)
    if is_dark(palette):
        fg = mix(fg, text, 0.45)
    return bg, fg


def warning_color(palette: QPalette) -> QColor:
    return QColor(_WARNING_DARK if is_dark(palette) else _WARNING_LIGHT)


def error_color(palette: QPalette) -> QColor:
    return QColor(_ERROR_DARK if is_dark(palette) else _ERROR_LIGHT)


def success_color(palette: QPalette) -> QColor:
    return QColor(_SUCCESS_DARK if is_dark(palette) else _SUCCESS_LIGHT)


def link_color(palette: QPalette) -> QColor:
    """The palette's link colour, lifted on dark bases where Fusion's default is too dim."""
    link = palette.color(QPalette.ColorRole.Link)
    if is_dark(palette) and link.lightness() < 140:
        link = mix(link, QColor("white"), 0.45)
    return link


def banner_colors(palette: QPalette, kind: str) -> tuple[QColor, QColor, QColor]:
    """(background, border, text) for an inline banner of ``kind`` error/warning/info."""
    if kind == "error":
        accent = error_color(palette)
    elif kind == "warning":
        accent = warning_color(palette)
    else:
        accent = palette.color(QPalette.ColorRole.Highlight)
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    strength = 0.20 if is_dark(palette) else 0.10
    return mix(base, accent, strength), mix(base, accent, 0.55), text


def css(color: QColor) -> str:
    """``#rrggbb`` for style sheets and rich text."""
    return color.name(QColor.NameFormat.HexRgb)


def dark_palette() -> QPalette:
    """A neutral dark palette for the Fusion style (used when the user forces dark)."""
    p = QPalette()
    window, base, text = QColor("#202124"), QColor("#17181a"), QColor("#e8eaed")
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor("#24262a"),
        QPalette.ColorRole.ToolTipBase: QColor("#2d2f33"),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor("#9aa0a6"),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor("#2a2c30"),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor("#ffffff"),
        QPalette.ColorRole.Highlight: QColor("#3b82f6"),
        QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
        QPalette.ColorRole.Link: QColor("#8ab4f8"),
        QPalette.ColorRole.LinkVisited: QColor("#c58af9"),
        QPalette.ColorRole.Light: QColor("#3a3c40"),
        QPalette.ColorRole.Midlight: QColor("#323438"),
        QPalette.ColorRole.Mid: QColor("#2a2c30"),
        QPalette.ColorRole.Dark: QColor("#111214"),
        QPalette.ColorRole.Shadow: QColor("#000000"),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    disabled = QColor("#6f7378")
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def light_palette() -> QPalette:
    """A neutral light palette for the Fusion style (used when the user forces light)."""
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: QColor("#f3f4f6"),
        QPalette.ColorRole.WindowText: QColor("#1f2328"),
        QPalette.ColorRole.Base: QColor("#ffffff"),
        QPalette.ColorRole.AlternateBase: QColor("#f1f3f6"),
        QPalette.ColorRole.ToolTipBase: QColor("#ffffff"),
        QPalette.ColorRole.ToolTipText: QColor("#1f2328"),
        QPalette.ColorRole.PlaceholderText: QColor("#6e7781"),
        QPalette.ColorRole.Text: QColor("#1f2328"),
        QPalette.ColorRole.Button: QColor("#f6f7f9"),
        QPalette.ColorRole.ButtonText: QColor("#1f2328"),
        QPalette.ColorRole.BrightText: QColor("#ffffff"),
        QPalette.ColorRole.Highlight: QColor("#2563eb"),
        QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
        QPalette.ColorRole.Link: QColor("#1d4ed8"),
        QPalette.ColorRole.LinkVisited: QColor("#7c3aed"),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    return p


def apply_theme(
    app: QApplication, theme: str | None = "system", font_size: int | None = None
) -> None:
    """Apply Settings → Appearance: ``system`` follows the platform, ``light``/``dark`` force a
    Fusion palette. ``font_size`` (points) sets the UI font size; None/0 keeps the default."""
    choice = (theme or "system").strip().lower()
    hints = app.styleHints()
    if choice in ("light", "dark"):
        # Here, not at the top: the first use of PySide's ``Qt`` namespace builds ~100 enum
        # classes (~30 ms), and the start outline paints before anything needs it.
        from PySide6.QtCore import Qt

        scheme = Qt.ColorScheme.Dark if choice == "dark" else Qt.ColorScheme.Light
        hints.setColorScheme(scheme)
        # Not every platform theme honours the colour scheme (X11, offscreen), so the palette
        # is set too; Fusion is the one style that paints any palette faithfully.
        if app.property(_FORCED_STYLE) is None:
            app.setProperty(_FORCED_STYLE, app.style().name())
        app.setStyle("Fusion")
        app.setPalette(dark_palette() if choice == "dark" else light_palette())
    else:
        hints.unsetColorScheme()
        previous = app.property(_FORCED_STYLE)
        if previous is not None:
            # Coming back from a forced theme: the platform's own style and palette again.
            app.setStyle(str(previous))
            app.setProperty(_FORCED_STYLE, None)
            app.setPalette(QPalette())
    # Remember the platform's own font once, so "System" (0) can go back to it later.
    default_font = app.property("halextDefaultFont")
    if not isinstance(default_font, QFont):
        default_font = QFont(app.font())
        app.setProperty("halextDefaultFont", default_font)
    font = QFont(default_font)
    if font_size and font_size > 0:
        font.setPointSize(int(font_size))
    if font != app.font():
        app.setFont(font)
