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
from halext_desktop.storage.db import Database
from halext_desktop.storage.owner import BLOCKED
from halext_desktop.storage.store import Storage
from halext_desktop.storage.turns import TurnBegun, Turns, TurnSaved, too_large_message
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
