"""Issue 8 end to end through the real Core and CLI: what the switches promise holds against
servers that redirect, re-route and substitute, and the records say what happened.
Everything is proven from the protocol servers' request logs (and, where a connection to
somewhere else is the question, the socket-level egress guard)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from halext_desktop.app.cli import main
from halext_desktop.app.core import OLLAMA_KEY_PREFIX, Core
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import Failed, UsageStatus
from halext_desktop.storage.secrets import SecretStore
from halext_desktop.storage.settings import Settings
from tests.helpers.egress import EgressGuard
from tests.helpers.storage import on_owner
from tests.servers.halext_server import MOCK_SENTENCE, HalextServer
from tests.servers.ollama_server import OllamaServer

T = TypeVar("T")


def on_core(core: Core, coro: Coroutine[Any, Any, T]) -> T:
    async def go() -> T:
        try:
            return await coro
        finally:
            await core.aclose()

    return asyncio.run(go())


def send(core: Core, ref: str, prompt: str = "hello", conversation: int | None = None) -> Any:
    async def go() -> list[Any]:
        cid = conversation or (await core.conversations.create(title="t")).id
        return [e async for e in core.turns.send(cid, prompt, ModelRef.parse(ref))]

    return on_core(core, go())


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- keys bound to their hosts ------------------------------------------------------------------


def test_ollama_api_key_goes_only_to_the_ollama_host_host(
    monkeypatch: pytest.MonkeyPatch, ollama_server: OllamaServer
) -> None:
    with OllamaServer() as studio:
        monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
        monkeypatch.setenv("OLLAMA_API_KEY", "env-key")
        SecretStore().set(OLLAMA_KEY_PREFIX + "studio", "studio-key")
        settings = Settings.load()
        settings.set(
            "ollama_hosts",
            [
                {"name": "local", "url": "http://127.0.0.1:11434"},
                {"name": "studio", "url": studio.url},
            ],
        )
        core = Core(settings=settings)
        try:
            send(core, "ollama/qwen2.5:7b")
            send(core, "ollama@studio/qwen2.5:7b")
            on_core(core, core.list_models())
        finally:
            core.close()
        sent = {r.headers.get("authorization") for r in ollama_server.requests}
        assert sent == {"Bearer env-key"}
        assert {r.headers.get("authorization") for r in studio.requests} == {"Bearer studio-key"}


def test_without_ollama_host_the_environment_key_reaches_no_configured_host(
    monkeypatch: pytest.MonkeyPatch, make_core: Any, ollama_server: OllamaServer
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "env-key")
    core = make_core()  # the host is the test server, not OLLAMA_HOST's default address
    send(core, "ollama/qwen2.5:7b")
    assert ollama_server.requests
    assert {r.headers.get("authorization") for r in ollama_server.requests} == {None}


# ---- plain http: consent in the window, a warning on the command line --------------------------


PLAIN = "http://192.0.2.10:8009/api"  # TEST-NET-1: another machine, plain http


def test_the_window_core_sends_no_password_over_plain_http_without_consent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HALEXT_URL", PLAIN)
    core = Core()
    try:
        with EgressGuard() as guard, pytest.raises(RouteError) as info:
            on_core(core, core.sign_in("dev", "dev123", False))
        assert info.value.kind is ErrorKind.INSECURE
        assert "192.0.2.10:8009 is plain http://" in info.value.message
        assert guard.attempts == []  # not even a connection was opened
        # Consent (asked by Settings → Connections) makes it go: now the connection is tried.
        core.settings.allow_plain_http("192.0.2.10:8009")
        with EgressGuard() as guard, pytest.raises(RouteError) as info:
            on_core(core, core.sign_in("dev", "dev123", False))
        assert info.value.kind is ErrorKind.CONNECTION
        assert guard.connections() == [("192.0.2.10", 8009)]
    finally:
        core.close()


def test_the_cli_warns_when_credentials_would_cross_plain_http(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli(capsys, "config", "set", "halext_url", PLAIN)
    assert code == 0
    assert "warning: your halext password and token would go unencrypted" in err
    assert "192.0.2.10:8009" in err
    code, _, err = cli(capsys, "config", "set", "halext_url", "https://halext.example/api")
    assert code == 0 and "warning" not in err

    monkeypatch.setenv("HALEXT_URL", PLAIN)
    monkeypatch.setattr("sys.stdin", _Stdin("dev123\n"))
    with EgressGuard() as guard:
        code, _, err = cli(capsys, "login", "-u", "dev", "--password-stdin")
    # The command does what it was told (the guard stood in for the network), and said so
    # before it did.
    assert code == 1
    warning = next(line for line in err.splitlines() if "warning" in line)
    assert "unencrypted over plain http:// to 192.0.2.10:8009" in warning
    failure = next(
        line for line in err.splitlines() if "192.0.2.10:8009" in line and line != warning
    )
    assert err.index(warning) < err.index(failure)
    assert guard.connections() == [("192.0.2.10", 8009)]


class _Stdin:
    def __init__(self, text: str) -> None:
        self._lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self._lines.pop(0) if self._lines else ""

    def isatty(self) -> bool:
        return False


# ---- no contact before sign-in ------------------------------------------------------------------


def test_a_halext_server_never_signed_in_to_is_not_contacted_by_background_checks(
    make_core: Any, halext_server: HalextServer, ollama_server: OllamaServer
) -> None:
    core = make_core()
    healths = on_core(core, core.health_all())
    listing = on_core(core, core.list_models())
    assert [h.route_id for h in healths] == ["ollama"]
    assert listing.errors["halext"].kind is ErrorKind.SIGNED_OUT
    assert halext_server.requests == []
    # The user's own Test contacts it (and only that).
    check = on_core(core, core.check_route("halext"))
    assert check.health.ok and "not signed in" in check.health.detail
    assert [r.route for r in halext_server.requests] == ["/health"]
    # Once signed in, the status bar's checks may reach it.
    on_core(core, core.sign_in("dev", "dev123", False))
    halext_server.clear_requests()
    healths = on_core(core, core.health_all())
    assert {h.route_id for h in healths} == {"halext", "ollama"}
    assert [r.route for r in halext_server.requests] == ["/health"]


# ---- honest records -----------------------------------------------------------------------------


def test_placeholder_reply_is_a_failure_and_never_history(
    make_core: Any, halext_server: HalextServer
) -> None:
    core = make_core()
    on_core(core, core.sign_in("dev", "dev123", False))
    db = on_owner(core)
    conv = db.conversations.create(title="t")
    events = send(core, "halext/client:3:nope", "first question", conv.id)
    failed = next(e for e in events if isinstance(e, Failed))
    assert failed.error.kind is ErrorKind.PLACEHOLDER
    assert failed.error.message == (
        "halext had no working model for client:3:nope and sent its placeholder text"
    )
    assert failed.usage.status is UsageStatus.PLACEHOLDER
    assert failed.usage.requested_model == "halext/client:3:nope"
    assert failed.usage.model_identifier == "halext/mock:llama3.1"
    saved = db.conversations.messages(conv.id)[-1]
    assert saved.status == "placeholder" and MOCK_SENTENCE in " ".join(saved.content.split())
    # The next turn does not send the placeholder back as if it were an answer.
    send(core, "halext/client:3:qwen2.5:7b", "second question", conv.id)
    history = halext_server.requests_to("/ai/chat/stream")[-1].json["history"]
    assert history == [{"role": "user", "content": "first question"}]
    rates = {r.model: r for r in db.usage.error_rate_by_model(None)}
    assert (rates["halext/mock:llama3.1"].errors, rates["halext/mock:llama3.1"].total) == (1, 1)


def test_the_mock_header_itself_is_a_placeholder_too(
    make_core: Any, halext_server: HalextServer
) -> None:
    """With no provider at all the server resolves to ``mock:mock`` up front."""
    halext_server.cloud = set()
    core = make_core()
    on_core(core, core.sign_in("dev", "dev123", False))
    events = send(core, "halext/openai:gpt-4o-mini")
    failed = events[-2]
    assert isinstance(failed, Failed) and failed.error.kind is ErrorKind.PLACEHOLDER
    assert failed.answered == ModelRef("halext", None, "mock:mock")


def test_blocked_rows_carry_no_tokens_and_reports_count_them_apart(
    capsys: pytest.CaptureFixture[str], make_core: Any, halext_server: HalextServer
) -> None:
    core = make_core(disable_cloud=True)
    on_core(core, core.sign_in("dev", "dev123", False))
    send(core, "halext/openai:gpt-4o-mini", "a fairly long prompt that would count")
    send(core, "ollama/qwen2.5:7b", "a local one")
    db = on_owner(core)
    db.flush()
    rows = {r.status: r for r in db.usage.recent(10)}
    blocked = rows[UsageStatus.BLOCKED]
    assert (blocked.prompt_tokens, blocked.response_tokens, blocked.total_tokens) == (0, 0, 0)
    assert blocked.latency_ms == 0
    assert db.usage.requests_by_model(None) == [("ollama/qwen2.5:7b", 1)]
    assert db.usage.blocked_by_model(None) == [("halext/openai:gpt-4o-mini", 1)]
    code, out, _ = cli(capsys, "usage", "--since", "all")
    assert code == 0
    requests_part, blocked_part = out.split("Blocked by policy:")
    assert "halext/openai:gpt-4o-mini" not in requests_part
    assert "1 (nothing sent; not counted as requests or tokens)" in blocked_part
    assert "halext/openai:gpt-4o-mini" in blocked_part
    code, out, _ = cli(capsys, "usage", "--since", "all", "--json")
    report = json.loads(out)
    assert report["blocked_by_model"] == [["halext/openai:gpt-4o-mini", 1]]
    assert report["requests_by_model"] == [["ollama/qwen2.5:7b", 1]]


def test_a_401_is_an_authentication_error_of_the_route(
    make_core: Any, halext_server: HalextServer
) -> None:
    core = make_core()
    on_core(core, core.sign_in("dev", "dev123", False))
    halext_server.expire_all_tokens()
    events = send(core, "halext/client:3:qwen2.5:7b")
    failed = next(e for e in events if isinstance(e, Failed))
    assert failed.error.kind is ErrorKind.SIGNED_OUT
    db = on_owner(core)
    db.flush()
    (row,) = db.usage.recent(1)
    assert row.model_identifier == "halext" and row.requested_model == "halext/client:3:qwen2.5:7b"
    assert (row.prompt_tokens, row.response_tokens) == (0, 0)
    # The model has no error to its name.
    assert [e.model for e in db.usage.error_rate_by_model(None)] == ["halext"]


def test_ask_conversation_without_model_uses_the_conversations_model(
    capsys: pytest.CaptureFixture[str],
    make_core: Any,
    monkeypatch: pytest.MonkeyPatch,
    halext_server: HalextServer,
    ollama_server: OllamaServer,
) -> None:
    monkeypatch.setenv("HALEXT_URL", halext_server.url)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    code, _, _ = cli(capsys, "config", "set", "default_model", "ollama/qwen3:4b")
    code, out, _ = cli(capsys, "ask", "--json", "--model", "ollama/qwen2.5:7b", "first")
    assert code == 0
    cid = json.loads(out)["conversation_id"]
    code, out, _ = cli(capsys, "ask", "--json", "--conversation", str(cid), "and then?")
    assert code == 0
    assert json.loads(out)["model_asked"] == "ollama/qwen2.5:7b"
    assert [r.json["model"] for r in ollama_server.requests_to("/api/chat")] == [
        "qwen2.5:7b",
        "qwen2.5:7b",
    ]
    code, out, _ = cli(
        capsys, "ask", "--json", "--conversation", str(cid), "-m", "ollama/qwen3:4b", "x"
    )
    assert json.loads(out)["model_asked"] == "ollama/qwen3:4b"


def test_redirecting_ollama_host_through_the_cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    ollama_server: OllamaServer,
    isolated_home: Path,
) -> None:
    with OllamaServer() as elsewhere:
        ollama_server.redirect_to(elsewhere.url)
        monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
        monkeypatch.setenv("HALEXT_URL", "")
        code, out, err = cli(capsys, "ask", "--model", "ollama/qwen2.5:7b", "secret plan")
        assert code == 1 and out == ""
        (line,) = [x for x in err.splitlines() if x.startswith("halext-desktop:")]
        assert line == (
            f"halext-desktop: 127.0.0.1:{ollama_server.port} answered with a redirect to "
            f"{elsewhere.url}/api/chat; not followed — set the address you mean in Settings"
        )
        assert elsewhere.requests == []
