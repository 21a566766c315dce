"""Secrets (halext token and password, API keys) in the OS keyring, and nowhere else.

``SecretStore`` wraps ``keyring`` under the service name ``halext-desktop``. When the
machine has no usable keyring (a headless Linux box, a locked-down container) it keeps
secrets in this process only, says so in ``note``, and never falls back to a file:
asking for a password again beats leaving it on disk in plain text.

The keyring is imported and asked which backend it has only when a secret is first read
or written (~0.15 s: a command that needs no secret never pays it). With an
``absent_cache`` file, names the keyring did not have are remembered for a day (names
only, never a value), so every start does not ask again for, say, the key of an Ollama
host that has none; storing a secret through the app forgets its name there at once.

The same file remembers that keyring found *no usable backend at all* (a headless box, a
container, a desktop without a Secret Service), as long as nothing it depends on changed:
the variables keyring reads (``PYTHON_KEYRING_BACKEND``, the D-Bus session address...), its
configuration file, and the folders its backends are installed in (installing a backend
package changes them). Without that, every start on such a machine pays the probe again.
Storing a secret asks the keyring anew (a keyring that came up since is used at once).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keyring.backend

log = logging.getLogger(__name__)

SERVICE = "halext-desktop"
NO_KEYRING_NOTE = (
    "No system keyring is available: passwords and tokens are kept for this session only "
    "and will be asked for again next time."
)
# How long a name the keyring did not have is taken as still missing without asking.
ABSENT_TTL_S = 24 * 3600
# How long "no usable keyring" holds for an unchanged environment: a day without a D-Bus
# session (nothing can start a keyring there without changing the environment), an hour
# with one (a Secret Service may be started within the session).
NO_KEYRING_TTL_S = 24 * 3600
NO_KEYRING_DBUS_TTL_S = 3600
# What keyring's choice of backend depends on, besides the installed packages.
_KEYRING_ENV = (
    "PYTHON_KEYRING_BACKEND",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CURRENT_DESKTOP",
    "KDE_FULL_SESSION",
    "HOME",
)


def _keyring_fingerprint() -> str:
    """What would change if a usable keyring could have appeared: keyring's variables, the
    mtime of its configuration file, and of the folders packages are installed in (a new
    backend package, keyrings.alt say, changes them). Cheap: a few stats, no import."""
    import sys

    parts = [f"{k}={os.environ.get(k, '')}" for k in _KEYRING_ENV]
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    for path in (os.path.join(config_home, "python_keyring", "keyringrc.cfg"),):
        parts.append(f"{path}:{_mtime(path)}")
    for entry in sys.path:
        if entry and ("site-packages" in entry or "dist-packages" in entry):
            parts.append(f"{entry}:{_mtime(entry)}")
    return "\n".join(parts)


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _usable(backend: keyring.backend.KeyringBackend) -> bool:
    """False for the backends keyring picks when there is no real one."""
    from keyring.backends import chainer, fail

    if isinstance(backend, fail.Keyring):
        return False
    # The null backend silently drops everything: as good as none, but worse (no error).
    try:
        from keyring.backends import null

        if isinstance(backend, null.Keyring):
            return False
    except ImportError:  # pragma: no cover - null backend ships with keyring
        pass
    return not (isinstance(backend, chainer.ChainerBackend) and not backend.backends)


class MemorySecretStore:
    """Secrets in a dict, for tests and for credentials given only for this process.

    Args:
        persistent: what to report as ``persistent``. The default (True) makes it a
            stand-in for a working keyring; False mimics a machine without one and sets
            ``note`` like ``SecretStore`` does.
    """

    def __init__(self, *, persistent: bool = True) -> None:
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()
        self.persistent = persistent
        self.note: str | None = None if persistent else NO_KEYRING_NOTE

    def get(self, name: str) -> str | None:
        with self._lock:
            return self._values.get(name)

    def set(self, name: str, value: str) -> None:
        with self._lock:
            self._values[name] = value

    def delete(self, name: str) -> None:
        with self._lock:
            self._values.pop(name, None)

    def __repr__(self) -> str:
        # Names are not secret, values are: show how many, never what.
        return f"{type(self).__name__}({len(self._values)} secrets)"


class SecretStore:
    """Secrets in the OS keyring (service ``halext-desktop``), memory when there is none.

    Satisfies ``routing.backends.base.CredentialStore``.

    Args:
        backend: the keyring backend to use; default ``keyring.get_keyring()``, asked at
            the first read or write.
        absent_cache: a file remembering names the keyring did not have (for
            ``ABSENT_TTL_S``); None: always ask.

    Attributes:
        persistent: True while secrets go to a real keyring.
        note: a sentence for the user when they do not (else None).
    """

    def __init__(
        self,
        backend: keyring.backend.KeyringBackend | None = None,
        *,
        absent_cache: Path | None = None,
    ) -> None:
        self._memory: dict[str, str] = {}
        self._lock = threading.RLock()
        self._persistent = True
        self._note: str | None = None
        self._backend: keyring.backend.KeyringBackend | None = backend
        self._resolved = False
        self._from_cache = False  # "no usable keyring" came from the cache file
        self._absent_cache = absent_cache

    def _ensure(self, *, fresh: bool = False) -> None:
        """Import keyring and find its backend (once). ``fresh``: ask keyring even when an
        earlier start found no usable backend (storing a secret must not be lost to a
        remembered answer)."""
        if self._resolved and not (fresh and self._from_cache):
            return
        with self._lock:
            if self._resolved and not (fresh and self._from_cache):
                return
            if not fresh and self._backend is None and self._no_keyring_remembered():
                # An earlier start found none, and nothing keyring depends on changed.
                self._fall_back(None, remembered=True)
                self._from_cache = self._resolved = True
                return
            import keyring
            import keyring.errors

            chosen = self._backend is None or self._from_cache
            self._from_cache = False
            try:
                if chosen:
                    self._backend = keyring.get_keyring()
            except keyring.errors.KeyringError as exc:
                self._backend = None
                self._fall_back(exc)
            else:
                if self._backend is not None and not _usable(self._backend):
                    self._fall_back(None)
                elif self._backend is not None:
                    self._persistent, self._note = True, None
            if chosen:
                # Only keyring's own choice says something about the machine.
                self._remember_no_keyring(self._backend is None)
            self._resolved = True

    @property
    def persistent(self) -> bool:
        self._ensure()
        return self._persistent

    @property
    def note(self) -> str | None:
        self._ensure()
        return self._note

    def _fall_back(self, exc: Exception | None, *, remembered: bool = False) -> None:
        """Switch to session-only memory (once) and explain why."""
        if self._persistent:
            reason = f"{type(exc).__name__}" if exc is not None else "no backend"
            if remembered:
                reason = "none found at an earlier start"
            log.warning("no usable keyring (%s); secrets are kept for this session only", reason)
        self._persistent = False
        self._note = NO_KEYRING_NOTE
        self._backend = None

    @property
    def backend_name(self) -> str:
        """The keyring backend's class name, or ``memory``."""
        self._ensure()
        return type(self._backend).__name__ if self._backend is not None else "memory"

    def get(self, name: str) -> str | None:
        """The secret called ``name``, or None."""
        with self._lock:
            if name in self._memory:  # this session's, when there is no usable keyring
                return self._memory[name]
        if self._known_absent(name):
            return None
        self._ensure()
        with self._lock:
            if self._backend is not None:
                import keyring.errors

                try:
                    value = self._backend.get_password(SERVICE, name)
                except keyring.errors.KeyringError as exc:
                    self._fall_back(exc)
                else:
                    self._remember(name, absent=value is None)
                    return value
            return self._memory.get(name)

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` (replacing any previous one)."""
        self._ensure(fresh=True)
        import keyring.errors

        with self._lock:
            self._remember(name, absent=False)
            if self._backend is not None:
                try:
                    self._backend.set_password(SERVICE, name, value)
                    return
                except keyring.errors.KeyringError as exc:
                    self._fall_back(exc)
            self._memory[name] = value

    def delete(self, name: str) -> None:
        """Forget ``name``; a missing secret is fine."""
        self._ensure()
        with self._lock:
            self._memory.pop(name, None)
            if self._backend is None:
                return
            import keyring.errors

            try:
                self._backend.delete_password(SERVICE, name)
            except keyring.errors.PasswordDeleteError:
                pass  # keyring's way of saying "there was nothing to delete"
            except keyring.errors.KeyringError as exc:
                self._fall_back(exc)
                return
            self._remember(name, absent=True)

    # ---- names the keyring did not have ---------------------------------------------------

    def _read_cache(self) -> dict[str, Any]:
        if self._absent_cache is None:
            return {}
        try:
            data: Any = json.loads(self._absent_cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _read_absent(self) -> dict[str, float]:
        names = self._read_cache().get("absent")
        if not isinstance(names, dict):
            return {}
        return {k: float(v) for k, v in names.items() if isinstance(v, int | float)}

    def _no_keyring_remembered(self) -> bool:
        entry = self._read_cache().get("no_keyring")
        if not isinstance(entry, dict):
            return False
        seen, fingerprint = entry.get("at"), entry.get("fingerprint")
        if not isinstance(seen, int | float) or not isinstance(fingerprint, str):
            return False
        ttl = (
            NO_KEYRING_DBUS_TTL_S
            if os.environ.get("DBUS_SESSION_BUS_ADDRESS")
            else NO_KEYRING_TTL_S
        )
        return 0 <= time.time() - seen < ttl and fingerprint == _keyring_fingerprint()

    def _remember_no_keyring(self, none: bool) -> None:
        """Note (or forget) that keyring found no usable backend on this machine."""
        if self._absent_cache is None:
            return
        data = self._read_cache()
        if none:
            data["no_keyring"] = {"at": time.time(), "fingerprint": _keyring_fingerprint()}
        elif data.pop("no_keyring", None) is None:
            return
        self._write_cache(data)

    def _write_cache(self, data: dict[str, Any]) -> None:
        path = self._absent_cache
        if path is None:
            return
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("could not update %s: %s", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _known_absent(self, name: str) -> bool:
        seen = self._read_absent().get(name)
        return seen is not None and 0 <= time.time() - seen < ABSENT_TTL_S

    def _remember(self, name: str, *, absent: bool) -> None:
        """Note (or forget) that the keyring has no ``name``. Read again just before the
        write, so a name another process stored meanwhile is not lost."""
        path = self._absent_cache
        if path is None or not self._persistent:
            # Only a working keyring's "no such secret" is remembered: without one (or while
            # it is locked or not up yet) nothing is known about what it holds.
            return
        data = self._read_cache()
        names = self._read_absent()
        if absent == (name in names) and not absent:
            return
        if absent:
            names[name] = time.time()
        elif names.pop(name, None) is None:
            return
        data["absent"] = names
        self._write_cache(data)

    def __repr__(self) -> str:
        return f"SecretStore(backend={self.backend_name}, persistent={self.persistent})"
