"""Search at scale: messages walked newest first in slices, stopping at the conversations
shown, with the same answers as checking every conversation by hand (full-text index and
plain scan alike); and a newer search overtaking an older one on the database owner."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from halext_desktop.storage.chats import SearchOvertaken
from halext_desktop.storage.conversations import ConversationRow, ConversationStore
from halext_desktop.storage.db import Database
from halext_desktop.storage.store import Storage

WORDS = ["plan", "week", "Deadline", "orders", "zebra", "Straße", "ab", "42", "ÉCOLE", "tea"]


@pytest.fixture
def db() -> Iterator[Database]:
    with Database() as database:
        yield database


@pytest.fixture(params=["fts", "scan"])
def store(request: pytest.FixtureRequest, db: Database) -> ConversationStore:
    if request.param == "scan":
        db.has_fts = False
    else:
        assert db.has_fts
    return ConversationStore(db)


Corpus = dict[int, tuple[str, list[tuple[int, str, datetime]]]]


def fill(store: ConversationStore, seed: int = 3) -> Corpus:
    """40 conversations, 600 messages interleaved among them; conversation → (title,
    [(message id, text, time)])."""
    rnd = random.Random(seed)
    corpus: Corpus = {}
    ids = []
    for i in range(40):
        title = f"{rnd.choice(WORDS)} {i}"
        c = store.create(title)
        corpus[c.id] = (title, [])
        ids.append(c.id)
    for _ in range(600):
        cid = rnd.choice(ids)
        text = " ".join(rnd.choice(WORDS) + rnd.choice(["", "s", "ing"]) for _ in range(4))
        m = store.add_message(cid, rnd.choice(["user", "assistant"]), text)
        corpus[cid][1].append((m.id, text, m.created_at))
    return corpus


def expected(store: ConversationStore, corpus: Corpus, text: str, limit: int) -> list[int]:
    """Every conversation checked by hand: a title match counts from its last update, a
    message match from the newest matching message."""
    folded = [t.lower() for t in text.split()]
    found = []
    for cid, (title, messages) in corpus.items():
        times = []
        if all(t in title.lower() for t in folded):
            row = store.get(cid)
            assert row is not None
            times.append(row.updated_at)
        hits = [when for _, body, when in messages if all(t in body.lower() for t in folded)]
        if hits:
            times.append(max(hits))
        if times:
            found.append((max(times), cid))
    return [cid for _, cid in sorted(found, reverse=True)[:limit]]


QUERIES = ["plan", "PLANS week", "ab", "42", "école", "zebra deadline orders", "nobody", "straße"]


@pytest.mark.parametrize("limit", [1, 5, 50])
def test_search_equals_checking_every_conversation(store: ConversationStore, limit: int) -> None:
    corpus = fill(store)
    for query in QUERIES:
        got = [c.id for c, _ in store.search(query, limit)]
        assert got == expected(store, corpus, query, limit), query


def test_search_in_small_slices_gives_the_same_answer_and_stops_early(
    store: ConversationStore,
) -> None:
    corpus = fill(store)
    lowest = min(m[0] for _, messages in corpus.values() for m in messages)
    for query in QUERIES:
        for limit in (3, 50):
            search = store.search_begin(query, limit)
            steps = 0
            while not search.done:
                store.search_step(search, rows=7)
                steps += 1
            got = [c.id for c, _ in store.search_results(search)]
            assert got == [c.id for c, _ in store.search(query, limit)], (query, limit)
            assert got == expected(store, corpus, query, limit)
    # A common word: three conversations are found among the newest messages, and the
    # walk ends there instead of reading the other ~600.
    search = store.search_begin("plan", 3)
    while not search.done:
        store.search_step(search, rows=7)
    assert len(search.hits) == 3
    assert search.before > lowest + 100


def test_a_newer_search_overtakes_an_older_one(tmp_path: Path) -> None:
    storage = Storage(Database(tmp_path / "data" / "halext.db"))
    storage.wait_open()
    try:
        conv = storage.owner.conversations
        target = storage.owner.call(conv.create, "target")
        for i in range(30):
            storage.owner.call(conv.add_message, target.id, "user", f"needle {i} " + "x" * 50)

        async def both() -> tuple[object, list[tuple[ConversationRow, str | None]]]:
            chats = storage.conversations
            older = asyncio.ensure_future(chats.search("needle"))
            await asyncio.sleep(0)  # the older search has begun walking
            newer = await chats.search("needle 7")
            try:
                old: object = await older
            except SearchOvertaken as exc:
                old = exc
            return old, newer

        old, new = asyncio.run(both())
        assert [c.id for c, _ in new] == [target.id]
        # The older search had begun when the newer one started: it stops walking.
        assert isinstance(old, SearchOvertaken)
        # Alone, the same search runs to its end.
        alone = asyncio.run(storage.conversations.search("needle"))
        assert [c.id for c, _ in alone] == [target.id]
    finally:
        storage.close()


def test_start_up_finds_replies_in_flight_through_the_partial_index(db: Database) -> None:
    """Crash recovery looks for replies in flight at every start: through the tiny partial
    index, never by reading every message (bound parameters would defeat the index)."""
    from halext_desktop.storage import recovery

    store = ConversationStore(db)
    c = store.create("live")
    live = store.add_message(c.id, "assistant", "", status="streaming")
    store.add_message(c.id, "user", "done")
    with db.read() as conn:
        plan = " ".join(
            str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {recovery._LIVE_SQL}")
        )
    assert "ix_messages_live" in plan and "SCAN messages" not in plan, plan
    assert [mid for mid, _ in recovery.live_replies(db)] == [live.id]


def test_search_stream_shows_title_hits_first_and_ends_with_the_search_answer(
    tmp_path: Path,
) -> None:
    """A word only titles hold: the titles come before any message is walked, the walk
    goes on (slices), and the last answer equals ``search``'s."""
    storage = Storage(Database(tmp_path / "data" / "halext.db"))
    storage.wait_open()
    try:
        conv = storage.owner.conversations
        titled = storage.owner.call(conv.create, "Chat 42")
        other = storage.owner.call(conv.create, "other")
        for i in range(600):
            storage.owner.call(
                conv.add_message, other.id, "user", "a message about tea" + "!" * (i % 5)
            )
        storage.owner.call(conv.add_message, titled.id, "user", "nothing to find here")

        async def collect() -> list[tuple[list[int], bool]]:
            out = []
            async for found, done in storage.conversations.search_stream("42"):
                out.append(([c.id for c, _ in found], done))
            return out

        steps = asyncio.run(collect())
        assert steps[0] == ([titled.id], False)  # the title, before the messages
        assert steps[-1][1] and all(not done for _, done in steps[:-1])
        final = asyncio.run(storage.conversations.search("42"))
        assert steps[-1][0] == [c.id for c, _ in final] == [titled.id]
        # A message hit found on the way is reported before the walk ends, too.
        storage.owner.call(conv.add_message, other.id, "user", "the answer is 42")
        steps = asyncio.run(collect())
        assert steps[-1] == ([other.id, titled.id], True)
    finally:
        storage.close()
