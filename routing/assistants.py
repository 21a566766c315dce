"""Task, event and note assistants: structured suggestions through the shared Router.

Each assistant builds a strict prompt that carries a JSON schema, sends it like a chat
turn (so policy, offline mode and usage rows apply unchanged, with the endpoint
``assist:<kind>``), and validates the reply into a dataclass. Backends turn
``ChatOptions.json_schema`` into Ollama's ``format`` or OpenAI's JSON mode; halext has no
such field, so the prompt alone has to hold the model to the schema.

The halext server's own ``/ai/tasks/suggest``, ``/ai/events/analyze`` and
``/ai/notes/summarize`` are broken (always 500, halext-api.md §5.6) and are not used.

No Qt here: the CLI and the GUI call ``run_assistant`` on their asyncio loop.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import (
    Cancelled,
    ChatMessage,
    ChatOptions,
    ChatRequest,
    Failed,
    Finished,
    Locality,
    Started,
    UsageRecord,
)

if TYPE_CHECKING:
    from halext_desktop.routing.router import CancelToken, Router

AssistantKind = Literal["task", "event", "note"]
KINDS: tuple[AssistantKind, ...] = get_args(AssistantKind)

Priority = Literal["low", "medium", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)

# Low temperature: the assistants should fill a schema, not be creative with its shape.
ASSIST_TEMPERATURE = 0.2

# A task estimate above this is a model's slip (minutes read as hours), not a plan.
MAX_ESTIMATED_HOURS = 10_000.0

# How many '{' positions to try when digging an object out of prose (bounds the work
# on a long, broken reply).
_MAX_OBJECT_STARTS = 200


# ---- inputs ----------------------------------------------------------------------------------


class AssistantInputError(ValueError):
    """An input an assistant cannot work with (empty title, end before start...)."""


@dataclass(frozen=True, slots=True)
class TaskInput:
    """What the task assistant plans: a task's title and optional description."""

    title: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class EventInput:
    """What the event assistant prepares for: a titled event at a time."""

    title: str
    start: datetime
    end: datetime | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class NoteInput:
    """The free text the note assistant summarises."""

    text: str


AssistantInput = TaskInput | EventInput | NoteInput

_INPUT_TYPES: dict[AssistantKind, type] = {
    "task": TaskInput,
    "event": EventInput,
    "note": NoteInput,
}


# ---- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSuggestions:
    """The task assistant's answer."""

    subtasks: list[str]
    labels: list[str]
    priority: Priority
    priority_reasoning: str
    estimated_hours: float


@dataclass(frozen=True, slots=True)
class EventSuggestions:
    """The event assistant's answer."""

    summary: str
    preparation_steps: list[str]
    suggestions: list[str]


@dataclass(frozen=True, slots=True)
class NoteSummary:
    """The note assistant's answer."""

    summary: str
    tags: list[str]
    extracted_tasks: list[str]


AssistantResult = TaskSuggestions | EventSuggestions | NoteSummary


def result_to_dict(result: AssistantResult) -> dict[str, Any]:
    """The result as a JSON-able dict with the schema's keys."""
    return asdict(result)


# ---- schemas ---------------------------------------------------------------------------------


def _string_list(description: str, *, min_items: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "array",
        "items": {"type": "string"},
        "description": description,
    }
    if min_items:
        schema["minItems"] = min_items
    return schema


TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subtasks": _string_list("Concrete next actions, in order, each one short line"),
        "labels": _string_list("A few short lower-case labels for filing the task"),
        "priority": {"type": "string", "enum": list(PRIORITIES)},
        "priority_reasoning": {"type": "string", "description": "One sentence: why this priority"},
        "estimated_hours": {
            "type": "number",
            "minimum": 0,
            "description": "Total time to finish the task, in hours",
        },
    },
    "required": ["subtasks", "labels", "priority", "priority_reasoning", "estimated_hours"],
    "additionalProperties": False,
}

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "description": "One or two sentences about the event"},
        "preparation_steps": _string_list("What to do before the event, in order"),
        "suggestions": _string_list("Other useful suggestions (agenda, reminders, travel...)"),
    },
    "required": ["summary", "preparation_steps", "suggestions"],
    "additionalProperties": False,
}

NOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "description": "A short summary of the note"},
        "tags": _string_list("A few short lower-case topic tags"),
        "extracted_tasks": _string_list("Action items the note mentions, each one short line"),
    },
    "required": ["summary", "tags", "extracted_tasks"],
    "additionalProperties": False,
}

