"""``halext-desktop`` subcommands in-process (``app.cli.main``) against the protocol servers,
configured the way a script would: HALEXT_URL / OLLAMA_HOST / HALEXT_USERNAME / HALEXT_PASSWORD."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from halext_desktop.app.cli import main
from halext_desktop.routing.backends import ollama_backend
from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.db import Database
from halext_desktop.storage.logfile import log_path
from halext_desktop.storage.paths import db_path
from halext_desktop.storage.settings import Settings
from halext_desktop.storage.usage import UsageLog
from tests.helpers.memory_keyring import MemoryKeyring
from tests.servers.halext_server import HalextServer, expected_reply
from tests.servers.ollama_server import OllamaServer


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, halext_server: HalextServer, ollama_server: OllamaServer
) -> None:
    monkeypatch.setenv("HALEXT_URL", halext_server.url)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_local_and_says_how_to_reach_halext(env, capsys) -> None:
    code, out, err = run(capsys, "models", "--json")
    assert code == 0
    data = json.loads(out)
    refs = {m["ref"] for m in data["models"]}
    assert "ollama/qwen2.5:7b" in refs and not any(r.startswith("halext/") for r in refs)
    assert "halext" in data["routes"] and "login" in data["routes"]["halext"]


def test_env_credentials_sign_in_for_one_process_and_write_nothing(
    env, capsys, monkeypatch, memory_keyring: MemoryKeyring, isolated_home: Path
) -> None:
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "halext/client:3:qwen2.5:7b" in out and "self-hosted" in out
    assert memory_keyring.store == {}
    settings_file = isolated_home / "config" / "settings.json"
    assert not settings_file.exists() or "dev123" not in settings_file.read_text()


def test_ask_streams_names_the_model_and_logs_one_row(env, capsys, ollama_server) -> None:
    code, out, err = run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "why", "is", "the", "sky")
    assert code == 0
    expected = ollama_server.expected_reply(
        "qwen2.5:7b", [{"role": "user", "content": "why is the sky"}]
    )
    assert out == expected + "\n"
    assert "AI • qwen2.5:7b · local" in err
    code, out, _ = run(capsys, "usage", "--since", "24h", "--json")
    report = json.loads(out)
    assert report["requests_by_model"] == [["ollama/qwen2.5:7b", 1]]


def test_ask_json_reports_asked_answered_and_the_fallback(
    env, capsys, monkeypatch, halext_server
) -> None:
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")
    code, out, err = run(capsys, "ask", "--json", "--model", "halext/ollama:nope", "hi")
    # The server had no working model and sent its placeholder: no answer, a failure.
    assert code == 1
    obj = json.loads(out)
    assert obj["model_asked"] == "halext/ollama:nope"
    assert obj["model_answered"] == "halext/mock:llama3.1"
    assert obj["route"] == "halext" and obj["usage"]["status"] == "placeholder"
    assert obj["usage"]["requested_model"] == "halext/ollama:nope"
    assert obj["usage"]["model_identifier"] == "halext/mock:llama3.1"
    assert any("mock:llama3.1" in n for n in obj["notes"])
    assert "halext had no working model for ollama:nope" in obj["error"]
    assert "halext had no working model for ollama:nope and sent its placeholder text" in err
    # The turn is stored and can be continued; the placeholder is no history.
    code, out, _ = run(
        capsys, "ask", "--json", "--model", "halext/ollama:llama3.1:8b",
        "--conversation", str(obj["conversation_id"]), "again",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["text"] == expected_reply("ollama:llama3.1:8b", "again")
    body = halext_server.requests_to("/ai/chat/stream")[-1].json
    assert body["history"] == [{"role": "user", "content": "hi"}]


def test_ask_failure_is_one_line_and_nonzero(env, capsys, ollama_server) -> None:
    ollama_server.stop()
    code, out, err = run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "hello")
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("halext-desktop:")]
    assert len(lines) == 1 and "Connection refused" in lines[0]


def test_internal_error_names_the_log_file(env, capsys, monkeypatch) -> None:
    def surprise(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")  # nothing the backend knows how to translate

    # Where the Ollama route reads the first line of the reply.
    monkeypatch.setattr(ollama_backend, "plain_text", surprise)
    code, out, err = run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "hello")
    assert code == 1 and out == ""
    (line,) = [line for line in err.splitlines() if line.startswith("halext-desktop:")]
    assert "Unexpected error talking to Ollama" in line and "KeyError" in line
    assert line.endswith(f"please report it; details are in the log file {log_path()}")
    # ... and the file has what the line leaves out.
    assert "KeyError: 'boom'" in log_path().read_text(encoding="utf-8")


def test_disable_cloud_refuses_before_sending(env, capsys, monkeypatch, halext_server) -> None:
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")
    assert run(capsys, "config", "set", "disable_cloud", "on")[0] == 0
    code, _, err = run(capsys, "ask", "--model", "halext/openai:gpt-4o-mini", "secret")
    assert code == 1 and "cloud providers are disabled" in err
    assert halext_server.requests_to("/ai/chat/stream") == []
    code, out, _ = run(capsys, "models", "--json")
    rows = {m["ref"]: m for m in json.loads(out)["models"]}
    assert rows["halext/openai:gpt-4o-mini"]["available"] is False
    assert rows["halext/client:3:qwen2.5:7b"]["available"] is True


def test_login_keeps_token_in_keyring_and_password_only_when_asked(
    env, capsys, monkeypatch, memory_keyring: MemoryKeyring
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("dev123\n"))
    code, out, _ = run(capsys, "login", "--username", "dev", "--password-stdin")
    assert code == 0 and "as dev" in out
    secrets = list(memory_keyring.store.values())
    assert len(secrets) == 1 and secrets[0].count(".") == 2  # just the JWT
    monkeypatch.setattr("sys.stdin", io.StringIO("dev123\n"))
    run(capsys, "login", "--username", "dev", "--password-stdin", "--remember")
    assert "dev123" in memory_keyring.store.values()
    code, out, _ = run(capsys, "models")
    assert "halext/" in out
    assert run(capsys, "logout")[0] == 0
    assert memory_keyring.store == {}


def test_wrong_password_is_one_clear_line(env, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("nope\n"))
    code, _, err = run(capsys, "login", "--username", "dev", "--password-stdin")
    assert code == 1 and "Incorrect username or password" in err


def test_config_validates_and_names_what_is_allowed(capsys) -> None:
    assert run(capsys, "config", "set", "offline", "yes")[0] == 0
    assert Settings.load().offline is True
    code, out, _ = run(capsys, "config", "get", "offline")
    assert (code, out.strip()) == (0, "true")
    code, _, err = run(capsys, "config", "set", "offline", "maybe")
    assert code == 2 and "true/false" in err
    code, _, err = run(capsys, "config", "set", "colour", "red")
    assert code == 2 and "disable_cloud" in err and "default_model" in err
    code, _, err = run(capsys, "config", "set", "default_model", "llama3")
    assert code == 2 and "ollama/" in err
    assert (
        run(
            capsys,
            "config",
            "set",
            "ollama_hosts",
            "local=http://127.0.0.1:1,lab=http://10.0.0.5:11434",
        )[0]
        == 0
    )  # noqa: E501
    assert [h.name for h in Settings.load().ollama_hosts] == ["local", "lab"]


def test_offline_ask_never_touches_halext(env, capsys, halext_server) -> None:
    run(capsys, "config", "set", "offline", "true")
    run(capsys, "models")
    code, _, err = run(capsys, "ask", "--model", "halext/ollama:llama3.1:8b", "x")
    assert code == 1 and "offline" in err
    assert run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "x")[0] == 0
    assert halext_server.requests == []


# ---- faults found in QA -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _cli_process(*argv: str, env_extra: dict[str, str]) -> subprocess.Popen[str]:
    env = {**os.environ, **env_extra, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "halext_desktop.app.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_during_ask_exits_130_keeps_partial_and_logs_cancelled(
    env, ollama_server: OllamaServer, isolated_home: Path
) -> None:
    ollama_server.set_token_delay(0.2)
    p = _cli_process("ask", "--model", "ollama/qwen2.5:7b", "tell me more", env_extra={})
    try:
        assert p.stdout is not None
        # The reply has started streaming (raw read: communicate() bypasses the text buffer).
        first = os.read(p.stdout.fileno(), 4).decode()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "partial reply is kept" in err
    ollama_server.wait_closed_early()  # the server saw the connection close
    with Database() as db:
        (conv,) = ConversationStore(db).list()
        reply = ConversationStore(db).messages(conv.id)[-1]
        assert reply.status == "stopped" and reply.content.startswith(first)
        assert (first + out).startswith(reply.content)
        (row,) = UsageLog(db).recent(10)
        assert row.status.value == "cancelled"


def test_ctrl_c_before_any_reply_is_one_line_and_130(env, ollama_server: OllamaServer) -> None:
    ollama_server.delay_first_byte(20)
    p = _cli_process("models", env_extra={})
    try:
        assert ollama_server.wait_for(lambda: bool(ollama_server.requests_to("/api/tags")), 20)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130
    assert "Traceback" not in err and "halext-desktop: interrupted" in err


def test_a_database_locked_by_another_program_delays_the_rows_never_the_reply(
    env, capsys, ollama_server
) -> None:
    """Another program holds the write lock for the whole command: the reply still streams
    at once, and the message, the reply and the usage row are kept in the spool file (one
    line says so) and written at the next start — none is dropped."""
    assert run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "first")[0] == 0
    holder = sqlite3.connect(db_path(), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another program's write transaction
        code, out, err = run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "second")
    finally:
        holder.close()
    expected = ollama_server.expected_reply("qwen2.5:7b", [{"role": "user", "content": "second"}])
    assert code == 0 and out == expected + "\n"
    lines = [line for line in err.splitlines() if line.startswith("halext-desktop:")]
    assert len(lines) == 1, err
    assert "locked by another program" in lines[0] and "spool" in lines[0]
    assert "Traceback" not in err and "waited" not in err
    spooled = list((db_path().parent / "spool").glob("*.json"))
    assert len(spooled) == 1 and spooled[0].stat().st_mode & 0o777 == 0o600
    with Database() as db:  # nothing of the second turn is in the file yet
        assert len(ConversationStore(db).list()) == 1
    # The next command that opens the database writes them.
    assert run(capsys, "usage", "--json")[0] == 0
    assert list((db_path().parent / "spool").glob("*.json")) == []
    with Database() as db:
        store = ConversationStore(db)
        second = next(c for c in store.list() if c.title == "second")
        user, reply = store.messages(second.id)
        assert (user.content, reply.content, reply.status) == ("second", expected, "ok")
        rows = UsageLog(db).recent(10)
        assert len(rows) == 2 and {r.status.value for r in rows} == {"ok"}
        assert rows[0].conversation_id == second.id


def test_no_keyring_says_how_to_sign_in_and_env_credentials_work(
    env, capsys, monkeypatch, halext_server
) -> None:
    keyring.set_keyring(fail.Keyring())  # the conftest fixture restores the previous one
    code, _, err = run(capsys, "ask", "--model", "halext/ollama:llama3.1:8b", "hi")
    assert code == 1
    assert "no system keyring" in err and "HALEXT_USERNAME and HALEXT_PASSWORD" in err
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")
    code, out, err = run(capsys, "ask", "--model", "halext/ollama:llama3.1:8b", "hi")
    assert code == 0 and out == expected_reply("ollama:llama3.1:8b", "hi") + "\n"
    monkeypatch.setenv("HALEXT_PASSWORD", "wrong-pw")
    code, _, err = run(capsys, "ask", "--model", "halext/ollama:llama3.1:8b", "hi")
    assert code == 1 and "HALEXT_PASSWORD" in err and "saved password" not in err
    assert "wrong-pw" not in err


def test_undecodable_prompt_is_refused_before_anything_is_stored(env, capsys) -> None:
    code, _, err = run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "bad \udcff byte")
    assert code == 2 and "not valid UTF-8" in err
    with Database() as db:
        assert ConversationStore(db).list() == []


def test_unwritable_settings_file_is_one_line(capsys, isolated_home: Path) -> None:
    (isolated_home / "config" / "settings.json").mkdir(parents=True)
    code, _, err = run(capsys, "config", "set", "theme", "dark")
    assert code == 1 and "could not save the settings" in err and "Traceback" not in err


def test_a_bad_model_reference_is_a_usage_error(capsys) -> None:
    code, out, err = run(capsys, "ask", "--model", "llama3", "hi")
    assert code == 2 and out == ""
    assert "not a model reference" in err and "ollama/" in err


def test_no_fallback_fails_instead_of_asking_the_next_model(env, capsys, ollama_server) -> None:
    assert run(capsys, "config", "set", "fallback_models", "ollama/qwen3:4b")[0] == 0
    code, out, err = run(capsys, "ask", "--no-fallback", "--model", "ollama/ghost:1b", "hi")
    assert code == 1 and "ghost:1b" in err
    assert [r.json["model"] for r in ollama_server.requests_to("/api/chat")] == ["ghost:1b"]
    code, out, err = run(capsys, "ask", "--model", "ollama/ghost:1b", "hi")
    assert code == 0 and "Fallback" in err and "AI • qwen3:4b · local" in err


def test_the_debug_log_is_private_and_holds_no_secret_and_no_message_text(
    env, capsys, monkeypatch, halext_server: HalextServer
) -> None:
    monkeypatch.setenv("HALEXT_USERNAME", "dev")
    monkeypatch.setenv("HALEXT_PASSWORD", "dev123")
    prompt = "my-secret-plan-for-tuesday"
    old_umask = os.umask(0o022)  # a permissive umask must not make the log readable by others
    try:
        code, _, _ = run(
            capsys, "--debug", "ask", "--model", "halext/client:3:qwen2.5:7b", "--json", prompt
        )
    finally:
        os.umask(old_umask)
    assert code == 0
    log = log_path()
    text = log.read_text(encoding="utf-8")
    assert "/ai/chat/stream" in text  # the debug log did record the request...
    (chat,) = halext_server.requests_to("/ai/chat/stream")
    token = chat.headers["authorization"].split()[1]
    for secret in ("dev123", token, prompt):  # ...but not the password, token or message
        assert secret not in text
    assert log.stat().st_mode & 0o777 == 0o600
    assert log.parent.stat().st_mode & 0o777 == 0o700


def test_what_a_desktop_passes_opens_the_window_with_the_files(
    monkeypatch, capsys, tmp_path: Path
) -> None:
    """``Exec=halext-desktop %U``: files and file:// URLs with no command open the window
    (not an argparse error); a mistyped command is still an error."""
    import halext_desktop.app.gui as gui

    opened: list[list[str]] = []

    log_setups: list[Callable[[], None] | None] = []

    def fake_gui_main(*, files: list[str], log_setup: Callable[[], None] | None = None) -> int:
        opened.append(files)
        log_setups.append(log_setup)
        return 0

    monkeypatch.setattr(gui, "main", fake_gui_main)
    notes = tmp_path / "my notes.txt"
    notes.write_text("hello")
    url = notes.as_uri()
    assert main([url, str(notes)]) == 0
    assert opened == [[url, str(notes)]]
    assert main(["gui", str(notes)]) == 0 and opened[-1] == [str(notes)]
    # Plain `gui`: the window sets logging up itself once its outline has painted, with what
    # it is given (the first call went through the full parser, which set it up before).
    assert log_setups[0] is None
    setup = log_setups[-1]
    assert setup is not None
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)  # what it must replace
    setup()
    files = [getattr(h, "baseFilename", None) for h in logging.getLogger().handlers]
    assert str(log_path()) in files
    with pytest.raises(SystemExit) as exc:
        main(["modles"])
    assert exc.value.code == 2
    assert "invalid choice: 'modles'" in capsys.readouterr().err


# ---- bad input at the door, words that match what happened --------------------------------


def test_config_reset_of_one_key_resets_that_key_only(capsys) -> None:
    assert run(capsys, "config", "set", "theme", "dark")[0] == 0
    assert run(capsys, "config", "set", "offline", "on")[0] == 0
    code, out, _ = run(capsys, "config", "reset", "theme")
    assert code == 0 and out.strip() == 'theme = "system" (the default)'
    settings = Settings.load()
    assert settings.theme == "system" and settings.offline is True
    code, _, err = run(capsys, "config", "reset", "colour")
    assert code == 2 and "unknown setting 'colour'" in err
    assert Settings.load().offline is True


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("http://[::1/api", "broken IPv6 address"),
        ("http://127.0.0.1:0/api", "port 0"),
        ("http://dev:hunter2@org.halext.org/api", "user name or password"),
        ("http://exa mple.org/api", "contains a space"),
    ],
)
def test_config_set_of_a_bad_url_is_one_line_and_writes_nothing(
    capsys, isolated_home: Path, value: str, says: str
) -> None:
    code, out, err = run(capsys, "config", "set", "halext_url", value)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("halext-desktop: halext_url: ") and says in line
    assert "hunter2" not in err
    settings_file = isolated_home / "config" / "settings.json"
    assert not settings_file.exists() or "hunter2" not in settings_file.read_text()


@pytest.mark.parametrize("value", ["127.0.0.1:99999", "http://[::1:11434"])
def test_a_malformed_ollama_host_is_named_once_and_commands_still_work(
    capsys, monkeypatch, ollama_server: OllamaServer, value: str
) -> None:
    Settings.load().set("ollama_hosts", [{"name": "local", "url": ollama_server.url}])
    Settings.load().set("halext_url", "")
    monkeypatch.setenv("OLLAMA_HOST", value)
    code, out, err = run(capsys, "models")
    assert code == 0 and "ollama/qwen2.5:7b" in out
    lines = [line for line in err.splitlines() if line.startswith("halext-desktop:")]
    assert len(lines) == 1 and "OLLAMA_HOST" in lines[0] and "ignored" in lines[0]
    assert "Traceback" not in err
    # The import that used to crash on it happens in a fresh interpreter too.
    p = _cli_process("config", "get", "theme", env_extra={"OLLAMA_HOST": value})
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and out.strip() == "system", err


@pytest.mark.parametrize("value", ["99999999999999999999999", "-3", "0", "abc"])
def test_a_conversation_id_sqlite_cannot_hold_is_a_usage_error(capsys, value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ask", "-c", value, "hi"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "is not a conversation id" in err and "Traceback" not in err


def test_escape_sequences_from_a_server_never_reach_the_terminal(
    env, capsys, ollama_server: OllamaServer
) -> None:
    evil = "qwen\x1b]0;pwned\x07\x1b[31m:7b"
    ollama_server.set_models([evil])
    code, out, err = run(capsys, "models")
    assert code == 0
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "qwen\\x1b]0;pwned\\x07\\x1b[31m:7b" in out


def test_models_fails_when_every_route_failed(env, capsys, ollama_server: OllamaServer) -> None:
    ollama_server.stop()
    code, out, err = run(capsys, "models")
    assert code == 1 and out == ""
    assert "Connection refused" in err and "No models available" in err
    code, out, _ = run(capsys, "models", "--json")
    assert code == 1 and json.loads(out)["models"] == []


def test_no_model_names_the_real_cause_when_ollama_is_down(
    env, capsys, ollama_server: OllamaServer
) -> None:
    ollama_server.stop()
    code, _, err = run(capsys, "ask", "hello")
    assert code == 1
    (line,) = [line for line in err.splitlines() if line.startswith("halext-desktop:")]
    assert "no route could list its models" in line and "Connection refused" in line
    assert "No model chosen" not in line


def test_a_damaged_database_is_one_line_and_nothing_is_sent(
    env, capsys, ollama_server: OllamaServer
) -> None:
    from tests.storage.test_owner import corrupt_fts

    assert run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "before")[0] == 0
    with Database() as db:
        db.backup("daily", verify=True)
    corrupt_fts(db_path())
    sent_before = len(ollama_server.requests_to("/api/chat"))
    code, out, err = run(capsys, "ask", "--model", "ollama/qwen2.5:7b", "my private words")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "is damaged" in lines[0] and "newest good copy is" in lines[0]
    assert "not sent" in lines[0] and "my private words" not in lines[0]
    assert len(ollama_server.requests_to("/api/chat")) == sent_before


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_during_ask_saves_the_partial_reply_as_interrupted(
    env, ollama_server: OllamaServer, signame: str
) -> None:
    ollama_server.set_token_delay(0.2)
    p = _cli_process("ask", "--model", "ollama/qwen2.5:7b", "tell me more", env_extra={})
    try:
        assert p.stdout is not None
        first = os.read(p.stdout.fileno(), 4).decode()
        p.send_signal(getattr(signal, signame))
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 128 + getattr(signal, signame), err
    assert "Traceback" not in err
    assert f"stopped by {signame}; the partial reply is kept in conversation" in err
    with Database() as db:
        (conv,) = ConversationStore(db).list()
        user, reply = ConversationStore(db).messages(conv.id)
        assert user.content == "tell me more"
        assert reply.status == "interrupted" and reply.content.startswith(first)
        (row,) = UsageLog(db).recent(10)
        assert row.status.value == "interrupted"
