"""The egress test: ``ask``, ``models`` and the window, offline and with cloud providers
disabled, against servers that redirect, re-route and substitute, with every outgoing
connection of the process recorded by a socket-level guard (tests/helpers/egress.py).

Nothing may go anywhere but the allowed hosts — and the same runs with a deliberately broken
policy (offline rule, redirect rule, listing gate, key binding, the no-contact-before-sign-in
rule) must fail the very same check, or the check proves nothing.

The servers of a scenario (``Hostile``):
    halext     signed in; re-routes ids it cannot resolve to OpenAI, answers with its mock
               placeholder, and can substitute a cloud model in its header
    good       an Ollama host that behaves
    proxy      an Ollama host that answers every request with 307 to ``elsewhere``
    compat     an OpenAI-compatible endpoint (Ollama's /v1) that also redirects to ``elsewhere``
    elsewhere  where the redirects point: another host, never to be contacted
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ollama
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from halext_desktop.app.cli import main
from halext_desktop.app.core import Core
from halext_desktop.app.gui import build_window
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.routing.backends import http_guard, ollama_backend
from halext_desktop.routing.backends.halext import HalextBackend, token_secret_name
from halext_desktop.routing.policy import Policy
from halext_desktop.routing.router import Router
from halext_desktop.routing.types import UsageStatus
from halext_desktop.storage.secrets import SecretStore
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.main_window import MainWindow
from tests.helpers.egress import EgressGuard, read_log, subprocess_env
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer

WAIT = 10_000
ENV_KEY = "env-secret-key"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Hostile:
    halext: HalextServer
    good: OllamaServer
    proxy: OllamaServer
    compat: OllamaServer
    elsewhere: OllamaServer

    def servers(self) -> list[HalextServer | OllamaServer]:
        return [self.halext, self.good, self.proxy, self.compat, self.elsewhere]

    def allowed(self, *, offline: bool) -> list[tuple[str, int | None]]:
        """Offline: the Ollama hosts only. Cloud disabled: every configured route (all on
        this machine), never ``elsewhere``."""
        ports = [self.good.port, self.proxy.port]
        if not offline:
            ports += [self.halext.port, self.compat.port]
        return [("127.0.0.1", p) for p in ports]


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hostile]:
    with ExitStack() as stack:
        h = Hostile(
            halext=stack.enter_context(HalextServer()),
            good=stack.enter_context(OllamaServer()),
            proxy=stack.enter_context(OllamaServer()),
            compat=stack.enter_context(OllamaServer()),
            elsewhere=stack.enter_context(OllamaServer()),
        )
        h.proxy.redirect_to(h.elsewhere.url)
        h.compat.redirect_to(h.elsewhere.url, 302)
        # Signed in to halext: offline must keep away from it even so.
        SecretStore().set(token_secret_name(h.halext.url), h.halext.issue_token("dev"))
        # The ollama library would send this to every host it talks to.
        monkeypatch.setenv("OLLAMA_API_KEY", ENV_KEY)
        yield h
        for server in h.servers():
            assert server.errors == []


def configure(h: Hostile, *, offline: bool, disable_cloud: bool) -> Settings:
    settings = Settings.load()
    settings.set("halext_url", h.halext.url)
    settings.set(
        "ollama_hosts",
        [{"name": "local", "url": h.good.url}, {"name": "proxy", "url": h.proxy.url}],
    )
    settings.set("openai_endpoints", [{"name": "lab", "url": f"{h.compat.url}/v1"}])
    settings.set("offline", offline)
    settings.set("disable_cloud", disable_cloud)
    return settings


def listed_self_hosted(h: HalextServer) -> set[str]:
    """What the halext server lists as non-cloud for the user (its own bookkeeping)."""
    user = h._users["dev"]
    return {e["id"] for e in h._model_entries(user) if e["source"] not in ("openai", "gemini")}


def check_no_leak(h: Hostile, guard: EgressGuard, *, offline: bool) -> None:
    """Every promise of the switches, from the guard and the servers' own logs."""
    guard.assert_clean()
    assert h.elsewhere.requests == [], "a redirect was followed to another host"
    if offline:
        assert h.halext.requests == [], "offline, yet halext was contacted"
        assert h.compat.requests == [], "offline, yet an OpenAI-compatible endpoint was contacted"
    listed = listed_self_hosted(h.halext)
    for chat in h.halext.requests_to("/ai/chat/stream"):
        model = chat.json["model"]
        assert model in listed, f"halext was sent {model!r}, which it does not list as self-hosted"
    for server in h.servers():
        for headers in server_headers(server):
            assert ENV_KEY not in headers.get("authorization", ""), (
                "OLLAMA_API_KEY went to a host that is not OLLAMA_HOST"
            )


