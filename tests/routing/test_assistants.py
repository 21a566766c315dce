"""Assistants: prompt building, the tolerant-but-strict parser, and run_assistant end to end
through a real Router with the real backends against the protocol test servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from halext_desktop.routing.assistants import (
    ASSIST_TEMPERATURE,
    EVENT_SCHEMA,
    KINDS,
    NOTE_SCHEMA,
    SCHEMAS,
    TASK_SCHEMA,
    AssistantInput,
    AssistantInputError,
    AssistantOutcome,
    AssistantParseError,
    EventInput,
    EventSuggestions,
    NoteInput,
    NoteSummary,
    TaskInput,
    TaskSuggestions,
    build_messages,
    build_request,
    extract_json_object,
    parse_result,
    result_to_dict,
    run_assistant,
    schema_for,
)
from halext_desktop.routing.backends.base import Backend
from halext_desktop.routing.backends.halext import HalextBackend
from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend
from halext_desktop.routing.errors import ErrorKind
from halext_desktop.routing.policy import Policy
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.router import CancelToken, Router
from halext_desktop.routing.types import UsageStatus
from halext_desktop.routing.usage_sink import MemoryUsageSink
from halext_desktop.storage.secrets import MemorySecretStore
from tests.helpers.aio import run
from tests.servers.halext_server import HalextServer
from tests.servers.halext_server import expected_reply as halext_expected_reply
from tests.servers.ollama_server import OllamaServer

TZ = timezone(timedelta(hours=2))

GOOD_TASK = {
    "subtasks": ["Draft the outline", "Write the intro"],
    "labels": ["writing", "q4"],
    "priority": "high",
    "priority_reasoning": "Due on Friday",
    "estimated_hours": 3.5,
}


# ---- prompts ---------------------------------------------------------------------------------


def test_schemas_match_the_result_dataclasses() -> None:
    for schema, cls in (
        (TASK_SCHEMA, TaskSuggestions),
        (EVENT_SCHEMA, EventSuggestions),
        (NOTE_SCHEMA, NoteSummary),
    ):
        names = [f.name for f in fields(cls)]
        assert list(schema["properties"]) == names
        assert schema["required"] == names
        assert schema["additionalProperties"] is False
    assert TASK_SCHEMA["properties"]["priority"]["enum"] == ["low", "medium", "high", "urgent"]


@pytest.mark.parametrize("kind", KINDS)
def test_messages_carry_schema_and_strict_instruction(kind: str) -> None:
    inputs: dict[str, AssistantInput] = {
        "task": TaskInput("Write report", "Quarterly numbers"),
        "event": EventInput("Dentist", datetime(2025, 11, 24, 9, 30, tzinfo=TZ)),
        "note": NoteInput("Call Bob about the lease. Buy milk."),
    }
    data = inputs[kind]
    system, user = build_messages(kind, data)
    assert (system.role, user.role) == ("system", "user")
    assert json.dumps(schema_for(kind), indent=2) in system.content
    assert "Reply with only a JSON object" in system.content
    # The last message repeats the demand with every required key (halext weighs it most).
    assert user.content.rstrip().endswith(
        "Reply with only a JSON object with the keys "
        + ", ".join(f'"{k}"' for k in schema_for(kind)["required"])
        + "."
    )


def test_user_prompt_contents() -> None:
    _, task = build_messages("task", TaskInput("  Write report ", "Quarterly numbers\nfor Q3"))
    assert "Task title: Write report\n" in task.content
    assert "Task description:\nQuarterly numbers\nfor Q3" in task.content
    _, no_desc = build_messages("task", TaskInput("Write report"))
    assert "description" not in no_desc.content.lower()

    start = datetime(2025, 11, 24, 14, 0, tzinfo=TZ)
    _, event = build_messages(
        "event",
        EventInput("Offsite", start, start + timedelta(hours=3, minutes=30), "Bring laptops"),
    )
    assert "Starts: Monday 2025-11-24 14:00 (UTC+02:00)" in event.content
    assert "Ends: Monday 2025-11-24 17:30 (UTC+02:00) (3 h 30 min)" in event.content
    assert "Event description:\nBring laptops" in event.content

    _, note = build_messages("note", NoteInput("  line one\nline two  "))
    assert "Note:\nline one\nline two\n" in note.content


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("task", TaskInput("   "), "needs a title"),
        ("event", EventInput("", datetime(2025, 1, 1, tzinfo=TZ)), "needs a title"),
        (
            "event",
            EventInput("x", datetime(2025, 1, 2, tzinfo=TZ), datetime(2025, 1, 1, tzinfo=TZ)),
            "ends before it starts",
        ),
        (
            "event",
            EventInput("x", datetime(2025, 1, 1), datetime(2025, 1, 2, tzinfo=TZ)),
            "time zone",
        ),
        ("note", NoteInput(" \n "), "note is empty"),
        ("note", TaskInput("x"), "takes a NoteInput"),
        ("memo", NoteInput("x"), "unknown assistant"),
    ],
)
def test_bad_inputs_are_refused(kind: str, data: Any, message: str) -> None:
    with pytest.raises(AssistantInputError, match=message):
        build_messages(kind, data)


def test_request_asks_for_structured_output_without_fallbacks() -> None:
    ref = ModelRef.parse("ollama/llama3.2")
    req = build_request("note", NoteInput("hello"), ref)
    assert req.ref == ref
    assert req.endpoint_name == "assist:note"
    assert req.options.json_schema == NOTE_SCHEMA
    assert req.options.temperature == ASSIST_TEMPERATURE
    assert req.use_fallbacks is False
    assert len(req.messages) == 2


# ---- parsing ---------------------------------------------------------------------------------


def test_parse_plain_json() -> None:
    result = parse_result("task", json.dumps(GOOD_TASK))
    assert result == TaskSuggestions(**GOOD_TASK)  # type: ignore[arg-type]
    assert result_to_dict(result) == GOOD_TASK


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```",
        "```\n{}\n```",
        "Sure! Here is the plan:\n\n```JSON\n{}\n```\nGood luck.",
        "Here you go: {} Let me know if you need more.",
        "{}\n\nNote: I assumed a 40-hour week.",
        "  \n{}\n  ",
    ],
)
def test_parse_tolerates_fences_and_prose(wrap: str) -> None:
    text = wrap.replace("{}", json.dumps(GOOD_TASK, indent=2))
    assert parse_result("task", text) == TaskSuggestions(**GOOD_TASK)  # type: ignore[arg-type]


def test_parse_picks_the_object_not_a_brace_in_prose() -> None:
    text = "Use {curly} braces sparingly. " + json.dumps(GOOD_TASK)
    assert parse_result("task", text).labels == ["writing", "q4"]  # type: ignore[union-attr]


def test_parse_coerces_obvious_things() -> None:
    text = json.dumps(
        {
            "subTasks": ["1. Draft", {"title": "Review"}, "  ", "- Send"],
            "Labels": "#Writing, q4, writing",
            "priority": " URGENT ",
            "priorityReasoning": "It is due today",
            "estimatedHours": "90 min",
            "extra": "ignored",
        }
    )
    result = parse_result("task", text)
    assert isinstance(result, TaskSuggestions)
    assert result.subtasks == ["Draft", "Review", "Send"]
    assert result.labels == ["Writing", "q4"]  # '#' dropped, case-insensitive duplicate dropped
    assert result.priority == "urgent"
    assert result.estimated_hours == 1.5


@pytest.mark.parametrize(
    ("value", "hours"),
    [("2.5", 2.5), ("3 hours", 3.0), ("about 4h", 4.0), (2, 2.0), ("45 minutes", 0.75)],
)
def test_hours_forms(value: Any, hours: float) -> None:
    result = parse_result("task", json.dumps({**GOOD_TASK, "estimated_hours": value}))
    assert result.estimated_hours == hours  # type: ignore[union-attr]


def test_parse_unwraps_a_one_key_wrapper() -> None:
    note: dict[str, Any] = {
        "summary": "Lease call",
        "tags": ["home"],
        "extracted_tasks": ["Call Bob"],
    }
    assert parse_result("note", json.dumps({"note_summary": note})) == NoteSummary(**note)


def test_parse_event_and_note() -> None:
    event: dict[str, Any] = {
        "summary": "A dentist visit",
        "preparation_steps": ["Floss"],
        "suggestions": [],
    }
    assert parse_result("event", json.dumps(event)) == EventSuggestions(**event)
    note = {"summary": "Errands", "tags": ["home", "#todo"], "actionItems": ["Buy milk"]}
    assert parse_result("note", json.dumps(note)) == NoteSummary(
        "Errands", ["home", "todo"], ["Buy milk"]
    )


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("task", "", "The reply was empty"),
        ("task", "I cannot help with that.", "contains no JSON object"),
        ("task", '{"subtasks": ["a", "b"], "labels": [', "not valid JSON"),
        ("task", "```json\n{'subtasks': []}\n```", "not valid JSON"),
        ("task", "[1, 2]", "is a list, not a JSON object"),
        ("task", json.dumps({k: v for k, v in GOOD_TASK.items() if k != "labels"}), '"labels"'),
        ("task", json.dumps({**GOOD_TASK, "priority_reasoning": None}), '"priority_reasoning"'),
        ("task", json.dumps({**GOOD_TASK, "subtasks": 5}), '"subtasks" is int'),
        ("task", json.dumps({**GOOD_TASK, "subtasks": ["a", ["b"]]}), '"subtasks" item 2'),
        ("task", json.dumps({**GOOD_TASK, "priority": "critical"}), "low, medium, high, urgent"),
        ("task", json.dumps({**GOOD_TASK, "estimated_hours": "a while"}), "estimated_hours"),
        ("task", json.dumps({**GOOD_TASK, "estimated_hours": -2}), "out of range"),
        ("task", json.dumps({**GOOD_TASK, "estimated_hours": True}), "estimated_hours"),
        (
            "event",
            json.dumps({"summary": " ", "preparation_steps": [], "suggestions": []}),
            "empty",
        ),
        ("note", json.dumps({"summary": "s", "tags": []}), '"extracted_tasks"'),
    ],
)
def test_parse_errors_name_the_problem_and_keep_the_raw_text(
    kind: str, text: str, message: str
) -> None:
    with pytest.raises(AssistantParseError) as info:
        parse_result(kind, text)
    assert message in info.value.message
    assert info.value.raw_text == text
    assert "\n" not in info.value.message


def test_a_reply_of_the_wrong_shape_is_one_readable_sentence() -> None:
    """Validation is pydantic's; what the user reads is one sentence about the first field
    that is wrong, never pydantic's multi-line report."""
    text = json.dumps(
        {
            "subtasks": {"first": "a", "second": "b"},
            "labels": 3,
            "priority": 7,
            "priority_reasoning": ["fine", 2],
            "estimated_hours": [],
        }
    )
    with pytest.raises(AssistantParseError) as info:
        parse_result("task", text)
    assert info.value.message == 'The reply\'s "subtasks" is dict, not a list of strings'
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"estimated_hours": 20_000}, 'The reply\'s "estimated_hours" is out of range (got 20000)'),
        ({"priority_reasoning": 5}, 'The reply\'s "priority_reasoning" is int, not text'),
        ({"labels": None}, 'The reply has no "labels" field'),
    ],
)
def test_field_problems_read_as_sentences(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AssistantParseError) as info:
        parse_result("task", json.dumps({**GOOD_TASK, **change}))
    assert info.value.message == message


