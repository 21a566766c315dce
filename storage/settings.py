"""The typed, versioned settings schema that the GUI and the CLI both edit.

One JSON file, ``{"version": 1, "values": {...}}``, holding only the values that differ
from their defaults (so a changed default reaches users who never touched it). Every key
has a type, a default, a validator and a text form for ``halext-desktop config set``.
A change is validated, written atomically (temp file + ``os.replace``) and then announced
to subscribers, synchronously, on the setter's thread; the GUI turns that into a Qt signal.

Secrets never live here: an OpenAI-compatible endpoint stores its name and URL, and its key
goes to the keyring as ``openai-key:<name>``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from halext_desktop.routing.refs import HOST_NAME_RULE, ModelRef, ModelRefError, is_host_name

log = logging.getLogger(__name__)

DEFAULT_HALEXT_URL = "https://org.halext.org/api"
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
OLLAMA_DEFAULT_PORT = 11434
DEFAULT_MAX_REPLY_MB = 32

_TRUE = ("true", "on", "yes", "1")
_FALSE = ("false", "off", "no", "0")
_THEMES = ("system", "light", "dark")
_SECRET_FIELDS = ("key", "api_key", "apikey", "token", "password", "secret")


class SettingsError(ValueError):
    """A rejected setting or an unusable settings file; the message names the key and
    what is allowed."""


@dataclass(frozen=True, slots=True)
class OllamaHost:
    """A configured Ollama server. The first one is the default ``ollama/...`` route."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class OpenAIEndpoint:
    """An OpenAI-compatible endpoint. Its API key lives in the keyring as
    ``openai-key:<name>``, never in the settings file."""

    name: str
    url: str


# ---- validators: each takes a Python value, returns the normalised JSON-able value ------------


_URL_EXAMPLES = "e.g. https://org.halext.org/api or http://127.0.0.1:11434"
# Characters that never belong in a host name or a URL typed by hand (RFC 3986 excludes them).
_BAD_URL_CHARS = set('<>"{}|\\^`')


_USERINFO = re.compile(r"(://)[^/@]*@")


def _shown(text: str, parts: urllib.parse.SplitResult | None = None) -> str:
    """``text`` for a message: control characters escaped (repr), and a ``user:password@``
    part never shown, whatever else is wrong with the URL."""
    return repr(_USERINFO.sub(r"\1***@", text, count=1))


def _why(exc: ValueError) -> str:
    """urllib's complaint in the user's terms."""
    text = str(exc)
    if "Port out of range" in text:
        return "its port is out of range: use 1 to 65535"
    if "could not be cast" in text or "Port could not" in text:
        return "its port is not a number"
    if "IPv6" in text:
        return "a broken IPv6 address: it goes in brackets, e.g. http://[::1]:11434"
    return text


