"""SecretStore: keyring service, session-only fallback, nothing on disk, nothing in reprs."""

from __future__ import annotations

import time
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from keyring.backends import chainer, fail, null

from halext_desktop.routing.backends.base import CredentialStore
from halext_desktop.storage.secrets import NO_KEYRING_NOTE, SERVICE, MemorySecretStore, SecretStore
from tests.conftest import MemoryKeyring

SECRET = "s3cr3t-" + "x" * 20


class BrokenKeyring(keyring.backend.KeyringBackend):
    """A backend that looks real but fails on use (a locked or crashed Secret Service)."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("cannot unlock")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")


class EmptyChainer(chainer.ChainerBackend):
    backends: list[keyring.backend.KeyringBackend] = []  # type: ignore[assignment]


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_keyring_round_trip_under_the_service_name(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    assert store.persistent is True and store.note is None
    store.set("openai-key:groq", SECRET)
    assert memory_keyring.store[(SERVICE, "openai-key:groq")] == SECRET
    assert store.get("openai-key:groq") == SECRET
    assert SecretStore().get("openai-key:groq") == SECRET  # a new store sees the keyring
    store.delete("openai-key:groq")
    assert store.get("openai-key:groq") is None
    assert (SERVICE, "openai-key:groq") not in memory_keyring.store


def test_delete_missing_is_fine_and_keeps_the_keyring() -> None:
    class StrictKeyring(MemoryKeyring):
        def delete_password(self, service: str, username: str) -> None:
            if (service, username) not in self.store:
                raise keyring.errors.PasswordDeleteError("not found")
            del self.store[(service, username)]

    store = SecretStore(StrictKeyring())
    store.delete("never-set")
    assert store.persistent is True
    store.set("a", "1")
    assert store.get("a") == "1"


@pytest.mark.parametrize(
    "backend", [fail.Keyring(), null.Keyring(), EmptyChainer()], ids=["fail", "null", "chainer"]
)
def test_no_usable_keyring_falls_back_to_session_memory(
    backend: keyring.backend.KeyringBackend, isolated_home: Path
) -> None:
    store = SecretStore(backend)
    assert store.persistent is False
    assert store.note == NO_KEYRING_NOTE
    store.set("halext-token:http://h/api", SECRET)
    assert store.get("halext-token:http://h/api") == SECRET
    assert SecretStore(backend).get("halext-token:http://h/api") is None  # session only
    assert files_containing(isolated_home, SECRET) == []


def test_default_backend_is_keyrings_choice() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        store = SecretStore()
        persistent = store.persistent  # keyring is asked for its backend at first use
    finally:
        keyring.set_keyring(previous)
    assert persistent is False


def test_the_keyring_is_not_asked_until_a_secret_is_used(
    monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    """Building a store costs nothing: keyring picks its backend (~0.1 s of imports and
    probing) only when a secret is first read or written."""
    asked: list[int] = []
    real = keyring.get_keyring

    def counting() -> keyring.backend.KeyringBackend:
        asked.append(1)
        return real()

    monkeypatch.setattr(keyring, "get_keyring", counting)
    store = SecretStore()
    assert asked == []
    assert store.get("ollama-key:local") is None
    assert asked == [1]
    store.set("ollama-key:local", SECRET)
    assert store.get("ollama-key:local") == SECRET
    assert asked == [1]  # once per store


def test_names_the_keyring_lacks_are_remembered_for_a_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    """A start that needs no secret (an Ollama host without a key) does not load the
    keyring again; a secret stored through the app is found at once, and a name is asked
    again after a day (a key added some other way is found then)."""
    cache = tmp_path / "keyring-absent.json"
    asked: list[int] = []
    real = keyring.get_keyring

    def counting() -> keyring.backend.KeyringBackend:
        asked.append(1)
        return real()

    monkeypatch.setattr(keyring, "get_keyring", counting)
    assert SecretStore(absent_cache=cache).get("ollama-key:local") is None
    assert asked == [1]
    assert SECRET not in cache.read_text() and "ollama-key:local" in cache.read_text()
    assert oct(cache.stat().st_mode & 0o777) == "0o600"

    later = SecretStore(absent_cache=cache)
    assert later.get("ollama-key:local") is None
    assert asked == [1]  # known missing: the keyring was not loaded

    SecretStore(absent_cache=cache).set("ollama-key:local", SECRET)
    assert SecretStore(absent_cache=cache).get("ollama-key:local") == SECRET
    assert SECRET not in cache.read_text()

    memory_keyring.store[(SERVICE, "openai-key:groq")] = "from elsewhere"
    SecretStore(absent_cache=cache).delete("openai-key:groq")  # now missing, remembered
    memory_keyring.store[(SERVICE, "openai-key:groq")] = "from elsewhere"
    assert SecretStore(absent_cache=cache).get("openai-key:groq") is None
    day_later = time.time() + 24 * 3600 + 1
    monkeypatch.setattr(time, "time", lambda: day_later)
    assert SecretStore(absent_cache=cache).get("openai-key:groq") == "from elsewhere"


def test_names_are_not_remembered_without_a_keyring(tmp_path: Path) -> None:
    """Session-only secrets vanish at exit: nothing about them is kept."""
    cache = tmp_path / "keyring-absent.json"
    store = SecretStore(fail.Keyring(), absent_cache=cache)
    assert store.get("ollama-key:local") is None
    assert not cache.exists()


def test_keyring_error_on_use_switches_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    store = SecretStore(BrokenKeyring())
    assert store.persistent is True  # looked fine until used
    store.set("openai-key:x", SECRET)
    assert store.persistent is False
    assert store.note == NO_KEYRING_NOTE
    assert store.get("openai-key:x") == SECRET
    store.delete("openai-key:x")
    assert store.get("openai-key:x") is None
    assert SECRET not in caplog.text


def test_keyring_error_on_get_falls_back_too() -> None:
    store = SecretStore(BrokenKeyring())
    assert store.get("anything") is None
    assert store.persistent is False


def test_reprs_never_show_values() -> None:
    for store in (SecretStore(), MemorySecretStore(), SecretStore(fail.Keyring())):
        store.set("halext-password:http://h/api:dev", SECRET)
        assert SECRET not in repr(store)
        assert SECRET not in str(store)


def test_memory_store_interface() -> None:
    store = MemorySecretStore()
    assert store.persistent is True and store.note is None
    store.set("a", "1")
    store.set("a", "2")
    assert store.get("a") == "2"
    store.delete("a")
    store.delete("a")
    assert store.get("a") is None
    no_keyring = MemorySecretStore(persistent=False)
    assert no_keyring.note == NO_KEYRING_NOTE


def test_both_satisfy_the_routing_credential_store() -> None:
    stores: list[CredentialStore] = [SecretStore(), MemorySecretStore()]
    for store in stores:
        store.set("k", "v")
        assert store.get("k") == "v"
        store.delete("k")
        assert store.get("k") is None


def test_no_usable_keyring_is_remembered_while_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    """On a machine where keyring finds no backend, the next start does not probe again
    (0.1–0.3 s) unless keyring's environment changed; storing a secret asks anew, and a
    keyring that came up since is used at once (and forgets the remembered answer)."""
    cache = tmp_path / "keyring-absent.json"
    asked: list[int] = []
    keyring.set_keyring(fail.Keyring())

    def counting() -> keyring.backend.KeyringBackend:
        asked.append(1)
        return keyring.core.get_keyring()

    monkeypatch.setattr(keyring, "get_keyring", counting)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    first = SecretStore(absent_cache=cache)
    assert first.get("ollama-key:local") is None and first.persistent is False
    assert asked == [1] and "no_keyring" in cache.read_text()

    later = SecretStore(absent_cache=cache)
    assert later.get("ollama-key:local") is None
    assert later.persistent is False and later.note == NO_KEYRING_NOTE
    assert asked == [1]  # remembered: keyring was not asked

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    assert SecretStore(absent_cache=cache).get("ollama-key:local") is None
    assert len(asked) == 2  # its environment changed: asked again (and still none)
    assert SecretStore(absent_cache=cache).persistent is False
    assert len(asked) == 2

    keyring.set_keyring(memory_keyring)  # a keyring came up within the remembered time
    store = SecretStore(absent_cache=cache)
    assert store.persistent is False and len(asked) == 2
    store.set("ollama-key:local", SECRET)
    assert len(asked) == 3  # storing asks keyring anew
    assert memory_keyring.store[(SERVICE, "ollama-key:local")] == SECRET
    assert store.persistent is True and store.note is None
    assert "no_keyring" not in cache.read_text() and SECRET not in cache.read_text()
    assert SecretStore(absent_cache=cache).get("ollama-key:local") == SECRET


def test_no_usable_keyring_is_asked_again_after_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "keyring-absent.json"
    asked: list[int] = []
    keyring.set_keyring(fail.Keyring())

    def counting() -> keyring.backend.KeyringBackend:
        asked.append(1)
        return keyring.core.get_keyring()

    monkeypatch.setattr(keyring, "get_keyring", counting)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert SecretStore(absent_cache=cache).persistent is False
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 23 * 3600)
    assert SecretStore(absent_cache=cache).persistent is False and len(asked) == 1
    monkeypatch.setattr(time, "time", lambda: now + 24 * 3600 + 1)
    assert SecretStore(absent_cache=cache).persistent is False and len(asked) == 2