def test_the_schema_states_what_validation_enforces() -> None:
    """One definition: the limits the model is told are the limits a reply is held to."""
    hours = TASK_SCHEMA["properties"]["estimated_hours"]
    assert (hours["type"], hours["minimum"], hours["maximum"]) == ("number", 0, 10_000)
    for schema in (EVENT_SCHEMA, NOTE_SCHEMA):
        assert schema["properties"]["summary"]["minLength"] == 1
    # No pydantic titles or class docstrings in what the model reads.
    assert "title" not in json.dumps(SCHEMAS) and "answer" not in json.dumps(SCHEMAS)
    # Keys the schema does not list are refused by the schema, ignored by the reader.
    assert parse_result("task", json.dumps({**GOOD_TASK, "mood": "keen"})) == TaskSuggestions(
        **GOOD_TASK  # type: ignore[arg-type]
    )


def test_extract_json_object_bounded_on_long_garbage() -> None:
    text = "{" * 5000 + " nope"
    with pytest.raises(AssistantParseError, match="not valid JSON"):
        extract_json_object(text)


# ---- end to end through the Router -----------------------------------------------------------


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        yield server
    assert server.errors == [], f"ollama test server errors: {server.errors}"


def _router(backends: list[Backend], sink: MemoryUsageSink, policy: Policy | None = None) -> Router:
    return Router({b.route_id: b for b in backends}, lambda: policy or Policy(), sink)


