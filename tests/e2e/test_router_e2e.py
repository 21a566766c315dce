"""The real Core (settings, SQLite, keyring store, backends, router, turns) against the
protocol test servers. What was (not) sent is proven from the servers' recorded requests."""

from __future__ import annotations

import asyncio
from typing import Any

from halext_desktop.routing.errors import ErrorKind
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.router import CancelToken
from halext_desktop.routing.types import Cancelled, Delta, Failed, Finished, Started, UsageStatus
from halext_desktop.storage.turns import TurnBegun, TurnSaved
from tests.helpers.storage import on_owner
from tests.servers.halext_server import HalextServer, expected_reply
from tests.servers.ollama_server import EVAL_NS_PER_TOKEN


def ask(core: Any, ref: str, prompt: str = "hello", cancel: CancelToken | None = None) -> list[Any]:
    async def go() -> list[Any]:
        conv = await core.conversations.create(title="t")
        try:
            return [
                e
                async for e in core.turns.send(conv.id, prompt, ModelRef.parse(ref), cancel=cancel)
            ]
        finally:
            await core.aclose()

    return asyncio.run(go())


def sign_in(core: Any, remember: bool = False) -> None:
    async def go() -> None:
        try:
            await core.sign_in("dev", "dev123", remember)
        finally:
            await core.aclose()

    asyncio.run(go())


def chat_requests(server: HalextServer) -> list[Any]:
    return (
        server.requests_to("/ai/chat/stream")
        + server.requests_to("/ai/stream")
        + (server.requests_to("/ai/chat"))
    )


def test_halext_reply_streams_and_chip_names_what_answered(make_core, halext_server) -> None:
    core = make_core()
    sign_in(core)
    events = ask(core, "halext/ollama:llama3.1:8b", "two\nlines")
    started = next(e for e in events if isinstance(e, Started))
    assert started.answered == ModelRef.parse("halext/ollama:llama3.1:8b")
    fin = next(e for e in events if isinstance(e, Finished))
    assert fin.text == expected_reply("ollama:llama3.1:8b", "two\nlines")
    saved = events[-1]
    assert isinstance(saved, TurnSaved) and saved.assistant.content == fin.text
    assert saved.assistant.model_ref == "halext/ollama:llama3.1:8b"
    body = chat_requests(halext_server)[-1].json
    assert body["model"] == "ollama:llama3.1:8b" and body["prompt"] == "two\nlines"


def test_disable_cloud_sends_no_cloud_request(make_core, halext_server) -> None:
    core = make_core(disable_cloud=True)
    sign_in(core)
    halext_server.clear_requests()
    events = ask(core, "halext/openai:gpt-4o-mini")
    fail = next(e for e in events if isinstance(e, Failed))
    assert fail.error.kind is ErrorKind.BLOCKED
    assert chat_requests(halext_server) == []
    # A self-hosted model still goes, and always with an explicit, non-cloud model.
    ask(core, "halext/client:3:qwen2.5:7b")
    bodies = [r.json for r in chat_requests(halext_server)]
    assert bodies and all(
        b.get("model") and not b["model"].startswith(("openai", "gemini")) for b in bodies
    )
    rows = on_owner(core).usage.recent(10)
    assert sorted(r.status.value for r in rows) == ["blocked", "ok"]


def test_halext_cloud_answer_is_discarded_when_cloud_disabled(make_core, halext_server) -> None:
    core = make_core(disable_cloud=True)
    sign_in(core)
    # The server claims to answer a self-hosted model with OpenAI (e.g. an admin re-route).
    halext_server.stream_script(["leaked ", "cloud ", "text"], model="openai:gpt-4o-mini")
    events = ask(core, "halext/ollama:llama3.1:8b")
    assert not any(isinstance(e, Delta) for e in events)
    fail = next(e for e in events if isinstance(e, Failed))
    assert fail.error.kind is ErrorKind.BLOCKED and "openai:gpt-4o-mini" in fail.error.message
    saved = events[-1]
    assert saved.assistant.content == "" and saved.assistant.status == "blocked"
    assert [r.status for r in on_owner(core).usage.recent(5)] == [UsageStatus.BLOCKED]