def server_headers(server: HalextServer | OllamaServer) -> list[dict[str, str]]:
    return [r.headers for r in server.requests]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_cli_offline(h: Hostile, capsys: pytest.CaptureFixture[str]) -> list[int]:
    configure(h, offline=True, disable_cloud=False)
    codes = []
    for argv in (
        ("models", "--json"),
        ("ask", "-m", "ollama/qwen2.5:7b", "local question"),
        ("ask", "-m", "ollama@proxy/qwen2.5:7b", "redirected question"),
        ("ask", "-m", "halext/client:3:qwen2.5:7b", "self-hosted question"),
        ("ask", "-m", "halext/openai:gpt-4o-mini", "cloud question"),
        ("ask", "-m", "openai@lab/qwen2.5:7b", "endpoint question"),
    ):
        codes.append(cli(capsys, *argv)[0])
    return codes


def run_cli_cloud_disabled(h: Hostile, capsys: pytest.CaptureFixture[str]) -> list[int]:
    configure(h, offline=False, disable_cloud=True)
    codes = [cli(capsys, "models", "--json")[0]]
    for model in (
        "halext/client:1:qwen2.5:7b",  # a node that is gone: the server would use OpenAI
        "halext/openwebui:llama3",  # no OpenWebUI on that server: the same
        "halext/openai:gpt-4o-mini",  # cloud, refused by the id alone
        "halext/ollama:nope",  # listed nowhere either
        "halext/client:3:qwen2.5:7b",  # listed, self-hosted: goes
        "halext/ollama:llama3.1:8b",  # listed, but the server substitutes a cloud model
        "halext/ollama:qwen2.5:7b",  # listed, but it fails: the server sends its placeholder
        "ollama@proxy/qwen2.5:7b",  # redirects
        "openai@lab/qwen2.5:7b",  # redirects
        "ollama/qwen2.5:7b",  # fine
    ):
        if model == "halext/ollama:llama3.1:8b":
            h.halext.stream_script(["from ", "the ", "cloud"], model="openai:gpt-4o-mini")
        if model == "halext/ollama:qwen2.5:7b":
            h.halext.fail_provider("ollama:qwen2.5:7b")
        codes.append(cli(capsys, "ask", "-m", model, f"question for {model}")[0])
    return codes


# ---- the guard itself ---------------------------------------------------------------------------


def test_the_guard_sees_and_stops_every_client_library(hostile: Hostile) -> None:
    """httpx (halext, Ollama), httpx2 (openai), the stdlib: all are seen; only the allowed
    host:port gets through, another port of the same address does not; a name lookup is
    traffic too."""
    import asyncio
    import socket
    import urllib.request

    import httpx
    import httpx2

    good, other = hostile.good, hostile.elsewhere

    async def clients() -> list[str]:
        out = []
        for client in (httpx.AsyncClient(), httpx2.AsyncClient()):
            async with client:
                out.append((await client.get(f"{good.url}/api/version")).json()["version"])
                try:
                    await client.get(f"{other.url}/api/version")
                    out.append("other reached")
                except (httpx.ConnectError, httpx2.ConnectError):
                    out.append("other refused")
        return out

    with EgressGuard([("127.0.0.1", good.port)]) as guard:
        results = asyncio.run(clients())
        with urllib.request.urlopen(f"{good.url}/api/version", timeout=5) as resp:
            assert resp.status == 200
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", other.port), timeout=5)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("halext.example", 443)
    assert results == [good.version, "other refused", good.version, "other refused"]
    assert other.requests == []
    assert [str(a) for a in guard.violations] == [
        f"connect 127.0.0.1:{other.port} (REFUSED, thread MainThread)",
        f"connect 127.0.0.1:{other.port} (REFUSED, thread MainThread)",
        f"connect 127.0.0.1:{other.port} (REFUSED, thread MainThread)",
        "lookup halext.example:443 (REFUSED, thread MainThread)",
    ]
    # Restored on exit: the next connection is not watched any more.
    with socket.create_connection(("127.0.0.1", other.port), timeout=5):
        pass
    assert len(guard.attempts) == 7


# ---- the CLI ------------------------------------------------------------------------------------


def test_cli_offline_reaches_only_the_ollama_hosts(
    hostile: Hostile, capsys: pytest.CaptureFixture[str]
) -> None:
    with EgressGuard(hostile.allowed(offline=True)) as guard:
        codes = run_cli_offline(hostile, capsys)
    assert codes == [0, 0, 1, 1, 1, 1]
    check_no_leak(hostile, guard, offline=True)
    # The guard saw real traffic: the good host answered, the proxy was asked once.
    assert ("127.0.0.1", hostile.good.port) in guard.connections()
    assert [r.status for r in hostile.proxy.requests_to("/api/chat")] == [307]


