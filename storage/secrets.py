"""Secrets (halext token and password, API keys) in the OS keyring, and nowhere else.

``SecretStore`` wraps ``keyring`` under the service name ``halext-desktop``. When the
machine has no usable keyring (a headless Linux box, a locked-down container) it keeps
secrets in this process only, says so in ``note``, and never falls back to a file:
asking for a password again beats leaving it on disk in plain text.
"""

from __future__ import annotations

import logging
import threading

import keyring
import keyring.backend
import keyring.errors
from keyring.backends import chainer, fail

log = logging.getLogger(__name__)

SERVICE = "halext-desktop"
NO_KEYRING_NOTE = (
    "No system keyring is available: passwords and tokens are kept for this session only "
    "and will be asked for again next time."
)


def _usable(backend: keyring.backend.KeyringBackend) -> bool:
    """False for the backends keyring picks when there is no real one."""
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
        backend: the keyring backend to use; default ``keyring.get_keyring()``.

    Attributes:
        persistent: True while secrets go to a real keyring.
        note: a sentence for the user when they do not (else None).
    """

    def __init__(self, backend: keyring.backend.KeyringBackend | None = None) -> None:
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        self.persistent = True
        self.note: str | None = None
        try:
            self._backend: keyring.backend.KeyringBackend | None = backend or keyring.get_keyring()
        except keyring.errors.KeyringError as exc:
            self._backend = None
            self._fall_back(exc)
            return
        if not _usable(self._backend):
            self._fall_back(None)

    def _fall_back(self, exc: Exception | None) -> None:
        """Switch to session-only memory (once) and explain why."""
        if self.persistent:
            reason = f"{type(exc).__name__}" if exc is not None else "no backend"
            log.warning("no usable keyring (%s); secrets are kept for this session only", reason)
        self.persistent = False
        self.note = NO_KEYRING_NOTE
        self._backend = None

    @property
    def backend_name(self) -> str:
        """The keyring backend's class name, or ``memory``."""
        return type(self._backend).__name__ if self._backend is not None else "memory"

    def get(self, name: str) -> str | None:
        """The secret called ``name``, or None."""
        with self._lock:
            if self._backend is not None:
                try:
                    return self._backend.get_password(SERVICE, name)
                except keyring.errors.KeyringError as exc:
                    self._fall_back(exc)
            return self._memory.get(name)

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` (replacing any previous one)."""
        with self._lock:
            if self._backend is not None:
                try:
                    self._backend.set_password(SERVICE, name, value)
                    return
                except keyring.errors.KeyringError as exc:
                    self._fall_back(exc)
            self._memory[name] = value

    def delete(self, name: str) -> None:
        """Forget ``name``; a missing secret is fine."""
        with self._lock:
            self._memory.pop(name, None)
            if self._backend is None:
                return
            try:
                self._backend.delete_password(SERVICE, name)
            except keyring.errors.PasswordDeleteError:
                pass  # keyring's way of saying "there was nothing to delete"
            except keyring.errors.KeyringError as exc:
                self._fall_back(exc)

    def __repr__(self) -> str:
        return f"SecretStore(backend={self.backend_name}, persistent={self.persistent})"