def test_offline_sends_nothing_to_halext(make_core, halext_server, ollama_server) -> None:
    core = make_core(offline=True)
    halext_server.clear_requests()

    async def go() -> Any:
        try:
            listing = await core.list_models()
            health = await core.health_all()
            return listing, health
        finally:
            await core.aclose()

    listing, health = asyncio.run(go())
    assert "halext" in listing.skipped
    assert {m.ref.route_id for m in listing.models} == {"ollama"}
    assert [h.route_id for h in health] == ["ollama"]
    events = ask(core, "halext/ollama:llama3.1:8b")
    assert isinstance(events[-2], Failed) and events[-2].error.kind is ErrorKind.BLOCKED
    ask(core, "ollama/qwen2.5:7b")
    assert halext_server.requests == []
    assert ollama_server.requests_to("/api/chat")


def test_expired_token_relogs_in_with_remembered_password(make_core, halext_server) -> None:
    core = make_core()
    sign_in(core, remember=True)
    halext_server.advance_clock(31 * 60)  # the 30-minute token is now expired server-side
    events = ask(core, "halext/ollama:llama3.1:8b")
    assert isinstance(events[-2], Finished)
    assert len(halext_server.requests_to("/token")) == 2


def test_expired_token_without_password_says_signed_out_and_keeps_the_message(
    make_core, halext_server
) -> None:
    core = make_core()
    sign_in(core, remember=False)
    halext_server.expire_all_tokens()
    events = ask(core, "halext/ollama:llama3.1:8b", "keep me")
    fail = next(e for e in events if isinstance(e, Failed))
    assert fail.error.kind is ErrorKind.SIGNED_OUT
    begun = events[0]
    assert isinstance(begun, TurnBegun)
    stored = on_owner(core).conversations.messages(begun.user.conversation_id)
    assert [m.content for m in stored if m.role == "user"] == ["keep me"]
    assert stored[-1].status == "error" and "Signed out" in (stored[-1].error or "")


def test_server_silent_fallback_is_reported(make_core, halext_server) -> None:
    core = make_core()
    sign_in(core)
    events = ask(core, "halext/bogus:model")
    fin = next(e for e in events if isinstance(e, Finished))
    assert fin.answered is not None and fin.answered.model != "bogus:model"
    assert any("bogus:model" in n for n in fin.notes)
    assert events[-1].assistant.meta["notes"] == list(fin.notes)


def test_dropped_halext_stream_keeps_partial_text_and_logs_error(make_core, halext_server) -> None:
    core = make_core()
    sign_in(core)
    halext_server.stream_script(["first ", "second ", "third"], drop_after=2)
    events = ask(core, "halext/ollama:llama3.1:8b")
    fail = next(e for e in events if isinstance(e, Failed))
    assert fail.error.kind is ErrorKind.STREAM_DROPPED
    saved = events[-1]
    assert saved.assistant.status == "error"
    assert saved.assistant.content.startswith("first ")
    row = on_owner(core).usage.recent(1)[0]
    assert row.status is UsageStatus.ERROR and row.model_identifier == "halext/ollama:llama3.1:8b"


def test_dropped_ollama_stream_keeps_partial_text(make_core, ollama_server) -> None:
    core = make_core()
    ollama_server.drop_after(2)
    events = ask(core, "ollama/qwen2.5:7b", "tell me more")
    fail = next(e for e in events if isinstance(e, Failed))
    assert fail.error.kind is ErrorKind.STREAM_DROPPED and fail.partial_text
    assert events[-1].assistant.content == fail.partial_text
    assert on_owner(core).usage.recent(1)[0].status is UsageStatus.ERROR


def test_stop_writes_cancelled_row_and_server_sees_close(make_core, ollama_server) -> None:
    core = make_core()
    ollama_server.set_token_delay(0.05)
    cancel = CancelToken()

    async def go() -> list[Any]:
        conv = await core.conversations.create(title="t")
        out = []
        try:
            async for e in core.turns.send(
                conv.id, "a long answer please", ModelRef.parse("ollama/qwen2.5:7b"), cancel=cancel
            ):
                out.append(e)
                if isinstance(e, Delta):
                    cancel.cancel()
        finally:
            await core.aclose()
        return out

    events = asyncio.run(go())
    stopped = next(e for e in events if isinstance(e, Cancelled))
    assert stopped.partial_text
    assert events[-1].assistant.status == "stopped"
    assert events[-1].assistant.content == stopped.partial_text
    ollama_server.wait_closed_early()
    assert on_owner(core).usage.recent(1)[0].status is UsageStatus.CANCELLED