def test_cli_cloud_disabled_sends_only_listed_self_hosted_ids(
    hostile: Hostile, capsys: pytest.CaptureFixture[str]
) -> None:
    with EgressGuard(hostile.allowed(offline=False)) as guard:
        codes = run_cli_cloud_disabled(hostile, capsys)
    assert codes == [0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0]
    check_no_leak(hostile, guard, offline=False)
    sent = [r.json["model"] for r in hostile.halext.requests_to("/ai/chat/stream")]
    assert sent == ["client:3:qwen2.5:7b", "ollama:llama3.1:8b", "ollama:qwen2.5:7b"]
    # The records: refusals sent nothing and cost no tokens; the substituted reply is
    # blocked (its prompt did go); the placeholder is no success.
    core = Core(settings=Settings.load())
    try:
        owner = core.storage.owner
        rows = {r.requested_model: r for r in owner.call(owner.usage.recent, None)}
    finally:
        core.close()
    for refused in ("client:1:qwen2.5:7b", "openwebui:llama3", "openai:gpt-4o-mini", "ollama:nope"):
        row = rows[f"halext/{refused}"]
        assert row.status is UsageStatus.BLOCKED and row.total_tokens == 0, refused
    substituted = rows["halext/ollama:llama3.1:8b"]
    assert substituted.status is UsageStatus.BLOCKED
    assert substituted.model_identifier == "halext/openai:gpt-4o-mini"
    assert substituted.response_tokens == 0 and substituted.prompt_tokens > 0
    placeholder = rows["halext/ollama:qwen2.5:7b"]
    assert placeholder.status is UsageStatus.PLACEHOLDER
    assert placeholder.model_identifier == "halext/mock:llama3.1"


# ---- the window ---------------------------------------------------------------------------------


def run_window(
    qtbot: QtBot, h: Hostile, *, offline: bool, disable_cloud: bool, sign_in: bool = True
) -> None:
    """Open the window, let it list and check the routes, send to a host that redirects and
    to one that works, then close it."""
    settings = configure(h, offline=offline, disable_cloud=disable_cloud)
    if not sign_in:
        SecretStore().delete(token_secret_name(h.halext.url))
    core = Core(settings=settings)
    lt = LoopThread().start()
    window = build_window(core, lt)
    assert isinstance(window, MainWindow)
    qtbot.addWidget(window)
    try:
        window.show()
        qtbot.waitUntil(lambda: window._listing is not None, timeout=WAIT)
        healths: list[Any] = []
        window._bridge.call(core.health_all(), healths.append, owner=window)
        qtbot.waitUntil(lambda: bool(healths), timeout=WAIT)
        for ref in ("ollama@proxy/qwen2.5:7b", "ollama/qwen2.5:7b"):
            window.picker.set_current(ref)
            window.composer.editor.setFocus()
            qtbot.keyClicks(window.composer.editor, f"to {ref}")
            with qtbot.waitSignal(window.controller.sig_streaming, timeout=WAIT):
                qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
            qtbot.waitUntil(lambda: not window.controller.streaming, timeout=WAIT)
        assert "redirect" in (window.chat_view.model.item(1).error or "")
    finally:
        window.close()
        lt.run(core.aclose(), timeout=5)
        lt.stop()
        core.close()


@pytest.mark.parametrize(("offline", "disable_cloud"), [(True, False), (False, True)])
def test_window_reaches_only_the_allowed_hosts(
    qtbot: QtBot, hostile: Hostile, offline: bool, disable_cloud: bool
) -> None:
    with EgressGuard(hostile.allowed(offline=offline)) as guard:
        run_window(qtbot, hostile, offline=offline, disable_cloud=disable_cloud)
    check_no_leak(hostile, guard, offline=offline)
    assert ("127.0.0.1", hostile.good.port) in guard.connections()


def test_window_never_contacts_a_halext_it_was_not_signed_in_to(
    qtbot: QtBot, hostile: Hostile
) -> None:
    """A fresh install that only wants local models: no health check, no model list."""
    allowed = [
        ("127.0.0.1", p) for p in (hostile.good.port, hostile.proxy.port, hostile.compat.port)
    ]
    with EgressGuard(allowed) as guard:
        run_window(qtbot, hostile, offline=False, disable_cloud=False, sign_in=False)
    guard.assert_clean()
    assert hostile.halext.requests == []