async def _run_ollama(
    url: str, kind: str, data: Any, model: str = "llama3.2", cancel: CancelToken | None = None
) -> tuple[AssistantOutcome, MemoryUsageSink]:
    sink = MemoryUsageSink()
    router = _router([OllamaBackend("local", url, is_default=True)], sink)
    try:
        outcome = await run_assistant(router, kind, data, f"ollama/{model}", cancel)
    finally:
        await router.aclose()
    return outcome, sink


def _chat_requests(server: OllamaServer) -> list[Any]:
    return server.requests_to("/api/chat", "POST")


def _expected_object(server: OllamaServer, kind: str, data: Any) -> dict[str, Any]:
    """What the server fills the schema with for this prompt (computed, not hard-coded)."""
    msgs = [{"role": m.role, "content": m.content} for m in build_messages(kind, data)]
    return json.loads(server.expected_reply("llama3.2", msgs, schema_for(kind)))


def test_task_through_ollama_sends_format_and_parses(ollama: OllamaServer) -> None:
    data = TaskInput("Write the quarterly report", "Numbers for Q3")
    outcome, sink = run(_run_ollama(ollama.url, "task", data))

    assert outcome.error is None and outcome.parse_error is None, outcome.problem()
    expected = _expected_object(ollama, "task", data)
    assert outcome.result == TaskSuggestions(
        subtasks=expected["subtasks"],
        labels=expected["labels"],
        priority=expected["priority"],
        priority_reasoning=expected["priority_reasoning"],
        estimated_hours=float(expected["estimated_hours"]),
    )
    assert json.loads(outcome.raw_text) == expected
    assert outcome.answered is not None and outcome.answered.route_id == "ollama"

    (req,) = _chat_requests(ollama)
    assert req.json["format"] == TASK_SCHEMA
    assert req.json["options"]["temperature"] == ASSIST_TEMPERATURE
    assert [m["role"] for m in req.json["messages"]] == ["system", "user"]
    assert "Write the quarterly report" in req.json["messages"][1]["content"]

    (row,) = sink.rows
    assert row is outcome.usage
    assert row.endpoint == "assist:task:/api/chat"
    assert row.status is UsageStatus.OK
    assert row.requested_model == "ollama/llama3.2"
    assert row.model_identifier == str(outcome.answered)
    assert row.tokens_exact is True and row.response_tokens > 0