def test_exact_ollama_token_counts_in_usage(make_core, ollama_server) -> None:
    core = make_core()
    events = ask(core, "ollama/qwen2.5:7b", "count me")
    fin = next(e for e in events if isinstance(e, Finished))
    tokens = ollama_server.expected_tokens("qwen2.5:7b", [{"role": "user", "content": "count me"}])
    assert fin.text == "".join(tokens)
    row = on_owner(core).usage.recent(1)[0]
    assert row.tokens_exact and row.response_tokens == len(tokens)


def test_ollama_generation_speed_reaches_the_saved_reply(make_core, ollama_server) -> None:
    """eval_count / eval_duration from Ollama's final line, carried exactly to the message's
    meta (what the chip's tok/s is computed from)."""
    core = make_core()
    events = ask(core, "ollama/qwen2.5:7b", "how fast")
    tokens = ollama_server.expected_tokens("qwen2.5:7b", [{"role": "user", "content": "how fast"}])
    fin = next(e for e in events if isinstance(e, Finished))
    assert (fin.eval_count, fin.eval_duration_ns) == (len(tokens), len(tokens) * EVAL_NS_PER_TOKEN)
    assert fin.tokens_per_second == len(tokens) / (len(tokens) * EVAL_NS_PER_TOKEN) * 1e9
    saved = events[-1]
    assert isinstance(saved, TurnSaved)
    assert saved.assistant.meta["eval_count"] == len(tokens)
    assert saved.assistant.meta["eval_duration_ns"] == len(tokens) * EVAL_NS_PER_TOKEN
    stored = on_owner(core).conversations.messages(saved.assistant.conversation_id)
    assert stored[-1].meta["eval_duration_ns"] == len(tokens) * EVAL_NS_PER_TOKEN


def test_halext_reports_no_generation_speed(make_core, halext_server) -> None:
    core = make_core()
    sign_in(core)
    events = ask(core, "halext/ollama:llama3.1:8b", "how fast")
    fin = next(e for e in events if isinstance(e, Finished))
    assert fin.eval_count is None and fin.eval_duration_ns is None
    assert fin.tokens_per_second is None
    saved = events[-1]
    assert isinstance(saved, TurnSaved)
    assert "eval_duration_ns" not in saved.assistant.meta


def test_fallback_route_answers_and_says_so(make_core, ollama_server, halext_server) -> None:
    core = make_core(fallback_models=["halext/ollama:qwen2.5:7b"])
    sign_in(core)
    events = ask(core, "ollama/not-installed:1b")
    started = next(e for e in events if isinstance(e, Started))
    assert started.answered.route_id == "halext"
    assert any("Fallback" in n for n in started.notes)
    statuses = sorted(r.status.value for r in on_owner(core).usage.recent(5))
    assert statuses == ["error", "ok"]


def test_history_is_sent_as_prior_turns(make_core, halext_server) -> None:
    core = make_core()
    sign_in(core)

    async def go() -> None:
        conv = await core.conversations.create(title="t")
        ref = ModelRef.parse("halext/ollama:llama3.1:8b")
        try:
            async for _ in core.turns.send(conv.id, "first", ref):
                pass
            async for _ in core.turns.send(conv.id, "second", ref):
                pass
        finally:
            await core.aclose()

    asyncio.run(go())
    body = chat_requests(halext_server)[-1].json
    assert body["prompt"] == "second"
    assert [h["role"] for h in body["history"]] == ["user", "assistant"]
    assert body["history"][0]["content"] == "first"
    assert all(set(h) == {"role", "content"} for h in body["history"])


def test_plain_text_500_is_one_clear_line(make_core, halext_server) -> None:
    core = make_core()
    sign_in(core)
    halext_server.fail_next("/ai/chat/stream")
    events = ask(core, "halext/ollama:llama3.1:8b")
    fail = next(e for e in events if isinstance(e, Failed))
    assert fail.error.kind is ErrorKind.SERVER
    assert "500" in fail.error.message and "\n" not in fail.error.one_line()


def test_nothing_reachable_fails_fast_with_a_hint(make_core, ollama_server) -> None:
    core = make_core()
    ollama_server.stop()
    events = ask(core, "ollama/qwen2.5:7b")
    fail = next(e for e in events if isinstance(e, Failed))
    assert fail.error.kind is ErrorKind.CONNECTION and fail.error.hint
