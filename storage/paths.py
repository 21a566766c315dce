"""Where Halext Desktop keeps its files.

The platform's user config and data directories (platformdirs), unless the environment
variable ``HALEXT_DESKTOP_HOME`` is set: then everything lives under that one folder,
which is what tests, portable installs and "try it without touching my profile" want.
Directories are created on demand, the first time a caller asks for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "halext-desktop"
HOME_ENV = "HALEXT_DESKTOP_HOME"


def _home() -> Path | None:
    home = os.environ.get(HOME_ENV, "").strip()
    return Path(home).expanduser() if home else None


def _ensure(path: Path) -> Path:
    """Create ``path`` if missing and keep it private: conversations, usage and the log are
    the user's alone, whatever the umask (0700; a folder we cannot chmod is left as is)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError:
        pass
    return path


def config_dir() -> Path:
    """The settings folder (created if missing)."""
    home = _home()
    base = (
        home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    )
    return _ensure(base)


def data_dir() -> Path:
    """The folder of the database and its backups (created if missing)."""
    home = _home()
    base = home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return _ensure(base)


def settings_path() -> Path:
    """The settings file: ``<config_dir>/settings.json``."""
    return config_dir() / "settings.json"


def db_path() -> Path:
    """The SQLite database: ``<data_dir>/halext.db``."""
    return data_dir() / "halext.db"


def backups_dir() -> Path:
    """Copies of the database made before a schema upgrade: ``<data_dir>/backups``."""
    return _ensure(data_dir() / "backups")


def log_dir() -> Path:
    """The diagnostics log's folder: ``<data_dir>/logs``."""
    return _ensure(data_dir() / "logs")
