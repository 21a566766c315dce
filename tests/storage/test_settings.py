"""Settings: schema, validation, text forms, persistence, notifications, env overrides."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from halext_desktop.routing.refs import HOST_NAME_RULE, ModelRef, ModelRefError
from halext_desktop.storage.paths import settings_path
from halext_desktop.storage.settings import (
    DEFAULT_HALEXT_URL,
    OllamaHost,
    OpenAIEndpoint,
    Settings,
    SettingsError,
    parse_ollama_host,
)

ALL_KEYS = [
    "halext_url",
    "halext_username",
    "halext_remember",
    "ollama_hosts",
    "openai_endpoints",
    "plain_http_ok",
    "disable_cloud",
    "offline",
    "default_model",
    "fallback_models",
    "theme",
    "font_size",
    "usage_retention_days",
    "max_reply_mb",
]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "cfg" / "settings.json"


def read_doc(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


# ---- schema and defaults ---------------------------------------------------------------------


def test_keys_and_defaults() -> None:
    s = Settings()
    assert s.keys() == ALL_KEYS
    assert s.halext_url == DEFAULT_HALEXT_URL
    assert s.halext_username == ""
    assert s.halext_remember is False
    assert s.ollama_hosts == [OllamaHost("local", "http://127.0.0.1:11434")]
    assert s.openai_endpoints == []
    assert s.plain_http_ok == []
    assert (s.disable_cloud, s.offline) == (False, False)
    assert s.default_model == ""
    assert s.fallback_models == []
    assert (s.theme, s.font_size, s.usage_retention_days) == ("system", 0, 0)
    assert s.max_reply_bytes == 32 * 1024 * 1024


def test_describe_names_type_and_default_for_every_key() -> None:
    s = Settings()
    for key in ALL_KEYS:
        assert "default" in s.describe(key), key
    assert s.describe("offline").startswith("bool")
    with pytest.raises(SettingsError, match="unknown setting 'nope'.*halext_url"):
        s.describe("nope")


def test_as_dict_is_json_and_get_returns_copies() -> None:
    s = Settings()
    d = s.as_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == set(ALL_KEYS)
    hosts = s.get("ollama_hosts")
    hosts.append({"name": "x", "url": "http://x"})
    assert len(s.ollama_hosts) == 1


def test_plain_http_consents_are_host_port_pairs() -> None:
    s = Settings()
    s.set_from_text("plain_http_ok", "Halext.LAN:80, 192.168.1.20:8000")
    assert s.plain_http_ok == ["halext.lan:80", "192.168.1.20:8000"]
    s.allow_plain_http("192.168.1.20:8000")  # already there: no repeat
    s.allow_plain_http("[fd00::1]:11434")
    assert s.plain_http_ok == ["halext.lan:80", "192.168.1.20:8000", "[fd00::1]:11434"]
    for bad in (["halext.lan"], ["http://h:80"], ["u@h:80"], ["h:99999"], "h:80"):
        with pytest.raises(SettingsError, match="plain_http_ok"):
            s.set("plain_http_ok", bad)
    assert len(s.plain_http_ok) == 3


def test_unknown_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        Settings().set("colour", "red")
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings().get("colour")


# ---- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://org.halext.org/api/", "https://org.halext.org/api"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://h.local:8000/custom/base//", "http://h.local:8000/custom/base"),
        ("", ""),
    ],
)
def test_halext_url_accepts_http_urls_and_strips_slash(given: str, stored: str) -> None:
    s = Settings()
    s.set("halext_url", given)
    assert s.halext_url == stored


@pytest.mark.parametrize("bad", ["ftp://h/api", "file:///etc/passwd", "org.halext.org", "http://"])
def test_halext_url_rejects_non_http(bad: str) -> None:
    s = Settings()
    with pytest.raises(SettingsError, match="halext_url"):
        s.set("halext_url", bad)
    assert s.halext_url == DEFAULT_HALEXT_URL


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("http://[::1/api", "not a valid URL (a broken IPv6 address"),
        ("http://h:99999/api", "its port is out of range: use 1 to 65535"),
        ("http://h:0/api", "port 0"),
        ("http://h:port/api", "not a valid URL"),
        ("http://exa mple.org/api", "contains a space"),
        ("http://h/api\nX-Injected: 1", "line break"),
        ("http://h/api\t", "http://h/api"),  # trailing whitespace is trimmed, not refused
        ("http://h/a?x=1", "query or fragment"),
        ("http://h/a#top", "query or fragment"),
        ("http://h<x>/", "characters a URL cannot have"),
    ],
)
def test_urls_are_checked_at_the_door_with_one_line_naming_the_value(bad: str, says: str) -> None:
    s = Settings()
    if says.startswith("http://"):
        s.set("halext_url", bad)
        assert s.halext_url == says
        return
    with pytest.raises(SettingsError) as info:
        s.set("halext_url", bad)
    message = str(info.value)
    assert message.startswith("halext_url: ") and says in message
    assert "\n" not in message  # one line, even when the value held a line break
    assert s.halext_url == DEFAULT_HALEXT_URL
    with pytest.raises(SettingsError):
        s.set_from_text("ollama_hosts", f"lab={bad}")


def test_a_password_in_a_url_is_refused_and_never_echoed_or_written(path: Path) -> None:
    s = Settings(path)
    with pytest.raises(SettingsError) as info:
        s.set("halext_url", "https://dev:hunter2@org.halext.org/api")
    assert "hunter2" not in str(info.value) and "user name or password" in str(info.value)
    with pytest.raises(SettingsError) as info:
        s.set("ollama_hosts", [{"name": "lab", "url": "http://u:s3cret@[::1/x"}])
    assert "s3cret" not in str(info.value)
    assert not path.exists() or "hunter2" not in path.read_text()


def test_a_settings_file_with_a_broken_url_starts_with_a_warning_not_a_crash(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"version": 1, "values": {"halext_url": "http://[::1/api"}}), encoding="utf-8"
    )
    s = Settings(path)
    assert s.halext_url == DEFAULT_HALEXT_URL
    assert s.load_warning is not None
    assert "halext_url" in s.load_warning and "broken IPv6 address" in s.load_warning


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OLLAMA_HOST": "127.0.0.1:99999"}, "OLLAMA_HOST='127.0.0.1:99999'"),
        ({"OLLAMA_HOST": "http://[::1:11434"}, "broken IPv6 address"),
        ({"OLLAMA_HOST": "bad host"}, "contains a space"),
        ({"HALEXT_URL": "http://[::1/api"}, "HALEXT_URL"),
        ({"HALEXT_URL": "org.halext.org/api"}, "not an http:// or https:// URL"),
    ],
)
def test_a_malformed_environment_value_is_ignored_and_named(env: dict[str, str], says: str) -> None:
    s = Settings(env=env)
    assert s.env_warning is not None and says in s.env_warning and "ignored" in s.env_warning
    assert s.effective_ollama_hosts() == s.ollama_hosts  # the settings stand
    assert s.effective_halext_url() == s.halext_url
    assert Settings(env={"OLLAMA_HOST": "127.0.0.1:5678"}).env_warning is None


@pytest.mark.parametrize("bad", ["127.0.0.1:99999", "[::1", "h:0", "u:p@h:1", "a b"])
def test_parse_ollama_host_refuses_what_it_cannot_connect_to(bad: str) -> None:
    with pytest.raises(SettingsError, match="OLLAMA_HOST"):
        parse_ollama_host(bad)


def test_reply_size_limit_is_a_setting_in_megabytes() -> None:
    s = Settings()
    s.set_from_text("max_reply_mb", "8")
    assert s.max_reply_bytes == 8 * 1024 * 1024
    for bad in ("0", "5000", "-1", "lots", "99999999999999999999999"):
        with pytest.raises(SettingsError, match="max_reply_mb"):
            s.set_from_text("max_reply_mb", bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("ON", True), ("yes", True), ("1", True)]
    + [("false", False), ("off", False), ("No", False), ("0", False)],
)
def test_bool_text_forms(text: str, value: bool) -> None:
    s = Settings()
    s.set("disable_cloud", not value)
    s.set_from_text("disable_cloud", text)
    assert s.disable_cloud is value


def test_bool_rejects_other_text_and_non_bools() -> None:
    s = Settings()
    with pytest.raises(SettingsError, match="offline.*true/false"):
        s.set_from_text("offline", "maybe")
    with pytest.raises(SettingsError, match="offline"):
        s.set("offline", 1)


def test_ollama_hosts_text_forms() -> None:
    s = Settings()
    s.set_from_text("ollama_hosts", "local=http://127.0.0.1:11434/, studio=http://10.0.0.5:11434")
    assert s.ollama_hosts == [
        OllamaHost("local", "http://127.0.0.1:11434"),
        OllamaHost("studio", "http://10.0.0.5:11434"),
    ]
    s.set_from_text("ollama_hosts", '[{"name": "gpu.box", "url": "https://gpu.example:443"}]')
    assert s.ollama_hosts == [OllamaHost("gpu.box", "https://gpu.example:443")]
    s.set("ollama_hosts", [OllamaHost("a", "http://a:1")])
    assert s.get("ollama_hosts") == [{"name": "a", "url": "http://a:1"}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([{"name": "a", "url": "http://a"}, {"name": "a", "url": "http://b"}], "used twice"),
        ([{"name": "-bad", "url": "http://a"}], "bad name"),
        ([{"name": "has space", "url": "http://a"}], "bad name"),
        ([{"name": "a", "url": "tcp://a"}], "http"),
        ([{"name": "a", "url": "http://a", "colour": "red"}], "unknown field"),
        ("local=http://a", "list"),
    ],
)
def test_ollama_hosts_validation(value: Any, message: str) -> None:
    s = Settings()
    with pytest.raises(SettingsError, match=message):
        s.set("ollama_hosts", value)
    assert s.ollama_hosts == [OllamaHost("local", "http://127.0.0.1:11434")]


@pytest.mark.parametrize(
    ("name", "ok"),
    [("studio", True), ("gpu.box_2-a", True), ("a" * 63, True), ("a" * 64, False)]
    + [("-bad", False), ("has space", False), ("x/y", False), ("x@y", False)],
)
def test_a_host_name_settings_accept_is_one_a_model_reference_accepts(name: str, ok: bool) -> None:
    """One rule for both (routing.refs): every saved host can be named in a reference."""
    s = Settings()
    try:
        s.set("ollama_hosts", [{"name": name, "url": "http://a:1"}])
        saved = True
    except SettingsError as exc:
        assert HOST_NAME_RULE in str(exc)
        saved = False
    try:
        ModelRef("ollama", name, "llama3.2")
        parsed = True
    except ModelRefError as exc:
        assert HOST_NAME_RULE in str(exc)
        parsed = False
    assert saved is parsed is ok


def test_ollama_hosts_text_without_equals_is_explained() -> None:
    with pytest.raises(SettingsError, match="name=url"):
        Settings().set_from_text("ollama_hosts", "http://127.0.0.1:11434")


@pytest.mark.parametrize("field", ["key", "api_key", "API_KEY", "token"])
def test_openai_endpoints_refuse_keys_without_echoing_them(field: str) -> None:
    s = Settings()
    secret = "sk-live-" + "q" * 24
    with pytest.raises(SettingsError) as info:
        s.set("openai_endpoints", [{"name": "groq", "url": "https://api.groq.com", field: secret}])
    assert "keyring" in str(info.value)
    assert secret not in str(info.value)
    assert s.openai_endpoints == []


def test_openai_endpoints_store_name_and_url() -> None:
    s = Settings()
    s.set_from_text("openai_endpoints", "groq=https://api.groq.com/openai/v1/")
    assert s.openai_endpoints == [OpenAIEndpoint("groq", "https://api.groq.com/openai/v1")]


def test_default_model_is_a_model_reference() -> None:
    s = Settings()
    s.set_from_text("default_model", "ollama@studio/hf.co/org/m:q4")
    assert s.default_model == "ollama@studio/hf.co/org/m:q4"
    s.set("default_model", "")
    assert s.default_model == ""
    with pytest.raises(SettingsError, match="default_model.*not a model reference"):
        s.set("default_model", "llama3")
    with pytest.raises(SettingsError, match="default_model.*unknown route"):
        s.set("default_model", "bogus/llama3")


def test_fallback_models_text_forms() -> None:
    s = Settings()
    s.set_from_text("fallback_models", "ollama/llama3.1:8b, halext/openai:gpt-4o-mini")
    assert s.fallback_models == ["ollama/llama3.1:8b", "halext/openai:gpt-4o-mini"]
    s.set_from_text("fallback_models", '["ollama@studio/qwen2.5:14b"]')
    assert s.fallback_models == ["ollama@studio/qwen2.5:14b"]
    s.set_from_text("fallback_models", "")
    assert s.fallback_models == []
    with pytest.raises(SettingsError, match="fallback_models"):
        s.set_from_text("fallback_models", "ollama/a, nonsense")
    with pytest.raises(SettingsError, match="invalid JSON"):
        s.set_from_text("fallback_models", '["ollama/a"')


def test_theme_choices() -> None:
    s = Settings()
    s.set_from_text("theme", "Dark")
    assert s.theme == "dark"
    with pytest.raises(SettingsError, match="theme.*system, light, dark"):
        s.set("theme", "purple")


@pytest.mark.parametrize("ok", [0, 8, 14, 32])
def test_font_size_accepts(ok: int) -> None:
    s = Settings()
    s.set("font_size", ok)
    assert s.font_size == ok


@pytest.mark.parametrize("bad", [7, 33, -1, True, 12.5, "12"])
def test_font_size_rejects(bad: Any) -> None:
    with pytest.raises(SettingsError, match="font_size"):
        Settings().set("font_size", bad)


def test_retention_days_range_and_text() -> None:
    s = Settings()
    s.set_from_text("usage_retention_days", "3650")
    assert s.usage_retention_days == 3650
    with pytest.raises(SettingsError, match="usage_retention_days.*0 \\(keep forever\\)"):
        s.set("usage_retention_days", 3651)
    with pytest.raises(SettingsError, match="not a whole number"):
        s.set_from_text("usage_retention_days", "ten")


# ---- persistence --------------------------------------------------------------------------------


def test_set_persists_only_non_defaults_and_reloads(path: Path) -> None:
    s = Settings(path)
    s.set("offline", True)
    s.set("ollama_hosts", [{"name": "studio", "url": "http://10.0.0.5:11434"}])
    doc = read_doc(path)
    assert doc["version"] == Settings.VERSION
    assert doc["values"] == {
        "offline": True,
        "ollama_hosts": [{"name": "studio", "url": "http://10.0.0.5:11434"}],
    }
    again = Settings.load(path)
    assert again.offline is True
    assert again.ollama_hosts == [OllamaHost("studio", "http://10.0.0.5:11434")]
    assert again.load_warning is None
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temp files left


def test_failed_write_keeps_old_file_and_value(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(path)
    s.set("theme", "dark")
    before = path.read_bytes()

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        s.set("theme", "light")
    assert s.theme == "dark"
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]


def test_in_memory_settings_write_nothing(isolated_home: Path) -> None:
    s = Settings()
    s.set("offline", True)
    assert not any(p.is_file() for p in isolated_home.rglob("*"))


def test_load_default_path_is_under_home(isolated_home: Path) -> None:
    s = Settings.load()
    s.set("theme", "light")
    assert settings_path() == isolated_home / "config" / "settings.json"
    assert read_doc(settings_path())["values"] == {"theme": "light"}


def test_corrupt_file_keeps_bad_copy_and_starts_from_defaults(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "values": {"offline": tru', encoding="utf-8")
    s = Settings.load(path)
    assert s.offline is False
    assert s.load_warning is not None and str(path) in s.load_warning
    bad = path.with_name("settings.json.bad")
    assert bad.read_text(encoding="utf-8") == '{"version": 1, "values": {"offline": tru'
    s.set("theme", "dark")  # the next write replaces the broken file with a good one
    assert read_doc(path)["values"] == {"theme": "dark"}


@pytest.mark.parametrize("content", ["[1, 2]", '{"values": {}}', '{"version": "1"}', "\xff"])
def test_other_unusable_files_are_treated_as_corrupt(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content.encode("latin-1"))
    s = Settings.load(path)
    assert s.load_warning is not None
    assert s.as_dict() == Settings().as_dict()


def test_unknown_and_invalid_keys_are_dropped_with_a_warning(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path.parent.mkdir(parents=True)
    doc = {"version": 1, "values": {"theme": "dark", "colour": "red", "font_size": 99}}
    path.write_text(json.dumps(doc), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="halext_desktop.storage.settings"):
        s = Settings.load(path)
    assert s.theme == "dark"
    assert s.font_size == 0
    assert s.load_warning is not None
    assert "colour" in s.load_warning and "font_size" in s.load_warning
    assert "colour" in caplog.text
    assert "colour" not in s.as_dict()


def test_keys_outside_values_are_reported_not_silently_dropped(path: Path) -> None:
    path.parent.mkdir(parents=True)
    doc = {"version": 1, "disable_cloud": True, "values": {"theme": "dark"}}
    path.write_text(json.dumps(doc), encoding="utf-8")
    s = Settings.load(path)
    assert s.theme == "dark" and s.disable_cloud is False
    assert s.load_warning is not None and "disable_cloud" in s.load_warning


def test_future_version_is_refused_not_clobbered(path: Path) -> None:
    path.parent.mkdir(parents=True)
    original = json.dumps({"version": 2, "values": {"theme": "dark", "new_thing": 1}})
    path.write_text(original, encoding="utf-8")
    with pytest.raises(SettingsError, match="newer Halext Desktop.*version 2"):
        Settings.load(path)
    assert path.read_text(encoding="utf-8") == original


# ---- notifications -------------------------------------------------------------------------


def test_subscribe_notifies_changes_only_and_unsubscribes() -> None:
    s = Settings()
    seen: list[tuple[str, Any]] = []
    unsubscribe = s.subscribe(lambda k, v: seen.append((k, v)))
    s.set("offline", True)
    s.set("offline", True)  # unchanged: no notification
    s.set_from_text("fallback_models", "ollama/a")
    assert seen == [("offline", True), ("fallback_models", ["ollama/a"])]
    unsubscribe()
    s.set("offline", False)
    assert len(seen) == 2


def test_raising_callback_does_not_break_the_setter(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = Settings(path)
    seen: list[str] = []

    def broken(key: str, value: Any) -> None:
        raise RuntimeError("listener bug")

    s.subscribe(broken)
    s.subscribe(lambda k, v: seen.append(k))
    with caplog.at_level(logging.ERROR, logger="halext_desktop.storage.settings"):
        s.set("theme", "light")
    assert s.theme == "light"
    assert read_doc(path)["values"] == {"theme": "light"}
    assert seen == ["theme"]
    assert "listener bug" in caplog.text


def test_reset_restores_defaults_and_notifies_changed_keys(path: Path) -> None:
    s = Settings(path)
    s.set("offline", True)
    s.set("font_size", 14)
    seen: list[tuple[str, Any]] = []
    s.subscribe(lambda k, v: seen.append((k, v)))
    s.reset()
    assert sorted(seen) == [("font_size", 0), ("offline", False)]
    assert s.as_dict() == Settings().as_dict()
    assert read_doc(path)["values"] == {}


# ---- environment overrides ------------------------------------------------------------------


def test_effective_halext_url_prefers_env() -> None:
    s = Settings(env={"HALEXT_URL": "http://127.0.0.1:9000/api/"})
    assert s.effective_halext_url() == "http://127.0.0.1:9000/api"
    assert Settings(env={}).effective_halext_url() == DEFAULT_HALEXT_URL


def test_env_default_is_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALEXT_URL", "http://10.1.1.1/api")
    assert Settings().effective_halext_url() == "http://10.1.1.1/api"


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":5678", "http://127.0.0.1:5678"),
        ("1.2.3.4:5678", "http://1.2.3.4:5678"),
        ("example.com", "http://example.com:11434"),
        ("example.com:56789/path/", "http://example.com:56789/path"),
        ("http://h", "http://h"),
        ("https://h:8443/", "https://h:8443"),
        ("[::1]:5678", "http://[::1]:5678"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
    ],
)
def test_parse_ollama_host_like_the_ollama_client(env: str, url: str) -> None:
    assert parse_ollama_host(env) == url


def test_ollama_host_env_replaces_first_hosts_url() -> None:
    s = Settings(env={"OLLAMA_HOST": ":5678"})
    s.set_from_text("ollama_hosts", "main=http://10.0.0.1:11434,studio=http://10.0.0.5:11434")
    assert s.effective_ollama_hosts() == [
        OllamaHost("main", "http://127.0.0.1:5678"),
        OllamaHost("studio", "http://10.0.0.5:11434"),
    ]
    assert s.ollama_hosts[0].url == "http://10.0.0.1:11434"  # the setting itself is untouched
    s.set("ollama_hosts", [])
    assert s.effective_ollama_hosts() == [OllamaHost("local", "http://127.0.0.1:5678")]
    assert Settings(env={}).effective_ollama_hosts() == Settings().ollama_hosts


def test_reset_of_some_keys_keeps_the_others(tmp_path: Path) -> None:
    from halext_desktop.storage.settings import AI_KEYS

    s = Settings(tmp_path / "s.json")
    s.set("disable_cloud", True)
    s.set("fallback_models", ["ollama/a:1"])
    s.set("halext_url", "https://example.org/api")
    heard: list[str] = []
    s.subscribe(lambda key, _v: heard.append(key))
    s.reset(AI_KEYS)
    assert s.disable_cloud is False and s.fallback_models == []
    assert s.halext_url == "https://example.org/api"
    assert sorted(heard) == ["disable_cloud", "fallback_models"]
    with pytest.raises(SettingsError):
        s.reset(["nope"])
