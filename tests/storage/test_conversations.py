"""ConversationStore: CRUD, ordering, lazy paging, history, delete/restore, search."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import ChatMessage
from halext_desktop.storage.conversations import ConversationStore, MessageRow, NotFoundError
from halext_desktop.storage.db import Database


@pytest.fixture
def db() -> Iterator[Database]:
    with Database() as database:
        yield database


@pytest.fixture
def store(db: Database) -> ConversationStore:
    return ConversationStore(db)


@pytest.fixture(params=["fts", "scan"])
def search_store(request: pytest.FixtureRequest, db: Database) -> ConversationStore:
    """Search must give the same answers with the FTS5 index and with the plain scan."""
    if request.param == "scan":
        db.has_fts = False
    else:
        assert db.has_fts
    return ConversationStore(db)


# ---- conversations ---------------------------------------------------------------------------


def test_create_and_get(store: ConversationStore) -> None:
    c = store.create()
    assert c.title == "New chat" and c.default_model_id is None and c.message_count == 0
    assert c.created_at.tzinfo is UTC and c.created_at == c.updated_at
    d = store.create("  Week   planning ", ModelRef.parse("ollama/llama3.1:8b"))
    assert d.title == "Week planning"
    assert d.default_model_id == "ollama/llama3.1:8b"
    assert store.get(d.id) == d
    assert store.get(9999) is None


def test_create_validates(store: ConversationStore) -> None:
    with pytest.raises(ValueError, match="title"):
        store.create("   ")
    with pytest.raises(ValueError, match="default_model_id"):
        store.create("x", "not-a-ref")


def test_list_newest_updated_first(store: ConversationStore) -> None:
    a = store.create("a")
    b = store.create("b")
    c = store.create("c")
    assert [x.id for x in store.list()] == [c.id, b.id, a.id]
    store.add_message(a.id, "user", "hello")
    listed = store.list()
    assert [x.id for x in listed] == [a.id, c.id, b.id]
    assert listed[0].message_count == 1
    assert [x.id for x in store.list(limit=2)] == [a.id, c.id]


def test_rename_and_default_model(store: ConversationStore) -> None:
    c = store.create("a")
    renamed = store.rename(c.id, "Release notes")
    assert renamed.title == "Release notes"
    assert renamed.updated_at == c.updated_at  # renaming does not reorder the list
    with pytest.raises(ValueError, match="title"):
        store.rename(c.id, "")
    with pytest.raises(NotFoundError):
        store.rename(404, "x")
    assert store.set_default_model(c.id, "halext/client:3:qwen2.5:7b").default_model_id == (
        "halext/client:3:qwen2.5:7b"
    )
    assert store.set_default_model(c.id, None).default_model_id is None
    with pytest.raises(ValueError, match="default_model_id"):
        store.set_default_model(c.id, "llama3")
    with pytest.raises(NotFoundError):
        store.set_default_model(404, None)


# ---- messages --------------------------------------------------------------------------------


def test_add_get_and_update_message(store: ConversationStore) -> None:
    c = store.create()
    user = store.add_message(c.id, "user", "Plan my week")
    reply = store.add_message(
        c.id, "assistant", "", status="pending", requested_model="ollama/llama3.1:8b"
    )
    assert reply.id > user.id and reply.status == "pending" and reply.meta == {}
    assert store.get_message(user.id) == user
    meta = {"ttft_ms": 120, "latency_ms": 900, "tokens": 42, "tokens_exact": True, "notes": ["x"]}
    done = store.update_message(
        reply.id, content="Here is a plan", status="ok", model_ref="ollama/llama3.1:8b", meta=meta
    )
    assert (done.content, done.status, done.model_ref, done.meta) == (
        "Here is a plan",
        "ok",
        "ollama/llama3.1:8b",
        meta,
    )
    assert done.requested_model == "ollama/llama3.1:8b"
    assert store.get_message(reply.id) == done
    failed = store.update_message(reply.id, status="error", error="Connection refused")
    assert failed.error == "Connection refused" and failed.content == "Here is a plan"
    assert store.get_message(404) is None


def test_message_validation(store: ConversationStore) -> None:
    c = store.create()
    with pytest.raises(ValueError, match="role"):
        store.add_message(c.id, "robot", "hi")
    with pytest.raises(ValueError, match="status"):
        store.add_message(c.id, "user", "hi", status="great")
    with pytest.raises(NotFoundError):
        store.add_message(404, "user", "hi")
    m = store.add_message(c.id, "user", "hi")
    with pytest.raises(ValueError, match="status"):
        store.update_message(m.id, status="done")
    with pytest.raises(NotFoundError):
        store.update_message(404, content="x")
    assert store.count_messages(c.id) == 1


def test_add_message_touches_updated_at(store: ConversationStore) -> None:
    c = store.create()
    m = store.add_message(c.id, "user", "hi")
    after = store.get(c.id)
    assert after is not None and after.updated_at == m.created_at >= c.updated_at


def test_lazy_paging_covers_every_message_once(store: ConversationStore) -> None:
    c = store.create()
    other = store.create()
    store.add_messages_bulk(c.id, [("user", f"m{i}") for i in range(1000)])
    store.add_messages_bulk(other.id, [("user", "elsewhere")] * 10)
    assert store.count_messages(c.id) == 1000
    everything = store.messages(c.id)
    assert [m.content for m in everything] == [f"m{i}" for i in range(1000)]
    page = store.messages(c.id, limit=200)
    assert [m.content for m in page] == [f"m{i}" for i in range(800, 1000)]
    seen: list[MessageRow] = []
    before: int | None = None
    while True:
        page = store.messages(c.id, limit=300, before_id=before)
        if not page:
            break
        assert page == sorted(page, key=lambda m: m.id)
        seen = page + seen
        before = page[0].id
    assert seen == everything
    assert store.messages(c.id, before_id=everything[3].id) == everything[:3]


def test_newest_page_of_a_long_chat_uses_the_index(db: Database, store: ConversationStore) -> None:
    c = store.create()
    store.add_messages_bulk(
        c.id,
        [
            ("user" if i % 2 else "assistant", f"message {i} " + "lorem ipsum " * 20)
            for i in range(10_000)
        ],
    )
    statements: list[str] = []

    def capture(statement: str) -> None:
        # Transactions are begun and ended by hand (storage.db): only the query is wanted.
        if statement.split()[0] not in ("BEGIN", "ROLLBACK", "COMMIT"):
            statements.append(statement)

    # The page is read with plain SQL on the database's one connection: SQLite's own trace
    # of it (with its parameters filled in) is what ran.
    with db.read() as conn:
        conn.raw.set_trace_callback(capture)
    try:
        rows = store.messages(c.id, limit=200)
    finally:
        with db.read() as conn:
            conn.raw.set_trace_callback(None)
    assert [m.content.split()[1] for m in (rows[0], rows[-1])] == ["9800", "9999"]
    (sql,) = statements
    with db.read() as conn:
        plan = " ".join(str(r[-1]) for r in conn.sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "USING INDEX ix_messages_conversation_id_id" in plan
    assert "TEMP B-TREE" not in plan  # no sort of the whole conversation
    # Speed itself is measured by bench/bench_open_conversation.py, never asserted here.


def test_bulk_accepts_mappings(store: ConversationStore) -> None:
    c = store.create()
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    n = store.add_messages_bulk(
        c.id,
        [
            {"role": "user", "content": "q", "created_at": when},
            {"role": "assistant", "content": "a", "status": "stopped", "meta": {"tokens": 3}},
        ],
    )
    assert n == 2
    q, a = store.messages(c.id)
    assert q.created_at == when
    assert (a.status, a.meta) == ("stopped", {"tokens": 3})
    with pytest.raises(ValueError, match="role"):
        store.add_messages_bulk(c.id, [("bot", "x")])
    assert store.count_messages(c.id) == 2


def test_delete_messages_from(store: ConversationStore) -> None:
    c = store.create()
    other = store.create()
    ids = [store.add_message(c.id, "user", f"m{i}").id for i in range(5)]
    keep = store.add_message(other.id, "user", "other chat")
    assert store.delete_messages_from(c.id, ids[2]) == 3
    assert [m.id for m in store.messages(c.id)] == ids[:2]
    assert store.get_message(keep.id) == keep


def test_history_skips_failed_and_empty_messages(store: ConversationStore) -> None:
    c = store.create()
    store.add_message(c.id, "system", "Be brief.")
    store.add_message(c.id, "user", "one")
    store.add_message(c.id, "assistant", "partial answer", status="stopped")
    store.add_message(c.id, "user", "two")
    store.add_message(c.id, "assistant", "oops", status="error")
    store.add_message(c.id, "assistant", "cloud text", status="blocked")
    store.add_message(c.id, "assistant", "", status="ok")
    store.add_message(c.id, "assistant", "   \n", status="ok")
    three = store.add_message(c.id, "user", "three")
    store.add_message(c.id, "assistant", "", status="pending")
    store.add_message(c.id, "assistant", "still typing", status="streaming")
    expected = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "one"),
        ChatMessage("assistant", "partial answer"),
        ChatMessage("user", "two"),
    ]
    assert store.history(c.id, before_message_id=three.id) == expected
    assert store.history(c.id) == [*expected, ChatMessage("user", "three")]
    assert store.history(c.id, limit=2) == [
        ChatMessage("user", "two"),
        ChatMessage("user", "three"),
    ]


# ---- delete and undo ----------------------------------------------------------------------------


def test_delete_and_restore_with_the_same_ids(store: ConversationStore) -> None:
    c = store.create("Undo me", "ollama/llama3.1:8b")
    store.add_message(c.id, "user", "important question")
    store.add_message(c.id, "assistant", "answer", meta={"tokens": 5})
    before = store.messages(c.id)
    conv_before = store.get(c.id)
    snap = store.delete(c.id)
    assert store.get(c.id) is None
    assert store.messages(c.id) == []
    assert store.search("important") == []
    # A new chat made meanwhile must not take the deleted ids.
    newer = store.create("meanwhile")
    newer_msg = store.add_message(newer.id, "user", "x")
    assert newer.id > c.id and newer_msg.id > before[-1].id
    restored = store.restore(snap)
    assert restored == conv_before
    assert store.messages(c.id) == before
    assert [x.id for x, _ in store.search("important")] == [c.id]
    with pytest.raises(ValueError, match="already exists"):
        store.restore(snap)
    with pytest.raises(NotFoundError):
        store.delete(404)


# ---- search -----------------------------------------------------------------------------------


def test_search_titles_and_contents(search_store: ConversationStore) -> None:
    s = search_store
    week = s.create("Week planning")
    sql = s.create("SQL question")
    s.add_message(sql.id, "user", "Why is my JOIN slow on the orders table?")
    s.add_message(sql.id, "assistant", "Add an index on orders.customer_id.")
    s.add_message(week.id, "user", "Three deadlines this week")
    only_title = s.search("planning")
    assert [(c.id, snip) for c, snip in only_title] == [(week.id, None)]
    hits = s.search("ORDERS")
    assert [c.id for c, _ in hits] == [sql.id]
    snippet = hits[0][1]
    assert snippet is not None and "orders.customer_id" in snippet  # the newest matching message
    both = s.search("week")
    assert [c.id for c, _ in both] == [week.id]
    assert both[0][1] == "Three deadlines this week"
    assert s.search("nothing like this") == []
    assert s.search("   ") == []


def test_search_is_case_insensitive_substring_and_all_words(
    search_store: ConversationStore,
) -> None:
    s = search_store
    a = s.create("Straße notes")
    b = s.create("b")
    s.add_message(b.id, "user", "The Deplaning procedure at GATE 12")
    assert [c.id for c, _ in s.search("STRAßE")] == [a.id]
    assert [c.id for c, _ in s.search("plan")] == [b.id]
    assert [c.id for c, _ in s.search("gate deplan")] == [b.id]
    assert s.search("gate zebra") == []
    assert [c.id for c, _ in s.search("12")] == [b.id]  # shorter than a trigram


@pytest.mark.parametrize("query", ['"quoted', "100%", "a_b", "x*", "NEAR(a b)", "-foo", "'"])
def test_search_treats_user_text_literally(search_store: ConversationStore, query: str) -> None:
    s = search_store
    c = s.create("literal")
    s.add_message(c.id, "user", f"text with {query} inside")
    s.add_message(s.create("decoy").id, "user", "text with nothing special")
    assert [x.id for x, _ in s.search(query)] == [c.id]


def test_search_orders_by_recent_activity_and_limits(search_store: ConversationStore) -> None:
    s = search_store
    ids = []
    for i in range(5):
        c = s.create(f"topic {i}")
        s.add_message(c.id, "user", "shared keyword alpha")
        ids.append(c.id)
    s.add_message(ids[1], "user", "alpha again")
    assert [c.id for c, _ in s.search("alpha")] == [ids[1], ids[4], ids[3], ids[2], ids[0]]
    assert [c.id for c, _ in s.search("alpha", limit=2)] == [ids[1], ids[4]]


def test_search_snippet_is_short_and_marks_cuts(search_store: ConversationStore) -> None:
    s = search_store
    c = s.create("long")
    s.add_message(c.id, "user", "word " * 100 + "needle" + " more" * 100)
    ((_, snippet),) = s.search("needle")
    assert snippet is not None
    assert "needle" in snippet and snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) < 120


def test_search_follows_edits(search_store: ConversationStore) -> None:
    s = search_store
    c = s.create("edits")
    m = s.add_message(c.id, "assistant", "", status="pending")
    s.update_message(m.id, content="streamed kangaroo text", status="ok")
    assert [x.id for x, _ in s.search("kangaroo")] == [c.id]
    s.update_message(m.id, content="replaced wombat text")
    assert s.search("kangaroo") == []
    s.rename(c.id, "marsupials")
    assert [x.id for x, _ in s.search("marsupial")] == [c.id]
    s.delete_messages_from(c.id, m.id)
    assert s.search("wombat") == []
