"""Turns: the rows of a turn queued before anything is sent, the partial reply saved at
least once a second of wall time (also while the server stalls), a reply stopped at the
size limit with its first part kept, replies in flight stopped and saved as interrupted when
the app goes away, and a locked database that never holds the reply up.

The router is the real one, over a scripted in-process backend that can stall on cue."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from halext_desktop.routing.policy import Policy
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.router import CancelToken, Router
from halext_desktop.routing.types import (
    BackendDelta,
    BackendDone,
    BackendEvent,
    BackendStarted,
    Cancelled,
    ChatMessage,
    ChatOptions,
    Delta,
    Finished,
    Health,
    Locality,
    ModelInfo,
    UsageStatus,
)
from halext_desktop.storage.conversations import estimate_tokens, fit_history
from halext_desktop.storage.db import Database
from halext_desktop.storage.owner import BLOCKED
from halext_desktop.storage.store import Storage
from halext_desktop.storage.turns import (
    DEFAULT_CONTEXT,
    TurnBegun,
    Turns,
    TurnSaved,
    too_large_message,
)
from tests.helpers.storage import on_owner

REF = ModelRef.parse("ollama/scripted:1b")


class StallingBackend:
    """Streams ``parts``; after ``stall_after`` of them it waits for ``resume`` (a server
    that stops sending for a while). Each part can also be produced ``repeat`` times."""

    kind = "ollama"
    route_id = "ollama"
    base_url = "scripted://"

    def __init__(self, parts: list[str], stall_after: int | None = None) -> None:
        self.parts = parts
        self.stall_after = stall_after
        self.resume = asyncio.Event()
        self.stalled = asyncio.Event()

    def locality_of(self, model: str) -> Locality:
        return Locality.LOCAL

    async def context_length(self, model: str) -> int | None:
        return None

    async def list_models(self) -> list[ModelInfo]:
        return []

    async def health(self) -> Health:
        return Health(self.route_id, True)

    async def aclose(self) -> None:
        pass

    async def stream_chat(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[BackendEvent]:
        yield BackendStarted(answered_model=model)
        for i, part in enumerate(self.parts):
            if i == self.stall_after:
                self.stalled.set()
                await self.resume.wait()
            yield BackendDelta(part)
        yield BackendDone(prompt_tokens=3, response_tokens=len(self.parts), exact_tokens=True)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    st = Storage(Database(tmp_path / "data" / "halext.db"))
    st.wait_open()
    yield st
    st.close()


def make_turns(storage: Storage, backend: Any, **kw: Any) -> Turns:
    router = Router({"ollama": backend}, Policy, storage.usage)
    return Turns(router, storage.conversations, storage.replies, writer=storage.session.id, **kw)


def test_rows_are_queued_first_and_the_stall_does_not_lose_what_arrived(storage: Storage) -> None:
    """The server sends some text and then nothing: within a second it is saved anyway
    (it used to be saved only when the next token came)."""
    backend = StallingBackend(["Once ", "upon ", "a time"], stall_after=2)
    turns = make_turns(storage, backend, save_every=0.05)
    seen: list[Any] = []

    async def watch(assistant_id: int) -> None:
        # While the server stalls, the partial reply reaches the file on its own.
        await backend.stalled.wait()
        for _ in range(500):
            row = await storage.conversations.get_message(assistant_id)
            if row is not None and row.content == "Once upon ":
                during.append(row)
                break
            await asyncio.sleep(0.01)
        backend.resume.set()

    during: list[Any] = []

    async def go() -> None:
        watcher = None
        async for event in turns.send(None, "tell me a story", REF):
            seen.append(event)
            if isinstance(event, TurnBegun):
                assert event.conversation is not None
                watcher = asyncio.ensure_future(watch(event.assistant.id))
        assert watcher is not None
        await watcher

    asyncio.run(go())
    (row,) = during
    assert (row.content, row.status) == ("Once upon ", "streaming") and row.meta.get("saved_at")
    saved = seen[-1]
    assert isinstance(saved, TurnSaved) and saved.saved
    assert saved.assistant.content == "Once upon a time" and saved.assistant.status == "ok"
    assert on_owner(storage).flush()
    cid = saved.assistant.conversation_id
    stored = on_owner(storage).conversations.messages(cid)
    assert [(m.role, m.content, m.status) for m in stored] == [
        ("user", "tell me a story", "ok"),
        ("assistant", "Once upon a time", "ok"),
    ]
    (row,) = on_owner(storage).usage.recent(5)
    assert row.status is UsageStatus.OK
    assert on_owner(storage).usage.has_row_for_message(saved.assistant.id)


def test_a_reply_past_the_size_limit_ends_there_with_its_first_part_kept(
    storage: Storage,
) -> None:
    backend = StallingBackend(["0123456789"] * 50)  # 500 bytes
    turns = make_turns(storage, backend, max_reply_bytes=25)

    async def go() -> list[Any]:
        return [e async for e in turns.send(None, "a lot please", REF)]

    events = asyncio.run(go())
    shown = "".join(e.text for e in events if isinstance(e, Delta))
    saved = events[-1]
    assert isinstance(saved, TurnSaved)
    assert shown == saved.assistant.content == "0123456789" * 2 + "01234"
    assert saved.assistant.status == "error"
    assert saved.assistant.error == too_large_message(25)
    assert on_owner(storage).flush()
    (row,) = on_owner(storage).usage.recent(5)
    assert row.status is UsageStatus.ERROR and "size limit" in (row.error or "")


def test_replies_in_flight_are_saved_as_interrupted_when_the_app_goes_away(
    storage: Storage,
) -> None:
    backend = StallingBackend(["partial ", "never sent"], stall_after=1)
    turns = make_turns(storage, backend)

    async def shut_down() -> None:
        await backend.stalled.wait()
        replies = turns.interrupt_all()  # SIGTERM, SIGHUP, the window closing
        assert len(replies) == 1

    async def go() -> list[Any]:
        out: list[Any] = []
        stopper = asyncio.ensure_future(shut_down())
        async for event in turns.send(None, "hello", REF):
            out.append(event)
        await stopper
        return out

    events = asyncio.run(go())
    assert any(isinstance(e, Cancelled) for e in events)
    saved = events[-1]
    assert isinstance(saved, TurnSaved)
    assert (saved.assistant.status, saved.assistant.content) == ("interrupted", "partial ")
    assert on_owner(storage).flush()
    (row,) = on_owner(storage).usage.recent(5)
    assert row.status is UsageStatus.INTERRUPTED
    assert storage.replies.all() == []


def test_a_locked_database_never_holds_the_reply_up(storage: Storage) -> None:
    """Another program holds the write lock for the whole turn: every event still arrives,
    under provisional ids, and the rows land once the lock goes."""
    turns = make_turns(storage, StallingBackend(["not ", "held ", "up"]))
    holder = sqlite3.connect(storage.db.path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:

        async def go() -> list[Any]:
            return [e async for e in turns.send(None, "while locked", REF)]

        events = asyncio.run(go())
        assert storage.owner.state.kind == BLOCKED
    finally:
        holder.close()
    begun, saved = events[0], events[-1]
    assert isinstance(begun, TurnBegun) and begun.assistant.id < 0 and begun.user.id < 0
    assert isinstance(saved, TurnSaved) and not saved.saved and saved.problem
    assert "locked by another program" in saved.problem
    assert any(isinstance(e, Finished) and e.text == "not held up" for e in events)
    assert on_owner(storage).flush()
    real = storage.owner.resolve(begun.assistant.id)
    stored = on_owner(storage).conversations.get_message(real)
    assert stored is not None and (stored.content, stored.status) == ("not held up", "ok")
    (row,) = on_owner(storage).usage.recent(5)
    assert row.conversation_id == stored.conversation_id
    assert on_owner(storage).usage.has_row_for_message(real)


def test_the_next_prompt_carries_a_turn_still_waiting_for_the_database(storage: Storage) -> None:
    backend = StallingBackend(["first answer"])
    turns = make_turns(storage, backend)
    sent: list[list[ChatMessage]] = []
    original = backend.stream_chat

    def record(model: str, messages: list[ChatMessage], options: ChatOptions) -> Any:
        sent.append(list(messages))
        return original(model, messages, options)

    backend.stream_chat = record  # type: ignore[method-assign]
    holder = sqlite3.connect(storage.db.path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:

        async def go() -> None:
            cid = None
            async for event in turns.send(None, "first", REF):
                if isinstance(event, TurnBegun):
                    cid = event.assistant.conversation_id
            assert cid is not None
            async for _ in turns.send(cid, "second", REF):
                pass

        asyncio.run(go())
    finally:
        holder.close()
    assert [(m.role, m.content) for m in sent[1]] == [
        ("user", "first"),
        ("assistant", "first answer"),
        ("user", "second"),
    ]


def test_stop_keeps_the_reply_as_stopped_not_interrupted(storage: Storage) -> None:
    backend = StallingBackend(["some ", "more"], stall_after=1)
    turns = make_turns(storage, backend)
    cancel = CancelToken()

    async def stop() -> None:
        await backend.stalled.wait()
        cancel.cancel()  # the user pressed Stop

    async def go() -> list[Any]:
        out = []
        stopper = asyncio.ensure_future(stop())
        async for event in turns.send(None, "hi", REF, cancel=cancel):
            out.append(event)
        await stopper
        return out

    saved = asyncio.run(go())[-1]
    assert isinstance(saved, TurnSaved) and saved.assistant.status == "stopped"
    assert on_owner(storage).flush()
    assert on_owner(storage).usage.recent(1)[0].status is UsageStatus.CANCELLED


def test_a_turn_closed_by_its_consumer_never_leaves_a_reply_pending(storage: Storage) -> None:
    """The window's loop shutting down, or a consumer that stops listening: the reply is
    never left pending for a crash recovery to find; what arrived is kept."""
    turns = make_turns(storage, StallingBackend(["kept ", "never"], stall_after=1))

    async def close_after(kind: type) -> Any:
        stream = turns.send(None, f"closed after {kind.__name__}", REF)
        async for event in stream:
            if isinstance(event, kind):
                await stream.aclose()  # type: ignore[attr-defined]
                return event
        raise AssertionError("never saw the event")

    begun = asyncio.run(close_after(TurnBegun))
    asyncio.run(close_after(Delta))
    assert on_owner(storage).flush()
    rows = {m.content: m for m in _all_messages(storage) if m.role == "assistant"}
    assert set(rows) == {"", "kept "}
    assert rows[""].status == "stopped" and rows["kept "].status == "interrupted"
    assert storage.replies.all() == []
    assert isinstance(begun, TurnBegun)


def _all_messages(storage: Storage) -> list[Any]:
    store = on_owner(storage).conversations
    return [m for c in store.list() for m in store.messages(c.id)]


# ---- the history sent: what the model can take ------------------------------------------------


class RecordingBackend:
    """Answers every request at once and keeps what it was sent; ``context`` is what its
    ``context_length`` answers (counted in ``context_asked``)."""

    kind = "ollama"
    route_id = "ollama"
    base_url = "scripted://"

    def __init__(self, context: int | None = None) -> None:
        self.context = context
        self.context_asked = 0
        self.sent: list[list[ChatMessage]] = []
        self.options: list[ChatOptions] = []

    def locality_of(self, model: str) -> Locality:
        return Locality.LOCAL

    async def listed_locality(self, model: str) -> Locality | None:
        return Locality.LOCAL

    async def context_length(self, model: str) -> int | None:
        self.context_asked += 1
        return self.context

    def may_poll(self) -> bool:
        return True

    async def list_models(self) -> list[ModelInfo]:
        return []

    async def health(self) -> Health:
        return Health(self.route_id, True)

    async def aclose(self) -> None:
        pass

    async def stream_chat(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[BackendEvent]:
        self.sent.append(list(messages))
        self.options.append(options)
        yield BackendStarted(answered_model=model)
        yield BackendDelta("ok")
        yield BackendDone(prompt_tokens=1, response_tokens=1, exact_tokens=True)


def long_chat(storage: Storage, turns: int, size: int, *, system: str | None = None) -> int:
    """A conversation of ``turns`` questions and answers of ``size`` characters each
    (an optional system prompt first); returns its id."""
    conv = on_owner(storage).conversations.create("long")
    rows: list[tuple[str, str]] = [("system", system)] if system else []
    for i in range(turns):
        rows.append(("user", f"q{i} " + "x" * size))
        rows.append(("assistant", f"a{i} " + "y" * size))
    on_owner(storage).conversations.add_messages_bulk(conv.id, rows)
    return conv.id


def send_once(turns: Turns, cid: int, prompt: str = "next?", **kw: Any) -> list[Any]:
    async def go() -> list[Any]:
        return [e async for e in turns.send(cid, prompt, REF, **kw)]

    return asyncio.run(go())


def test_a_short_chat_is_sent_whole_without_asking_the_model(storage: Storage) -> None:
    backend = RecordingBackend(context=8192)
    cid = long_chat(storage, 5, 100)
    events = send_once(make_turns(storage, backend), cid)
    (sent,) = backend.sent
    assert len(sent) == 11 and sent[-1] == ChatMessage("user", "next?")
    assert backend.context_asked == 0  # it fits any model: nothing to ask
    begun = next(e for e in events if isinstance(e, TurnBegun))
    assert begun.context is not None and not begun.context.cut
    stored = on_owner(storage).conversations.messages(cid)
    assert begun.context.first_id == stored[0].id
    assert "context_from_id" not in events[-1].assistant.meta


def test_a_long_chat_sends_the_newest_turns_that_fit_the_models_context(
    storage: Storage,
) -> None:
    """2,000 messages of ~1 KB (~500k tokens): the model takes 4,096, so only the newest
    turns that fit go out, the system prompt kept; the window and the reply's row say
    where the model's context starts."""
    backend = RecordingBackend(context=4096)
    cid = long_chat(storage, 1000, 1000, system="You are terse.")
    events = send_once(make_turns(storage, backend), cid)
    (sent,) = backend.sent
    assert sent[0] == ChatMessage("system", "You are terse.")
    assert sent[-1] == ChatMessage("user", "next?")
    history = sent[1:-1]
    assert 2 <= len(history) < 20
    assert history[0].role == "user"  # never a reply whose question was cut off
    assert history[-1].content.startswith("a999 ")  # the newest turns
    tokens = sum(estimate_tokens(m.content) for m in sent)
    assert tokens <= 4096 - min(4096 // 4, 2048)  # room left for the reply
    assert backend.context_asked == 1
    begun = next(e for e in events if isinstance(e, TurnBegun))
    window = begun.context
    assert window is not None and window.cut
    stored = on_owner(storage).conversations.messages(cid)
    first = next(m for m in stored if m.content == history[0].content)
    assert window.first_id == first.id
    saved = events[-1]
    assert isinstance(saved, TurnSaved) and saved.assistant.meta["context_from_id"] == first.id
    on_owner(storage).flush()
    reply = on_owner(storage).conversations.get_message(saved.assistant.id)
    assert reply is not None and reply.meta["context_from_id"] == first.id


def test_the_conversations_num_ctx_bounds_the_history_and_unknown_uses_a_default(
    storage: Storage,
) -> None:
    cid = long_chat(storage, 1000, 1000)
    wide = RecordingBackend(context=None)  # the route cannot tell
    send_once(make_turns(storage, wide), cid)
    narrow = RecordingBackend(context=None)
    send_once(make_turns(storage, narrow), cid, options=ChatOptions(num_ctx=3000))
    assert narrow.context_asked == 0  # the conversation said: nothing to ask
    default_tokens = sum(estimate_tokens(m.content) for m in wide.sent[0])
    narrow_tokens = sum(estimate_tokens(m.content) for m in narrow.sent[0])
    assert narrow_tokens <= 3000 - 750 < default_tokens <= DEFAULT_CONTEXT - 2048


@pytest.mark.parametrize("how", ["regenerate", "edit_and_resend"])
def test_regenerate_and_edit_fit_the_history_to_the_conversations_num_ctx(
    storage: Storage, how: str
) -> None:
    """Like ``send``: the conversation's num_ctx bounds the history (nothing asked of the
    route) and goes with the request; without it, the route's context (here unknown: the
    default) does."""
    cid = long_chat(storage, 1000, 1000)

    async def again(turns: Turns, options: ChatOptions | None) -> list[Any]:
        rows = await storage.conversations.messages(cid, limit=4)
        if how == "regenerate":
            events = turns.regenerate(cid, REF, options=options)
        else:
            last_user = next(m for m in reversed(rows) if m.role == "user")
            events = turns.edit_and_resend(cid, last_user.id, "again?", REF, options=options)
        return [e async for e in events]

    narrow = RecordingBackend(context=None)
    events = asyncio.run(again(make_turns(storage, narrow), ChatOptions(num_ctx=3000)))
    assert isinstance(events[-1], TurnSaved)
    wide = RecordingBackend(context=None)
    asyncio.run(again(make_turns(storage, wide), None))
    assert narrow.context_asked == 0 and wide.context_asked == 1
    assert narrow.options[0].num_ctx == 3000 and wide.options[0].num_ctx is None
    narrow_tokens = sum(estimate_tokens(m.content) for m in narrow.sent[0])
    wide_tokens = sum(estimate_tokens(m.content) for m in wide.sent[0])
    assert narrow_tokens <= 3000 - 750 < wide_tokens <= DEFAULT_CONTEXT - 2048
    assert narrow.sent[0][-1].role == "user" and narrow.sent[0][0].role == "user"
    begun = next(e for e in events if isinstance(e, TurnBegun))
    assert begun.context is not None and begun.context.cut


def test_fit_history_keeps_system_messages_and_one_unbroken_stretch() -> None:
    rows = [
        (7, "assistant", "a" * 400),
        (6, "user", "u" * 400),
        (5, "assistant", "b" * 4000),  # too big: the stretch ends here
        (4, "user", "v" * 10),
        (1, "system", "sys"),
    ]
    window = fit_history(rows, 300)
    assert [m.role for m in window.messages] == ["system", "user", "assistant"]
    assert window.first_id == 6 and window.cut
    assert window.ids == (1, 6, 7)  # each message's own id, in the same order
    assert window.tokens == sum(estimate_tokens(c) for c in ("sys", "u" * 400, "a" * 400))
    empty = fit_history([(3, "assistant", "z" * 4000)], 100)
    assert empty.messages == [] and empty.first_id is None and empty.cut


def test_a_short_turn_costs_two_write_transactions(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn's first rows (the user's message, the default model, the pending reply)
    share one transaction, and the reply's final state, its 'streaming' mark and its usage
    row another: two per turn (there were six). The waits are long here, so only what is
    written at once counts."""
    import halext_desktop.storage.store as store_module
    import halext_desktop.storage.turns as turns_module

    monkeypatch.setattr(turns_module, "FIRST_ROWS_WAIT_S", 60.0)
    monkeypatch.setattr(store_module, "USAGE_WAIT_S", 60.0)
    cid = long_chat(storage, 2, 10)
    on_owner(storage).flush()
    before = storage.owner.stats["transactions"]
    events = send_once(make_turns(storage, RecordingBackend(), save_every=60.0), cid)
    assert isinstance(events[-1], TurnSaved) and events[-1].saved
    assert storage.owner.stats["transactions"] - before == 2
    stored = on_owner(storage).conversations.messages(cid)
    assert [(m.role, m.content, m.status) for m in stored[-2:]] == [
        ("user", "next?", "ok"),
        ("assistant", "ok", "ok"),
    ]
    (row,) = on_owner(storage).usage.recent(1)
    assert row.status is UsageStatus.OK and row.conversation_id == cid