@pytest.mark.parametrize("kind", ["event", "note"])
def test_event_and_note_through_ollama(ollama: OllamaServer, kind: str) -> None:
    data = (
        EventInput("Team offsite", datetime(2025, 11, 24, 14, 0, tzinfo=TZ), None, "Lisbon")
        if kind == "event"
        else NoteInput("Call Bob about the lease.\nBuy milk.")
    )
    outcome, sink = run(_run_ollama(ollama.url, kind, data))
    expected = _expected_object(ollama, kind, data)
    assert outcome.result is not None, outcome.problem()
    assert result_to_dict(outcome.result) == expected
    assert _chat_requests(ollama)[0].json["format"] == schema_for(kind)
    assert [r.endpoint for r in sink.rows] == [f"assist:{kind}:/api/chat"]


def test_invalid_json_reply_is_a_clean_parse_error(ollama: OllamaServer) -> None:
    raw = 'Sure! Here is your plan: {"subtasks": ["Outline", "Draft"], "labels": ['
    ollama.queue_reply(raw)
    outcome, sink = run(_run_ollama(ollama.url, "task", TaskInput("Plan")))
    assert outcome.result is None and outcome.error is None
    assert outcome.raw_text == raw
    assert outcome.parse_error is not None and "not valid JSON" in outcome.parse_error
    problem = outcome.problem()
    assert problem is not None and "could not be read as task suggestions" in problem
    assert "ollama/" in problem
    # The request itself succeeded: its usage row says so.
    assert [r.status for r in sink.rows] == [UsageStatus.OK]