# ---- a broken policy fails the same check -------------------------------------------------------


def _allow_everything_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Policy, "route_allowed", lambda self, kind: None)


def _follow_redirects(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_check(response: Any) -> None:
        return None

    real_init = ollama.AsyncClient.__init__

    def following(self: Any, host: Any = None, **kwargs: Any) -> None:
        kwargs["follow_redirects"] = True
        real_init(self, host, **kwargs)

    monkeypatch.setattr(ollama_backend, "refuse_redirects", no_check)
    monkeypatch.setattr(ollama.AsyncClient, "__init__", following)


def _skip_listing_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    async def trust_every_id(self: Any, request: Any, ref: Any, backend: Any) -> None:
        return None

    monkeypatch.setattr(Router, "_unlisted_refusal", trust_every_id)


def _key_to_every_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def leave_headers_alone(base_url: str, authorization: str | None) -> Any:
        async def hook(request: Any) -> None:
            return None

        return hook

    monkeypatch.setattr(ollama_backend, "bind_authorization", leave_headers_alone)
    assert http_guard.bind_authorization is not leave_headers_alone


BROKEN_CLI: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], bool, str]] = {
    "offline rule": (_allow_everything_offline, True, "outside the allowed hosts"),
    "redirect rule": (_follow_redirects, True, "outside the allowed hosts"),
    "listing gate": (_skip_listing_gate, False, "which it does not list as self-hosted"),
    "key binding": (_key_to_every_host, True, "OLLAMA_API_KEY went to a host"),
}


@pytest.mark.parametrize("broken", list(BROKEN_CLI))
def test_the_check_catches_a_broken_policy(
    hostile: Hostile,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    broken: str,
) -> None:
    breaks, offline, complaint = BROKEN_CLI[broken]
    breaks(monkeypatch)
    with EgressGuard(hostile.allowed(offline=offline)) as guard:
        if offline:
            run_cli_offline(hostile, capsys)
        else:
            run_cli_cloud_disabled(hostile, capsys)
    with pytest.raises(AssertionError, match=complaint):
        check_no_leak(hostile, guard, offline=offline)


def test_the_check_catches_polling_before_sign_in(
    qtbot: QtBot, hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HalextBackend, "may_poll", lambda self: True)
    allowed = [
        ("127.0.0.1", p) for p in (hostile.good.port, hostile.proxy.port, hostile.compat.port)
    ]
    with EgressGuard(allowed) as guard:
        run_window(qtbot, hostile, offline=False, disable_cloud=False, sign_in=False)
    assert ("127.0.0.1", hostile.halext.port) in [(a.host, a.port) for a in guard.violations]
    with pytest.raises(AssertionError, match="outside the allowed hosts"):
        guard.assert_clean()


# ---- the real entry point, in its own process ---------------------------------------------------


# Two fresh Python processes that import the whole app: slow on a busy machine, so more
# time than the default 60 s per test (no timing is asserted).
@pytest.mark.timeout(180)
def test_cli_subprocess_offline_under_a_recorder(hostile: Hostile, tmp_path: Path) -> None:
    """``python -m halext_desktop.app.cli`` as a user runs it (the ``ollama`` module reads
    OLLAMA_API_KEY at import; nothing in-process can interfere), every connect recorded by
    a sitecustomize guard in the child."""
    configure(hostile, offline=True, disable_cloud=False)
    log = tmp_path / "egress.jsonl"
    env = {**_child_env(), **subprocess_env(hostile.allowed(offline=True), log)}
    results = []
    for argv in (
        ("models", "--json"),
        ("ask", "-m", "ollama@proxy/qwen2.5:7b", "hello"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "halext_desktop.app.cli", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        results.append((done.returncode, done.stdout, done.stderr))
    assert [code for code, _, _ in results] == [0, 1]
    models = json.loads(results[0][1])
    assert {m["route"] for m in models["models"]} == {"ollama"}
    assert "answered with a redirect" in models["routes"]["ollama@proxy"]
    assert models["routes"]["halext"].startswith("skipped: offline")
    assert "answered with a redirect" in str(results[1][2])
    attempts = read_log(log)
    assert attempts, "the recorder saw nothing: it is not installed"
    assert [a for a in attempts if not a.allowed] == []
    assert {(a.host, a.port) for a in attempts if a.kind == "connect"} <= set(
        hostile.allowed(offline=True)
    )
    assert hostile.halext.requests == [] and hostile.elsewhere.requests == []
    assert all(
        ENV_KEY not in headers.get("authorization", "")
        for server in hostile.servers()
        for headers in server_headers(server)
    )


def _child_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env