def check_url(key: str, value: Any, *, allow_empty: bool = False) -> str:
    """A base URL for a server, checked at the door: http(s), a host, a port 1..65535 if
    any, nothing else in the way (no spaces or control characters, no ``user:pass@``, no
    query or fragment). Returns it without a trailing slash.

    Raises:
        SettingsError: one line naming ``key``, the value (a password masked) and what is
            allowed.
    """
    if not isinstance(value, str):
        raise SettingsError(f"{key}: expected a URL string, got {type(value).__name__}")
    text = value.strip()
    if not text and allow_empty:
        return ""
    if not text:
        raise SettingsError(f"{key}: a URL is needed ({_URL_EXAMPLES})")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ("http", "https"):
        raise SettingsError(
            f"{key}: {_shown(text)} is not an http:// or https:// URL ({_URL_EXAMPLES})"
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise SettingsError(
            f"{key}: {_shown(text)} contains a space, tab or line break; a URL has none "
            f"({_URL_EXAMPLES})"
        )
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # raises on a port that is not a number or out of range
        host = parts.hostname
    except ValueError as exc:
        raise SettingsError(
            f"{key}: {_shown(text)} is not a valid URL ({_why(exc)}); {_URL_EXAMPLES}"
        ) from None
    if parts.username is not None or parts.password is not None:
        raise SettingsError(
            f"{key}: {_shown(text, parts)} holds a user name or password (user:pass@host); "
            "remove it — sign in from Settings → Connections or with `halext-desktop login`, "
            "and secrets go to the system keyring, never into the settings file"
        )
    if not host:
        raise SettingsError(f"{key}: {_shown(text)} has no host name ({_URL_EXAMPLES})")
    if _BAD_URL_CHARS & set(text):
        raise SettingsError(f"{key}: {_shown(text)} contains characters a URL cannot have")
    if port == 0:
        raise SettingsError(f"{key}: {_shown(text)} has port 0; use a port from 1 to 65535")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise SettingsError(
            f"{key}: {_shown(text)} has a query or fragment (?… or #…); give the server's "
            f"base URL only ({_URL_EXAMPLES})"
        )
    return text.rstrip("/")


_check_url = check_url


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{key}: expected true or false, got {value!r}")
    return value


def _check_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SettingsError(f"{key}: expected text, got {type(value).__name__}")
    return value.strip()


def _check_int_range(key: str, value: Any, lo: int, hi: int, zero_means: str) -> int:
    # bool is an int subclass; True as a font size is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{key}: expected a whole number, got {value!r}")
    if value != 0 and not lo <= value <= hi:
        raise SettingsError(f"{key}: {value} is out of range: use 0 ({zero_means}) or {lo}..{hi}")
    return value


def _check_positive_range(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{key}: expected a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise SettingsError(f"{key}: {value} is out of range: use {lo}..{hi}")
    return value


def _check_ref(key: str, value: Any) -> str:
    if isinstance(value, ModelRef):
        return str(value)
    if not isinstance(value, str):
        raise SettingsError(f"{key}: expected a model reference string, got {value!r}")
    try:
        return str(ModelRef.parse(value.strip()))
    except ModelRefError as exc:
        raise SettingsError(f"{key}: {exc}") from None


def _check_named_urls(key: str, value: Any, *, keys_forbidden: bool) -> list[dict[str, str]]:
    if not isinstance(value, list | tuple):
        raise SettingsError(f'{key}: expected a list of {{"name", "url"}} entries')
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in value:
        if isinstance(item, OllamaHost | OpenAIEndpoint):
            item = {"name": item.name, "url": item.url}
        if not isinstance(item, Mapping):
            raise SettingsError(f"{key}: each entry needs a name and a url, got {item!r}")
        secret_fields = sorted(k for k in item if str(k).lower() in _SECRET_FIELDS)
        if secret_fields:
            # Do not echo the entry: it holds the very secret we refuse to store.
            where = "the keyring (Settings → Connections)" if keys_forbidden else "the keyring"
            raise SettingsError(
                f"{key}: API keys and tokens are never stored in the settings file; "
                f"remove {', '.join(secret_fields)!s} — keys go to {where}"
            )
        extra = sorted(set(item) - {"name", "url"})
        if extra:
            raise SettingsError(
                f"{key}: unknown field(s) {', '.join(map(str, extra))}; use name and url"
            )
        name = item.get("name")
        if not is_host_name(name):
            raise SettingsError(f"{key}: bad name {name!r}: {HOST_NAME_RULE}")
        if name in seen:
            raise SettingsError(f"{key}: the name {name!r} is used twice; names must be unique")
        seen.add(name)
        out.append({"name": name, "url": _check_url(f"{key}[{name}].url", item.get("url"))})
    return out


def _check_ref_list(key: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise SettingsError(f"{key}: expected a list of model references")
    out: list[str] = []
    for item in value:
        ref = _check_ref(key, item)
        if ref not in out:  # a duplicate fallback would only be tried twice
            out.append(ref)
    return out


# ---- text forms (config set KEY VALUE) ---------------------------------------------------------


def _bool_from_text(key: str, text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise SettingsError(f"{key}: {text!r} is not a boolean; use true/false, on/off, yes/no or 1/0")


def _int_from_text(key: str, text: str) -> int:
    t = text.strip()
    if len(t) > 12:  # far beyond any range here; int() of a huge string is slow
        raise SettingsError(f"{key}: {text!r} is not a number in range")
    try:
        return int(t)
    except ValueError:
        raise SettingsError(f"{key}: {text!r} is not a whole number") from None


def _named_urls_from_text(key: str, text: str) -> Any:
    t = text.strip()
    if not t:
        return []
    if t.startswith("["):
        try:
            return json.loads(t)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{key}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    items = []
    for part in t.split(","):
        name, sep, url = part.strip().partition("=")
        if not sep:
            raise SettingsError(
                f"{key}: {part.strip()!r} is not name=url; use JSON or "
                "comma-separated name=url pairs, e.g. local=http://127.0.0.1:11434"
            )
        items.append({"name": name.strip(), "url": url.strip()})
    return items


_HOSTPORT_RULE = "host:port, e.g. 192.168.1.20:8000 or halext.lan:80"


def _check_hostports(key: str, value: Any) -> list[str]:
    """A list of ``host:port`` strings (lower-case host, explicit port), without repeats."""
    if not isinstance(value, list | tuple):
        raise SettingsError(f"{key}: expected a list of {_HOSTPORT_RULE}")
    out: list[str] = []
    for item in value:
        text = item.strip().lower() if isinstance(item, str) else ""
        parts = urllib.parse.urlsplit(f"http://{text}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or "/" in text or "@" in text:
            raise SettingsError(f"{key}: {item!r} is not {_HOSTPORT_RULE}")
        if text not in out:
            out.append(text)
    return out


def _list_from_text(key: str, text: str) -> Any:
    t = text.strip()
    if t.startswith("["):
        try:
            return json.loads(t)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{key}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    return [p.strip() for p in t.split(",") if p.strip()]


def _ref_list_from_text(key: str, text: str) -> Any:
    t = text.strip()
    if not t:
        return []
    if t.startswith("["):
        try:
            return json.loads(t)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{key}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    return [p.strip() for p in t.split(",") if p.strip()]


@dataclass(frozen=True, slots=True)
class _Spec:
    default: Any
    describe: str
    check: Callable[[str, Any], Any]
    from_text: Callable[[str, str], Any]


def _text_as_is(_key: str, text: str) -> str:
    return text


_SCHEMA: dict[str, _Spec] = {
    "halext_url": _Spec(
        DEFAULT_HALEXT_URL,
        "URL: http(s) base URL of the halext API, or empty for none "
        f"(default {DEFAULT_HALEXT_URL})",
        lambda k, v: _check_url(k, v, allow_empty=True),
        _text_as_is,
    ),
    "halext_username": _Spec("", "text: halext user name (default empty)", _check_str, _text_as_is),
    "halext_remember": _Spec(
        False,
        "bool: true/false, on/off, yes/no, 1/0 — keep the password in the keyring (default false)",
        _check_bool,
        _bool_from_text,
    ),
    "ollama_hosts": _Spec(
        [{"name": "local", "url": DEFAULT_OLLAMA_URL}],
        'list of hosts: JSON [{"name": ..., "url": ...}] or name=url,name=url '
        f"(default local={DEFAULT_OLLAMA_URL}); the first is the default",
        lambda k, v: _check_named_urls(k, v, keys_forbidden=False),
        _named_urls_from_text,
    ),
    "openai_endpoints": _Spec(
        [],
        'list of endpoints: JSON [{"name": ..., "url": ...}] or name=url,... '
        "(default empty; keys go to the keyring, never here)",
        lambda k, v: _check_named_urls(k, v, keys_forbidden=True),
        _named_urls_from_text,
    ),
    "plain_http_ok": _Spec(
        [],
        "list of host:port: servers on other machines that may receive a password, token "
        "or API key over plain http:// (unencrypted), comma-separated (default empty)",
        _check_hostports,
        _list_from_text,
    ),
    "disable_cloud": _Spec(
        False, "bool: true/false, on/off, yes/no, 1/0 (default false)", _check_bool, _bool_from_text
    ),
    "offline": _Spec(
        False,
        "bool: true/false, on/off, yes/no, 1/0 — contact only the Ollama hosts (default false)",
        _check_bool,
        _bool_from_text,
    ),
    "default_model": _Spec(
        "",
        "model reference such as ollama/llama3.1:8b, or empty for none (default empty)",
        lambda k, v: "" if isinstance(v, str) and not v.strip() else _check_ref(k, v),
        _text_as_is,
    ),
    "fallback_models": _Spec(
        [],
        'list of model references: JSON ["ollama/llama3.1:8b", ...] or comma-separated '
        "(default empty)",
        _check_ref_list,
        _ref_list_from_text,
    ),
    "theme": _Spec(
        "system",
        "one of system, light, dark (default system)",
        lambda k, v: _check_choice(k, v, _THEMES),
        lambda _k, t: t.strip().lower(),
    ),
    "font_size": _Spec(
        0,
        "int: 0 (follow the system) or 8..32 points (default 0)",
        lambda k, v: _check_int_range(k, v, 8, 32, "follow the system"),
        _int_from_text,
    ),
    "usage_retention_days": _Spec(
        0,
        "int: 0 (keep forever) or 1..3650 days (default 0)",
        lambda k, v: _check_int_range(k, v, 1, 3650, "keep forever"),
        _int_from_text,
    ),
    "max_reply_mb": _Spec(
        DEFAULT_MAX_REPLY_MB,
        f"int: 1..1024 MB, the longest reply kept (default {DEFAULT_MAX_REPLY_MB}); a longer "
        "one is ended there with a message, its first part kept",
        lambda k, v: _check_positive_range(k, v, 1, 1024),
        _int_from_text,
    ),
}


# Settings whose change means the set of routes (backends) must be rebuilt: where the
# servers are and who signs in to them. The front ends rebuild the router on these.
ROUTE_KEYS = frozenset(
    {
        "halext_url",
        "halext_username",
        "halext_remember",
        "ollama_hosts",
        "openai_endpoints",
        "plain_http_ok",
    }
)


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise SettingsError(f"{key}: {value!r} is not allowed; use one of {', '.join(choices)}")
    return value


def parse_ollama_host(text: str) -> str:
    """Turn an ``OLLAMA_HOST`` value into a base URL, the way the ollama client does.

    ``"1.2.3.4"`` → ``http://1.2.3.4:11434``, ``":5678"`` → ``http://127.0.0.1:5678``,
    ``"http://h"`` is kept as written (trailing slash removed). ``0.0.0.0`` and ``::`` are
    what people put in OLLAMA_HOST to make the *server* listen everywhere; as a place to
    connect to they mean this machine, so they become 127.0.0.1 (connecting to 0.0.0.0
    fails on Windows and macOS).

    Raises:
        SettingsError: the value is not a host, ``host:port`` or URL (a port out of range,
            a broken IPv6 address, spaces...); the message names it and what is allowed.
    """
    key = "OLLAMA_HOST"
    t = text.strip()
    if any(ch.isspace() or ord(ch) < 32 for ch in t):
        raise SettingsError(
            f"{key}={text!r} contains a space or line break; use host, host:port or a URL "
            "(e.g. 127.0.0.1:11434)"
        )
    if "://" in t:
        return check_url(key, t)
    hostport, slash, path = t.partition("/")
    try:
        split = urllib.parse.urlsplit(f"http://{hostport}")
        port = split.port or OLLAMA_DEFAULT_PORT
        host = split.hostname or "127.0.0.1"
    except ValueError as exc:
        raise SettingsError(
            f"{key}={text!r} is not host, host:port or a URL ({_why(exc)}); e.g. 127.0.0.1:11434"
        ) from None
    if split.username is not None or split.password is not None:
        raise SettingsError(f"{key}: a user name or password does not belong in OLLAMA_HOST")
    if split.port == 0:
        raise SettingsError(f"{key}={text!r} has port 0; use a port from 1 to 65535")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    tail = f"/{path}".rstrip("/") if slash else ""
    return check_url(key, f"http://{host}:{port}{tail}")


def _atomic_write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# What "Reset to default" on the AI tab restores (the web app's AI preferences): the
# switches and the model choices, never the connections the user typed in.
AI_KEYS: tuple[str, ...] = ("disable_cloud", "offline", "default_model", "fallback_models")


class Settings:
    """The user's settings: typed values with defaults, validation and change callbacks.

    Args:
        path: the JSON file to load and persist to; None keeps everything in memory.
        env: environment for the overrides (``HALEXT_URL``, ``OLLAMA_HOST``); default
            ``os.environ``.

    Attributes:
        load_warning: a sentence for the user when the file could not be used as is
            (corrupt, unknown or invalid keys), else None.

    Raises:
        SettingsError: the file was written by a newer version (never clobbered).
    """

    VERSION = 1

    def __init__(self, path: Path | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._env = env
        self._lock = threading.RLock()
        self._values: dict[str, Any] = {k: _copy(spec.default) for k, spec in _SCHEMA.items()}
        self._subscribers: list[Callable[[str, Any], None]] = []
        self.load_warning: str | None = None
        if path is not None and path.exists():
            self._read(path)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``path`` (default: the user's settings file)."""
        if path is None:
            from halext_desktop.storage.paths import settings_path

            path = settings_path()
        return cls(path, env=env)

    def __repr__(self) -> str:
        return f"Settings(path={str(self.path) if self.path else None!r})"

    # ---- file ---------------------------------------------------------------------------

    def _keep_bad_copy(self, path: Path) -> Path:
        bad = path.with_name(path.name + ".bad")
        try:
            shutil.copyfile(path, bad)
        except OSError as exc:  # keep going: defaults beat refusing to start
            log.warning("could not keep a copy of %s: %s", path, exc)
        return bad

    def _read(self, path: Path) -> None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or not isinstance(doc.get("values", {}), dict):
                raise ValueError("not a settings object")
            version = doc.get("version")
            if isinstance(version, bool) or not isinstance(version, int):
                raise ValueError("no version number")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            bad = self._keep_bad_copy(path)
            self.load_warning = (
                f"The settings file {path} could not be read ({exc}); starting from the "
                f"defaults. The old file was kept as {bad}."
            )
            log.warning("%s", self.load_warning)
            return
        if version > self.VERSION:
            raise SettingsError(
                f"The settings file {path} was written by a newer Halext Desktop (settings "
                f"version {version}; this one understands up to {self.VERSION}). "
                "Update Halext Desktop, or move the file away to start from the defaults."
            )
        problems: list[str] = []
        # A hand-edited `"disable_cloud": true` next to "values" instead of inside it would
        # otherwise be dropped without a word, and cloud providers left on.
        unknown: list[str] = [str(k) for k in doc if k not in ("version", "values")]
        for key, raw in doc.get("values", {}).items():
            spec = _SCHEMA.get(key)
            if spec is None:
                unknown.append(str(key))
                continue
            try:
                self._values[key] = spec.check(key, raw)
            except SettingsError as exc:
                problems.append(str(exc))
        if unknown or problems:
            bad = self._keep_bad_copy(path)
            parts = []
            if unknown:
                parts.append(f"ignored unknown settings: {', '.join(sorted(unknown))}")
            if problems:
                parts.append("reset invalid settings to their defaults: " + "; ".join(problems))
            self.load_warning = (
                f"Settings file {path}: {'; '.join(parts)}. The original was kept as {bad}."
            )
            log.warning("%s", self.load_warning)

    def _write(self, values: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        changed = {k: v for k, v in values.items() if v != _SCHEMA[k].default}
        doc = {"version": self.VERSION, "values": changed}
        _atomic_write(self.path, json.dumps(doc, indent=2, sort_keys=True) + "\n")

    # ---- generic access -----------------------------------------------------------------

    def keys(self) -> list[str]:
        """Every setting's name, in display order."""
        return list(_SCHEMA)

    def _spec(self, key: str) -> _Spec:
        spec = _SCHEMA.get(key)
        if spec is None:
            raise SettingsError(f"unknown setting {key!r}; known settings: {', '.join(_SCHEMA)}")
        return spec

    def describe(self, key: str) -> str:
        """What ``key`` accepts, e.g. ``"bool: true/false, on/off, yes/no, 1/0 (default
        false)"``."""
        return self._spec(key).describe

    def default(self, key: str) -> Any:
        """The default value of ``key`` (JSON-able)."""
        return _copy(self._spec(key).default)

    def get(self, key: str) -> Any:
        """The current value of ``key`` in its JSON-able form (lists of dicts for hosts)."""
        self._spec(key)
        with self._lock:
            return _copy(self._values[key])

    def set(self, key: str, value: Any) -> None:
        """Validate, persist atomically, then notify subscribers if the value changed.

        Raises:
            SettingsError: the value is not allowed (the message says what is).
            OSError: the file could not be written (the value is then unchanged).
        """
        self._apply({key: self._spec(key).check(key, value)})

    def set_from_text(self, key: str, text: str) -> None:
        """Set ``key`` from its command-line text form (see ``describe``)."""
        spec = self._spec(key)
        self.set(key, spec.from_text(key, text))

    def reset(self, keys: Iterable[str] | None = None) -> None:
        """Restore the defaults of ``keys`` (every key when None); subscribers hear about
        each key that changed. Unknown keys raise SettingsError."""
        names = list(_SCHEMA) if keys is None else list(keys)
        for name in names:
            self._spec(name)  # unknown keys raise SettingsError before anything changes
        self._apply({k: _copy(_SCHEMA[k].default) for k in names})

    def _apply(self, updates: Mapping[str, Any]) -> None:
        with self._lock:
            changed = {k: v for k, v in updates.items() if self._values[k] != v}
            new_values = {**self._values, **updates}
            # Write first: a failed write leaves memory and file in agreement.
            self._write(new_values)
            self._values = new_values
            subscribers = list(self._subscribers)
        for key, value in changed.items():
            for cb in subscribers:
                try:
                    cb(key, _copy(value))
                except Exception:  # one broken listener must not undo or block the change
                    log.exception("settings subscriber %r failed for %s", cb, key)

    def subscribe(self, cb: Callable[[str, Any], None]) -> Callable[[], None]:
        """Call ``cb(key, new_value)`` after each change; returns the unsubscribe function."""
        with self._lock:
            self._subscribers.append(cb)

        def unsubscribe() -> None:
            with self._lock:
                if cb in self._subscribers:
                    self._subscribers.remove(cb)

        return unsubscribe

    def as_dict(self) -> dict[str, Any]:
        """Every value, JSON-able."""
        with self._lock:
            return {k: _copy(v) for k, v in self._values.items()}

    # ---- typed properties ------------------------------------------------------------------

    @property
    def halext_url(self) -> str:
        return str(self._values["halext_url"])

    @property
    def halext_username(self) -> str:
        return str(self._values["halext_username"])

    @property
    def halext_remember(self) -> bool:
        return bool(self._values["halext_remember"])

    @property
    def ollama_hosts(self) -> list[OllamaHost]:
        return [OllamaHost(h["name"], h["url"]) for h in self._values["ollama_hosts"]]

    @property
    def openai_endpoints(self) -> list[OpenAIEndpoint]:
        return [OpenAIEndpoint(e["name"], e["url"]) for e in self._values["openai_endpoints"]]

    @property
    def plain_http_ok(self) -> list[str]:
        """``host:port`` of the servers the user accepted credentials over plain http for."""
        return list(self._values["plain_http_ok"])

    def allow_plain_http(self, hostport: str) -> None:
        """Record the user's consent to send credentials over plain http to ``hostport``."""
        current = self.plain_http_ok
        if hostport.lower() not in current:
            self.set("plain_http_ok", [*current, hostport.lower()])

    @property
    def disable_cloud(self) -> bool:
        return bool(self._values["disable_cloud"])

    @property
    def offline(self) -> bool:
        return bool(self._values["offline"])

    @property
    def default_model(self) -> str:
        return str(self._values["default_model"])

    @property
    def fallback_models(self) -> list[str]:
        return list(self._values["fallback_models"])

    @property
    def theme(self) -> str:
        return str(self._values["theme"])

    @property
    def font_size(self) -> int:
        return int(self._values["font_size"])

    @property
    def usage_retention_days(self) -> int:
        return int(self._values["usage_retention_days"])

    # ---- environment overrides ----------------------------------------------------------------

    def _environ(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    def _env_halext_url(self) -> str | None:
        env_url = self._environ().get("HALEXT_URL", "").strip()
        if not env_url:
            return None
        try:
            return check_url("HALEXT_URL", env_url)
        except SettingsError:
            return None

    def env_value(self, name: str) -> str:
        """The raw value of an environment override (``HALEXT_URL``, ``OLLAMA_HOST``), ""
        when unset; for saying where an address comes from."""
        if name not in ("HALEXT_URL", "OLLAMA_HOST"):
            raise KeyError(name)
        return self._environ().get(name, "").strip()

    def env_ollama_url(self) -> str | None:
        """``OLLAMA_HOST`` as a URL, or None when it is unset or malformed."""
        env_host = self._environ().get("OLLAMA_HOST", "").strip()
        if not env_host:
            return None
        try:
            return parse_ollama_host(env_host)
        except SettingsError:
            return None

    @property
    def env_warning(self) -> str | None:
        """One line per environment override that is ignored because it is malformed
        (``HALEXT_URL``, ``OLLAMA_HOST``): what it holds and what is allowed. None when
        every override is usable."""
        problems = []
        env = self._environ()
        url = env.get("HALEXT_URL", "").strip()
        if url:
            try:
                check_url("HALEXT_URL", url)
            except SettingsError as exc:
                problems.append(f"{exc} — ignored, using the halext_url setting")
        host = env.get("OLLAMA_HOST", "").strip()
        if host:
            try:
                parse_ollama_host(host)
            except SettingsError as exc:
                problems.append(f"{exc} — ignored, using the ollama_hosts setting")
        return "\n".join(problems) if problems else None

    def effective_halext_url(self) -> str:
        """``HALEXT_URL`` from the environment when set and valid, else the setting (no
        trailing /). A malformed value is ignored (``env_warning`` says so)."""
        return self._env_halext_url() or self.halext_url

    def effective_ollama_hosts(self) -> list[OllamaHost]:
        """The Ollama hosts, with a valid ``OLLAMA_HOST`` replacing the first host's URL (or
        adding a host named ``local`` when none is configured); a malformed one is ignored
        (``env_warning`` says so)."""
        hosts = self.ollama_hosts
        url = self.env_ollama_url()
        if url is None:
            return hosts
        if not hosts:
            return [OllamaHost("local", url)]
        return [OllamaHost(hosts[0].name, url), *hosts[1:]]

    @property
    def max_reply_bytes(self) -> int:
        return int(self._values["max_reply_mb"]) * 1024 * 1024


def _copy(value: Any) -> Any:
    """A deep copy of a JSON-able value, so callers cannot mutate the stored one."""
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