def test_reply_missing_a_field_names_it(ollama: OllamaServer) -> None:
    ollama.queue_reply('{"summary": "Lease", "tags": ["home"]}')
    outcome, _ = run(_run_ollama(ollama.url, "note", NoteInput("Call Bob")))
    assert outcome.result is None
    assert outcome.parse_error == 'The reply has no "extracted_tasks" field'


def test_unknown_model_is_a_route_error_with_one_usage_row(ollama: OllamaServer) -> None:
    outcome, sink = run(_run_ollama(ollama.url, "note", NoteInput("x"), model="nope:1b"))
    assert outcome.result is None and outcome.parse_error is None
    assert outcome.error is not None and outcome.error.kind is ErrorKind.MODEL_NOT_FOUND
    assert outcome.problem() == outcome.error.one_line()
    (row,) = sink.rows
    assert (row.endpoint, row.status) == ("assist:note:/api/chat", UsageStatus.ERROR)


def test_stop_mid_reply_closes_the_stream(ollama: OllamaServer) -> None:
    ollama.set_token_delay(0.3)  # server-side pacing so the reply is still streaming

    async def scenario() -> tuple[AssistantOutcome, MemoryUsageSink]:
        cancel = CancelToken()
        task = asyncio.ensure_future(
            _run_ollama(ollama.url, "task", TaskInput("Slow one"), cancel=cancel)
        )
        sent = await asyncio.to_thread(
            ollama.wait_for, lambda: any(r.lines_sent >= 1 for r in _chat_requests(ollama))
        )
        assert sent, "the stream never started"
        cancel.cancel()
        return await task

    outcome, sink = run(scenario())
    assert outcome.cancelled and outcome.result is None and outcome.error is None
    assert outcome.problem() == "Stopped before the reply was complete"
    assert ollama.wait_closed_early().path == "/api/chat"
    assert [r.status for r in sink.rows] == [UsageStatus.CANCELLED]


def test_openai_compatible_route_gets_json_mode(ollama: OllamaServer) -> None:
    async def scenario() -> tuple[AssistantOutcome, MemoryUsageSink]:
        sink = MemoryUsageSink()
        backend = OpenAICompatBackend("lan", f"{ollama.url}/v1", None)
        router = _router([backend], sink)
        try:
            return await run_assistant(
                router, "task", TaskInput("Plan"), "openai@lan/llama3.2"
            ), sink
        finally:
            await router.aclose()

    outcome, sink = run(scenario())
    (req,) = ollama.requests_to("/v1/chat/completions", "POST")
    assert req.json["response_format"] == {"type": "json_object"}
    # JSON mode guarantees JSON, not our schema: the server's {"response": ...} is refused
    # with a message naming the first missing field, and the raw text is kept.
    assert outcome.result is None
    assert outcome.parse_error == 'The reply has no "subtasks" field'
    assert json.loads(outcome.raw_text)
    assert [r.endpoint for r in sink.rows] == ["assist:task:/chat/completions"]


