"""Where bundled resources live (icons, the .desktop file), independent of the CWD."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
ICONS = ROOT / "icons"


def icon_path(name: str) -> Path:
    """Path of ``resources/icons/<name>.svg``."""
    return ICONS / f"{name}.svg"


DESKTOP_FILE = ROOT / "halext-desktop.desktop"