SCHEMAS: dict[AssistantKind, dict[str, Any]] = {
    "task": TASK_SCHEMA,
    "event": EVENT_SCHEMA,
    "note": NOTE_SCHEMA,
}

# What each kind's result is called in messages ("could not be read as task suggestions").
RESULT_NAMES: dict[AssistantKind, str] = {
    "task": "task suggestions",
    "event": "event suggestions",
    "note": "a note summary",
}


def check_kind(kind: str) -> AssistantKind:
    """``kind`` if it names an assistant, else AssistantInputError listing the kinds."""
    if kind not in KINDS:
        raise AssistantInputError(f"unknown assistant {kind!r}: use one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


def schema_for(kind: str) -> dict[str, Any]:
    """The JSON schema the ``kind`` assistant's reply must match."""
    return SCHEMAS[check_kind(kind)]


# ---- prompts ---------------------------------------------------------------------------------

_ROLES: dict[AssistantKind, str] = {
    "task": (
        "You are a task-planning assistant. Given a task, break it into concrete subtasks, "
        "suggest a few labels, choose a priority and estimate the total time in hours."
    ),
    "event": (
        "You are an event-preparation assistant. Given an event, summarise it and list the "
        "preparation steps and other practical suggestions."
    ),
    "note": (
        "You are a note assistant. Given a note, write a short summary, suggest a few tags "
        "and extract every action item it mentions."
    ),
}


def _system_prompt(kind: AssistantKind) -> str:
    schema = json.dumps(SCHEMAS[kind], indent=2)
    return (
        f"{_ROLES[kind]}\n\n"
        "Reply with only a JSON object that matches this JSON schema:\n"
        f"{schema}\n\n"
        'Rules: every key in "required" must be present; no other keys; lists contain '
        "plain strings; no markdown, no code fences, no text before or after the JSON object."
    )


def _closing_line(kind: AssistantKind) -> str:
    # Repeated in the user message because some routes (halext history handling, small
    # local models) weigh the last message far more than the system prompt.
    keys = ", ".join(f'"{k}"' for k in SCHEMAS[kind]["required"])
    return f"Reply with only a JSON object with the keys {keys}."


def _format_time(moment: datetime) -> str:
    text = moment.strftime("%A %Y-%m-%d %H:%M")
    offset = moment.strftime("%z")
    if offset:
        text += f" (UTC{offset[:3]}:{offset[3:]})"
    return text


def _format_duration(start: datetime, end: datetime) -> str:
    minutes = int((end - start).total_seconds() // 60)
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    return f"{hours} h" if hours else f"{mins} min"


def validate_input(kind: str, data: AssistantInput) -> None:
    """Raise AssistantInputError when ``data`` does not fit ``kind`` or is unusable."""
    k = check_kind(kind)
    expected = _INPUT_TYPES[k]
    if not isinstance(data, expected):
        raise AssistantInputError(
            f"the {k} assistant takes a {expected.__name__}, not {type(data).__name__}"
        )
    if isinstance(data, TaskInput | EventInput) and not data.title.strip():
        raise AssistantInputError(f"the {k} needs a title")
    if isinstance(data, EventInput) and data.end is not None:
        if (data.start.tzinfo is None) != (data.end.tzinfo is None):
            raise AssistantInputError(
                "give both the start and the end with a time zone, or neither"
            )
        if data.end < data.start:
            raise AssistantInputError("the event ends before it starts")
    if isinstance(data, NoteInput) and not data.text.strip():
        raise AssistantInputError("the note is empty")


def _user_prompt(kind: AssistantKind, data: AssistantInput) -> str:
    lines: list[str] = []
    if isinstance(data, TaskInput):
        lines.append(f"Task title: {data.title.strip()}")
        if data.description.strip():
            lines.append(f"Task description:\n{data.description.strip()}")
    elif isinstance(data, EventInput):
        lines.append(f"Event title: {data.title.strip()}")
        lines.append(f"Starts: {_format_time(data.start)}")
        if data.end is not None:
            lines.append(
                f"Ends: {_format_time(data.end)} ({_format_duration(data.start, data.end)})"
            )
        if data.description.strip():
            lines.append(f"Event description:\n{data.description.strip()}")
    else:
        lines.append(f"Note:\n{data.text.strip()}")
    lines.append("")
    lines.append(_closing_line(kind))
    return "\n".join(lines)


def build_messages(kind: str, data: AssistantInput) -> tuple[ChatMessage, ...]:
    """The strict prompt for ``kind``: a system message with the schema and the rules, then
    a user message with the input that ends by asking for only a JSON object."""
    validate_input(kind, data)
    k = check_kind(kind)
    return (
        ChatMessage("system", _system_prompt(k)),
        ChatMessage("user", _user_prompt(k, data)),
    )


def build_request(kind: str, data: AssistantInput, ref: ModelRef) -> ChatRequest:
    """The router request for one assistant run: its own endpoint name, structured output
    asked for, and no fallback route (the user picked this assistant's model)."""
    k = check_kind(kind)
    return ChatRequest(
        ref,
        build_messages(k, data),
        endpoint_name=f"assist:{k}",
        options=ChatOptions(json_schema=SCHEMAS[k], temperature=ASSIST_TEMPERATURE),
        use_fallbacks=False,
    )


# ---- parsing and validation ------------------------------------------------------------------


class AssistantParseError(ValueError):
    """A reply that is not the JSON object an assistant asked for.

    Attributes:
        message: one line naming what is wrong (the field, the JSON error).
        raw_text: the reply exactly as received, so nothing is lost.
    """

    def __init__(self, message: str, raw_text: str) -> None:
        super().__init__(message)
        self.message = message
        self.raw_text = raw_text

    def __repr__(self) -> str:
        return f"AssistantParseError({self.message!r})"


_FENCE_RE = re.compile(r"```[ \t]*(?:json5?|jsonc|JSON)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])([A-Z])")
_BULLET_RE = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_HOURS_RE = re.compile(
    r"^(?:~|about|approx\.?|approximately|around)?\s*(\d+(?:\.\d+)?)\s*"
    r"(h|hr|hrs|hour|hours|m|min|mins|minute|minutes)?\.?$",
    re.IGNORECASE,
)

# Spellings models use for our keys (after camelCase → snake_case), per kind.
_ALIASES: dict[AssistantKind, dict[str, str]] = {
    "task": {
        "sub_tasks": "subtasks",
        "steps": "subtasks",
        "tags": "labels",
        "priority_reason": "priority_reasoning",
        "reasoning": "priority_reasoning",
        "estimate_hours": "estimated_hours",
        "estimated_time_hours": "estimated_hours",
        "time_estimate_hours": "estimated_hours",
        "hours": "estimated_hours",
    },
    "event": {
        "preparation": "preparation_steps",
        "prep_steps": "preparation_steps",
        "preparation_tasks": "preparation_steps",
    },
    "note": {
        "tasks": "extracted_tasks",
        "action_items": "extracted_tasks",
        "labels": "tags",
    },
}


def _short(text: str, limit: int = 40) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: the whole reply, a ```json fenced block, or an
    object after (or before) some prose. Raises AssistantParseError otherwise."""
    stripped = text.strip()
    if not stripped:
        raise AssistantParseError("The reply was empty", text)
    candidates = [stripped] + [m.group(1).strip() for m in _FENCE_RE.finditer(text)]
    first_error: json.JSONDecodeError | None = None
    non_object: str | None = None
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError as exc:
            if first_error is None and candidate.startswith("{"):
                first_error = exc
            continue
        if isinstance(obj, dict):
            return obj
        non_object = non_object or type(obj).__name__
    decoder = json.JSONDecoder()
    for count, match in enumerate(re.finditer(r"\{", text)):
        if count >= _MAX_OBJECT_STARTS:
            break
        try:
            obj, _end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError as exc:
            if first_error is None:
                first_error = exc
            continue
        if isinstance(obj, dict):
            return obj
    if first_error is not None:
        raise AssistantParseError(
            f"The reply is not valid JSON ({first_error.msg} at line {first_error.lineno}, "
            f"column {first_error.colno}); it may have been cut off",
            text,
        )
    if non_object is not None:
        kind = {"list": "a list", "str": "a string"}.get(non_object, f"a {non_object}")
        raise AssistantParseError(f"The reply is {kind}, not a JSON object", text)
    raise AssistantParseError(
        f"The reply contains no JSON object (it starts with “{_short(stripped)}”)", text
    )


def _normalise_keys(kind: AssistantKind, obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    aliases = _ALIASES[kind]
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        norm = _CAMEL_RE.sub(r"_\1", key.strip()).lower().replace("-", "_").replace(" ", "_")
        norm = aliases.get(norm, norm)
        # An exact key wins over an alias that maps to the same field.
        if norm not in out or key == norm:
            out[norm] = value
    return out


def _unwrap(kind: AssistantKind, obj: dict[str, Any]) -> dict[str, Any]:
    """``{"result": {...}}`` → the inner object, when the outer one has none of our keys."""
    required = SCHEMAS[kind]["required"]
    norm = _normalise_keys(kind, obj)
    if any(k in norm for k in required):
        return norm
    inner = [v for v in obj.values() if isinstance(v, dict)]
    if len(obj) == 1 and len(inner) == 1:
        return _normalise_keys(kind, inner[0])
    return norm


def _require(obj: dict[str, Any], field: str, raw: str) -> Any:
    value = obj.get(field)
    if value is None:
        raise AssistantParseError(f'The reply has no "{field}" field', raw)
    return value


def _item_text(item: Any) -> str | None:
    """A list item as text: strings, numbers, or an object with one obvious text field."""
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return None
    if isinstance(item, int | float):
        return str(item)
    if isinstance(item, dict):
        for key in ("title", "name", "text", "task", "step", "description", "label", "tag"):
            if isinstance(item.get(key), str):
                return str(item[key])
        strings = [v for v in item.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    return None


def _text_list(obj: dict[str, Any], field: str, raw: str, *, tags: bool = False) -> list[str]:
    value = _require(obj, field, raw)
    if isinstance(value, str):
        # One string where a list belongs: split it the way a person would read it.
        value = [p for p in re.split(r"[\n,;]" if tags else r"\n", value)]
    if not isinstance(value, list):
        raise AssistantParseError(
            f'The reply\'s "{field}" is {type(value).__name__}, not a list of strings', raw
        )
    out: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(value, start=1):
        text = _item_text(item)
        if text is None:
            raise AssistantParseError(
                f'The reply\'s "{field}" item {index} is {type(item).__name__}, not text', raw
            )
        text = _BULLET_RE.sub("", text).strip()
        if tags:
            text = text.lstrip("#").strip()
        key = text.casefold()
        if not text or (tags and key in seen):
            continue
        seen.add(key)
        out.append(text)
    return out


def _text(obj: dict[str, Any], field: str, raw: str, *, allow_empty: bool) -> str:
    value = _require(obj, field, raw)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(v.strip() for v in value)
    if not isinstance(value, str):
        raise AssistantParseError(
            f'The reply\'s "{field}" is {type(value).__name__}, not text', raw
        )
    value = value.strip()
    if not value and not allow_empty:
        raise AssistantParseError(f'The reply\'s "{field}" is empty', raw)
    return value


def _priority(obj: dict[str, Any], raw: str) -> Priority:
    value = _require(obj, "priority", raw)
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in PRIORITIES:
        raise AssistantParseError(
            f'The reply\'s "priority" must be one of {", ".join(PRIORITIES)} '
            f"(got {json.dumps(value)})",
            raw,
        )
    return text  # type: ignore[return-value]


def _hours(obj: dict[str, Any], raw: str) -> float:
    value = _require(obj, "estimated_hours", raw)
    hours: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        hours = float(value)
    elif isinstance(value, str):
        match = _HOURS_RE.match(value.strip())
        if match:
            hours = float(match.group(1))
            unit = (match.group(2) or "h").lower()
            if unit.startswith("m"):
                hours /= 60.0
    if hours is None or not math.isfinite(hours):
        raise AssistantParseError(
            f'The reply\'s "estimated_hours" is not a number of hours (got {json.dumps(value)})',
            raw,
        )
    if hours < 0 or hours > MAX_ESTIMATED_HOURS:
        raise AssistantParseError(
            f'The reply\'s "estimated_hours" is out of range (got {hours:g})', raw
        )
    return hours


def parse_result(kind: str, text: str) -> AssistantResult:
    """Validate a model's reply into the ``kind`` assistant's result.

    Tolerant of how models wrap JSON (code fences, prose around it, camelCase keys, a
    one-key wrapper object) and of obvious slips (priority case, "2.5 hours"), strict about
    content: a missing or mistyped field raises AssistantParseError naming the field, with
    the raw text kept.
    """
    k = check_kind(kind)
    obj = _unwrap(k, extract_json_object(text))
    if k == "task":
        return TaskSuggestions(
            subtasks=_text_list(obj, "subtasks", text),
            labels=_text_list(obj, "labels", text, tags=True),
            priority=_priority(obj, text),
            priority_reasoning=_text(obj, "priority_reasoning", text, allow_empty=True),
            estimated_hours=_hours(obj, text),
        )
    if k == "event":
        return EventSuggestions(
            summary=_text(obj, "summary", text, allow_empty=False),
            preparation_steps=_text_list(obj, "preparation_steps", text),
            suggestions=_text_list(obj, "suggestions", text),
        )
    return NoteSummary(
        summary=_text(obj, "summary", text, allow_empty=False),
        tags=_text_list(obj, "tags", text, tags=True),
        extracted_tasks=_text_list(obj, "extracted_tasks", text),
    )


# ---- running through the router --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssistantOutcome:
    """Everything one assistant run produced; exactly one of result / error / parse_error /
    cancelled describes how it ended.

    Attributes:
        kind: which assistant ran.
        requested: the model reference asked for.
        result: the validated suggestions, or None.
        raw_text: the model's reply as received (partial when the route failed or was stopped).
        answered: the reference that actually answered, when something did.
        locality: where the text went, when the route started answering.
        notes: the router's notes (server fallback, model substitution).
        error: the route's failure (policy refusal, connection, ...), or None.
        parse_error: one line saying why the reply is unusable, or None.
        usage: the usage row the router wrote for this run.
        cancelled: the user stopped the run.
    """

    kind: AssistantKind
    requested: ModelRef
    result: AssistantResult | None
    raw_text: str
    answered: ModelRef | None = None
    locality: Locality | None = None
    notes: tuple[str, ...] = ()
    error: RouteError | None = None
    parse_error: str | None = None
    usage: UsageRecord | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.result is not None

    def problem(self) -> str | None:
        """One line for the user when the run produced no result, else None."""
        if self.error is not None:
            return self.error.one_line()
        if self.parse_error is not None:
            who = self.answered or self.requested
            return (
                f"The reply from {who} could not be read as {RESULT_NAMES[self.kind]}: "
                f"{self.parse_error}"
            )
        if self.cancelled:
            return "Stopped before the reply was complete"
        return None


async def run_assistant(
    router: Router,
    kind: str,
    data: AssistantInput,
    ref: ModelRef | str,
    cancel: CancelToken | None = None,
) -> AssistantOutcome:
    """Run one assistant through ``router`` and validate the reply.

    Never raises for a route failure or a bad reply: both come back in the outcome (with
    the raw text). Raises AssistantInputError for unusable input before anything is sent.
    """
    k = check_kind(kind)
    if isinstance(ref, str):
        try:
            ref = ModelRef.parse(ref)
        except ValueError as exc:
            raise AssistantInputError(str(exc)) from None
    request = build_request(k, data, ref)
    started: Started | None = None
    terminal: Finished | Failed | Cancelled | None = None
    async for event in router.stream(request, cancel):
        if isinstance(event, Started):
            started = event
        elif isinstance(event, Finished | Failed | Cancelled):
            terminal = event
    locality = started.locality if started else None
    started_answered = started.answered if started else None
    if isinstance(terminal, Finished):
        answered = terminal.answered or started_answered
        try:
            result: AssistantResult | None = parse_result(k, terminal.text)
            parse_error = None
        except AssistantParseError as exc:
            result, parse_error = None, exc.message
        return AssistantOutcome(
            k,
            ref,
            result,
            terminal.text,
            answered,
            locality,
            terminal.notes,
            parse_error=parse_error,
            usage=terminal.usage,
        )
    if isinstance(terminal, Failed):
        return AssistantOutcome(
            k,
            ref,
            None,
            terminal.partial_text,
            terminal.answered or started_answered,
            locality,
            terminal.notes,
            error=terminal.error,
            usage=terminal.usage,
        )
    if isinstance(terminal, Cancelled):
        return AssistantOutcome(
            k,
            ref,
            None,
            terminal.partial_text,
            terminal.answered or started_answered,
            locality,
            started.notes if started else (),
            usage=terminal.usage,
            cancelled=True,
        )
    # The router promises a terminal event; if that promise breaks, say so plainly.
    return AssistantOutcome(
        k,
        ref,
        None,
        "",
        error=RouteError(ErrorKind.INTERNAL, "The request ended without an answer or an error"),
    )