def test_a_server_that_rejects_a_schema_gets_json_mode_and_says_so(ollama: OllamaServer) -> None:
    # Ollama before 0.5 (and servers copying its API) take only format "json".
    ollama.set_formats("json")
    data = TaskInput("Write the quarterly report")
    # The model follows the schema in the prompt (scripted: the server's JSON mode would
    # otherwise answer its generic {"response": ...}).
    answer = json.dumps(_expected_object(ollama, "task", data))
    ollama.queue_reply(answer)
    outcome, sink = run(_run_ollama(ollama.url, "task", data))

    assert outcome.result is not None, outcome.problem()
    assert result_to_dict(outcome.result) == json.loads(answer)
    assert outcome.json_mode == "json"
    first, second = _chat_requests(ollama)
    assert first.json["format"] == TASK_SCHEMA and first.status == 400
    assert second.json["format"] == "json" and second.status == 200
    assert outcome.notes == (
        "The server does not take a JSON schema as the output format; JSON mode was used",
    )
    assert [r.status for r in sink.rows] == [UsageStatus.ERROR, UsageStatus.OK]


def test_a_server_with_no_structured_output_gets_the_prompt_alone(ollama: OllamaServer) -> None:
    ollama.set_formats("none")
    data = NoteInput("Call Bob about the lease.")
    answer = json.dumps(_expected_object(ollama, "note", data))
    ollama.queue_reply(answer)
    outcome, sink = run(_run_ollama(ollama.url, "note", data))

    assert outcome.result is not None, outcome.problem()
    assert result_to_dict(outcome.result) == json.loads(answer)
    assert outcome.json_mode == "prompt"
    formats = [r.json.get("format") for r in _chat_requests(ollama)]
    assert formats == [NOTE_SCHEMA, "json", None]
    assert [r.status for r in _chat_requests(ollama)] == [400, 400, 200]
    # The schema travels in the prompt every time.
    assert all(
        json.dumps(NOTE_SCHEMA, indent=2) in r.json["messages"][0]["content"]
        for r in _chat_requests(ollama)
    )
    assert outcome.notes == (
        "The server takes neither a JSON schema nor JSON mode as the output format; "
        "the prompt alone asked for the JSON",
    )
    assert len(sink.rows) == 3


def test_a_format_error_is_one_sentence_without_a_memory_hint(ollama: OllamaServer) -> None:
    # A server whose rejection arrives as an error line before any text (status 200).
    ollama.error_after(0, 'invalid format: expected "json" or a valid JSON schema')
    answer = json.dumps(_expected_object(ollama, "task", TaskInput("Plan")))
    ollama.queue_reply(answer)  # taken by the failed stream
    ollama.queue_reply(answer)  # the retry's
    outcome, _ = run(_run_ollama(ollama.url, "task", TaskInput("Plan")))
    assert outcome.result is not None, outcome.problem()
    assert outcome.json_mode == "json"
    # Another failure before any text is not "mid-reply".
    ollama.error_after(0, "model requires more system memory (9 GiB) than is available")
    outcome, _ = run(_run_ollama(ollama.url, "task", TaskInput("Plan")))
    assert outcome.error is not None and outcome.error.kind is ErrorKind.SERVER
    problem = outcome.problem()
    assert problem is not None and "mid-reply" not in problem
    assert "\n" not in problem and "could not answer" in problem
    assert outcome.json_mode == "schema"  # not a format problem: no retry


