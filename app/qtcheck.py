"""Before the window opens on Linux: are the system libraries Qt's window needs installed?

Why: a missing xcb library makes Qt abort with "Could not load the Qt platform plugin
'xcb'", which tells a newcomer nothing. This names the exact install command instead.
Run by ``make run`` (``python -m app.qtcheck``); exits 1 when something is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# soname -> Debian/Ubuntu package (the xcb platform plugin's dependencies in Qt 6).
LINUX_LIBS: dict[str, str] = {
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def installed_sonames() -> set[str]:
    """Sonames the dynamic loader knows (``ldconfig -p``)."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        out = subprocess.run(
            [ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.split()[0] for line in out.splitlines()[1:] if line.strip()}


def missing_packages(have: set[str] | None = None) -> list[str]:
    have = installed_sonames() if have is None else have
    if not have:  # cannot tell: do not cry wolf
        return []
    return sorted({pkg for so, pkg in LINUX_LIBS.items() if so not in have})


def main() -> int:
    if not sys.platform.startswith("linux"):
        return 0
    missing = missing_packages()
    if missing:
        print(
            "Halext Desktop's window needs system libraries that are not installed:\n"
            f"    sudo apt-get install -y {' '.join(missing)}\n"
            "(Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms "
            "xcb-util-renderutil xcb-util-image libxkbcommon-x11 mesa-libEGL)",
            file=sys.stderr,
        )
        return 1
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not platform and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print(
            "No display found (DISPLAY and WAYLAND_DISPLAY are unset). Run from a desktop "
            "session, or under a virtual one: xvfb-run -a make run",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