def test_an_openai_compatible_server_without_json_mode_gets_the_prompt_alone(
    ollama: OllamaServer,
) -> None:
    ollama.set_formats("none")
    data = TaskInput("Plan")
    answer = json.dumps(_expected_object(ollama, "task", data))
    ollama.queue_reply(answer)

    async def scenario() -> AssistantOutcome:
        backend = OpenAICompatBackend("lan", f"{ollama.url}/v1", None)
        router = _router([backend], MemoryUsageSink())
        try:
            return await run_assistant(router, "task", data, "openai@lan/llama3.2")
        finally:
            await router.aclose()

    outcome = run(scenario())
    assert outcome.result is not None, outcome.problem()
    assert outcome.json_mode == "prompt"
    sent = [r.json.get("response_format") for r in ollama.requests_to("/v1/chat/completions")]
    # JSON mode is all this route ever asks for, so both structured tries send it.
    assert sent == [{"type": "json_object"}, {"type": "json_object"}, None]
    assert "the prompt alone asked for the JSON" in outcome.notes[-1]


# ---- halext: a strict prompt, no structured-output field -------------------------------------


@pytest.fixture
def halext() -> Iterator[HalextServer]:
    with HalextServer() as server:
        yield server
    assert server.errors == [], f"halext test server errors: {server.errors}"


async def _run_halext(
    url: str, model: str, policy: Policy
) -> tuple[AssistantOutcome, MemoryUsageSink]:
    sink = MemoryUsageSink()
    backend = HalextBackend(url, MemorySecretStore(), username="dev", session_password="dev123")
    router = _router([backend], sink, policy)
    try:
        outcome = await run_assistant(router, "task", TaskInput("Write report"), model)
    finally:
        await router.aclose()
    return outcome, sink


def test_halext_echo_reply_is_a_clean_parse_error(halext: HalextServer) -> None:
    outcome, sink = run(_run_halext(halext.url, "halext/ollama:llama3.1:8b", Policy()))

    (req,) = halext.requests_to("/ai/chat/stream", "POST")
    assert req.json["model"] == "ollama:llama3.1:8b"
    assert [m["role"] for m in req.json["history"]] == ["system"]
    assert "Reply with only a JSON object" in req.json["history"][0]["content"]
    assert "Task title: Write report" in req.json["prompt"]
    # The server echoes the prompt: not our JSON object, so a parse error with the raw text.
    assert outcome.raw_text == halext_expected_reply("ollama:llama3.1:8b", req.json["prompt"])
    assert outcome.result is None and outcome.error is None
    assert outcome.parse_error is not None
    problem = outcome.problem()
    assert problem is not None and problem.startswith(
        "The reply from halext/ollama:llama3.1:8b could not be read as task suggestions:"
    )
    (row,) = sink.rows
    assert (row.endpoint, row.status) == ("assist:task:/ai/chat/stream", UsageStatus.OK)
    assert row.tokens_exact is False


def test_cloud_switch_refuses_halext_cloud_model_before_any_request(halext: HalextServer) -> None:
    outcome, sink = run(
        _run_halext(halext.url, "halext/openai:gpt-4o-mini", Policy(disable_cloud=True))
    )
    assert outcome.error is not None and outcome.error.kind is ErrorKind.BLOCKED
    assert "cloud providers are disabled" in outcome.error.message
    assert outcome.raw_text == "" and outcome.answered is None
    assert halext.requests == []  # not even a login
    assert [(r.endpoint, r.status) for r in sink.rows] == [
        ("assist:task:/ai/chat/stream", UsageStatus.BLOCKED)
    ]


def test_offline_refuses_halext_before_any_request(halext: HalextServer) -> None:
    outcome, sink = run(_run_halext(halext.url, "halext/ollama:llama3.1:8b", Policy(offline=True)))
    assert outcome.error is not None and outcome.error.kind is ErrorKind.BLOCKED
    assert "offline mode" in outcome.error.message
    assert halext.requests == []
    assert [r.status for r in sink.rows] == [UsageStatus.BLOCKED]
