"""Task, event and note assistants: structured suggestions through the shared Router.

Each assistant builds a strict prompt that carries a JSON schema, sends it like a chat
turn (so policy, offline mode and usage rows apply unchanged, with the endpoint
``assist:<kind>``), and validates the reply into a result whose one definition (a pydantic
dataclass) is also the schema. Backends turn ``ChatOptions.json_schema`` into Ollama's
``format`` or OpenAI's JSON mode; halext has no such field, so the prompt alone has to hold
the model to the schema.

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
from functools import cache, partial
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast, get_args

from pydantic import (
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import PydanticCustomError

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import (
    JSON_MODES,
    Cancelled,
    ChatMessage,
    ChatOptions,
    ChatRequest,
    Failed,
    Finished,
    JsonMode,
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


# ---- results: one definition per kind --------------------------------------------------------
#
# Each result is a pydantic dataclass. Its fields give the JSON schema the model is asked to
# fill (sent to Ollama as ``format`` and quoted in the prompt) and the validation of the
# reply, so the two cannot drift apart. Validation is tolerant of how models slip (a string
# where a list belongs, "2.5 hours", "URGENT", other spellings of a key: the field's
# aliases) and strict about content; every problem it finds is worded for a person.

# The pydantic error type of our own checks; its message is a phrase that follows the field's
# name ('is int, not a list of strings').
_REPLY_PROBLEM = "reply_problem"

_BULLET_RE = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_HOURS_RE = re.compile(
    r"^(?:~|about|approx\.?|approximately|around)?\s*(\d+(?:\.\d+)?)\s*"
    r"(h|hr|hrs|hour|hours|m|min|mins|minute|minutes)?\.?$",
    re.IGNORECASE,
)


def _problem(phrase: str) -> PydanticCustomError:
    return PydanticCustomError(_REPLY_PROBLEM, "{phrase}", {"phrase": phrase})


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


def _texts(value: Any, *, tags: bool) -> list[str]:
    if isinstance(value, str):
        # One string where a list belongs: split it the way a person would read it.
        value = re.split(r"[\n,;]" if tags else r"\n", value)
    if not isinstance(value, list):
        raise _problem(f"is {type(value).__name__}, not a list of strings")
    out: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(value, start=1):
        text = _item_text(item)
        if text is None:
            raise _problem(f"item {index} is {type(item).__name__}, not text")
        text = _BULLET_RE.sub("", text).strip()
        if tags:
            text = text.lstrip("#").strip()
        key = text.casefold()
        if not text or (tags and key in seen):
            continue
        seen.add(key)
        out.append(text)
    return out


def _text(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(v.strip() for v in value)
    if not isinstance(value, str):
        raise _problem(f"is {type(value).__name__}, not text")
    return value.strip()


def _priority(value: Any) -> Any:
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in PRIORITIES:
        raise _problem(f"must be one of {', '.join(PRIORITIES)} (got {json.dumps(value)})")
    return text


def _hours(value: Any) -> float:
    hours: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        hours = float(value)
    elif isinstance(value, str):
        match = _HOURS_RE.match(value.strip())
        if match:
            hours = float(match.group(1))
            if (match.group(2) or "h").lower().startswith("m"):
                hours /= 60.0
    if hours is None or not math.isfinite(hours):
        raise _problem(f"is not a number of hours (got {json.dumps(value)})")
    return hours


def _keys(*names: str) -> AliasChoices:
    """The keys a field is read from: its name first (an exact key wins), then the other
    spellings models use (after camelCase → snake_case)."""
    return AliasChoices(*names)


TextList = Annotated[list[str], BeforeValidator(partial(_texts, tags=False))]
TagList = Annotated[list[str], BeforeValidator(partial(_texts, tags=True))]
Text = Annotated[str, BeforeValidator(_text)]
# Constraints come before the validator, so they apply to the converted value and show in
# the schema as JSON Schema's own keywords (minLength, minimum, maximum).
NonEmptyText = Annotated[str, Field(min_length=1), BeforeValidator(_text)]
Hours = Annotated[float, Field(ge=0, le=MAX_ESTIMATED_HOURS), BeforeValidator(_hours)]

# Extra keys are ignored when reading a reply, but the schema asks for none.
_RESULT_CONFIG = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


@pydantic_dataclass(frozen=True, slots=True, config=_RESULT_CONFIG)
class TaskSuggestions:
    """The task assistant's answer."""

    subtasks: Annotated[
        TextList,
        Field(
            description="Concrete next actions, in order, each one short line",
            validation_alias=_keys("subtasks", "sub_tasks", "steps"),
        ),
    ]
    labels: Annotated[
        TagList,
        Field(
            description="A few short lower-case labels for filing the task",
            validation_alias=_keys("labels", "tags"),
        ),
    ]
    priority: Annotated[Priority, BeforeValidator(_priority)]
    priority_reasoning: Annotated[
        Text,
        Field(
            description="One sentence: why this priority",
            validation_alias=_keys("priority_reasoning", "priority_reason", "reasoning"),
        ),
    ]
    estimated_hours: Annotated[
        Hours,
        Field(
            description="Total time to finish the task, in hours",
            validation_alias=_keys(
                "estimated_hours",
                "estimate_hours",
                "estimated_time_hours",
                "time_estimate_hours",
                "hours",
            ),
        ),
    ]


@pydantic_dataclass(frozen=True, slots=True, config=_RESULT_CONFIG)
class EventSuggestions:
    """The event assistant's answer."""

    summary: Annotated[NonEmptyText, Field(description="One or two sentences about the event")]
    preparation_steps: Annotated[
        TextList,
        Field(
            description="What to do before the event, in order",
            validation_alias=_keys(
                "preparation_steps", "preparation", "prep_steps", "preparation_tasks"
            ),
        ),
    ]
    suggestions: Annotated[
        TextList, Field(description="Other useful suggestions (agenda, reminders, travel...)")
    ]


@pydantic_dataclass(frozen=True, slots=True, config=_RESULT_CONFIG)
class NoteSummary:
    """The note assistant's answer."""

    summary: Annotated[NonEmptyText, Field(description="A short summary of the note")]
    tags: Annotated[
        TagList,
        Field(
            description="A few short lower-case topic tags",
            validation_alias=_keys("tags", "labels"),
        ),
    ]
    extracted_tasks: Annotated[
        TextList,
        Field(
            description="Action items the note mentions, each one short line",
            validation_alias=_keys("extracted_tasks", "tasks", "action_items"),
        ),
    ]


AssistantResult = TaskSuggestions | EventSuggestions | NoteSummary

RESULT_TYPES: dict[AssistantKind, type[AssistantResult]] = {
    "task": TaskSuggestions,
    "event": EventSuggestions,
    "note": NoteSummary,
}

# What each kind's result is called in messages ("could not be read as task suggestions").
RESULT_NAMES: dict[AssistantKind, str] = {
    "task": "task suggestions",
    "event": "event suggestions",
    "note": "a note summary",
}

_ADAPTERS: dict[AssistantKind, TypeAdapter[Any]] = {
    kind: TypeAdapter(cls) for kind, cls in RESULT_TYPES.items()
}


def result_to_dict(result: AssistantResult) -> dict[str, Any]:
    """The result as a JSON-able dict with the schema's keys."""
    return asdict(result)


# ---- schemas ---------------------------------------------------------------------------------


class _PlainSchema(GenerateJsonSchema):
    """The JSON schema without pydantic's titles and the class docstring: what the model
    reads in the prompt should be only what it has to fill."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def generate(self, schema: Any, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        out = super().generate(schema, mode)
        out.pop("title", None)
        out.pop("description", None)
        return {"type": out.pop("type", "object"), **out}


SCHEMAS: dict[AssistantKind, dict[str, Any]] = {
    kind: adapter.json_schema(schema_generator=_PlainSchema) for kind, adapter in _ADAPTERS.items()
}
TASK_SCHEMA = SCHEMAS["task"]
EVENT_SCHEMA = SCHEMAS["event"]
NOTE_SCHEMA = SCHEMAS["note"]


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


def build_request(
    kind: str, data: AssistantInput, ref: ModelRef, *, json_mode: JsonMode = "schema"
) -> ChatRequest:
    """The router request for one assistant run: its own endpoint name, structured output
    asked for (``json_mode``: the schema, JSON mode, or the prompt alone), and no fallback
    route (the user picked this assistant's model)."""
    k = check_kind(kind)
    return ChatRequest(
        ref,
        build_messages(k, data),
        endpoint_name=f"assist:{k}",
        options=ChatOptions(
            json_schema=SCHEMAS[k], temperature=ASSIST_TEMPERATURE, json_mode=json_mode
        ),
        use_fallbacks=False,
    )


_MODE_NAMES: dict[JsonMode, str] = {
    "schema": "a JSON schema",
    "json": "JSON mode",
    "prompt": "the prompt alone",
}


def _fallback_note(rejected: list[JsonMode], used: JsonMode) -> str:
    """``The server does not take a JSON schema as the output format; JSON mode was used``:
    which way of asking for JSON the server refused, and which one answered."""
    names = [_MODE_NAMES[m] for m in rejected]
    refused = (
        f"takes neither {' nor '.join(names)}" if len(names) > 1 else f"does not take {names[0]}"
    )
    then = (
        "the prompt alone asked for the JSON"
        if used == "prompt"
        else f"{_MODE_NAMES[used]} was used"
    )
    return f"The server {refused} as the output format; {then}"


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


def _normalise_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """camelCase, kebab-case and spaced keys as snake_case; a null value as no value."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or value is None:
            continue
        norm = _CAMEL_RE.sub(r"_\1", key.strip()).lower().replace("-", "_").replace(" ", "_")
        # An exact key wins over another spelling of the same key.
        if norm not in out or key == norm:
            out[norm] = value
    return out


@cache
def _accepted_keys(kind: AssistantKind) -> frozenset[str]:
    """Every key the ``kind`` result reads: its fields' names and their other spellings."""
    keys: set[str] = set()
    # Every pydantic dataclass has __pydantic_fields__ (name → FieldInfo).
    fields: dict[str, FieldInfo] = cast(Any, RESULT_TYPES[kind]).__pydantic_fields__
    for name, info in fields.items():
        keys.add(name)
        if isinstance(info.validation_alias, AliasChoices):
            keys.update(c for c in info.validation_alias.choices if isinstance(c, str))
    return frozenset(keys)


def _unwrap(kind: AssistantKind, obj: dict[str, Any]) -> dict[str, Any]:
    """``{"result": {...}}`` → the inner object, when the outer one has none of our keys."""
    norm = _normalise_keys(obj)
    if norm.keys() & _accepted_keys(kind):
        return norm
    inner = [v for v in obj.values() if isinstance(v, dict)]
    if len(obj) == 1 and len(inner) == 1:
        return _normalise_keys(inner[0])
    return norm


def _sentence(exc: ValidationError) -> str:
    """The first problem pydantic found (fields in order, as a person would check them), as
    one sentence naming the field."""
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "object"
    kind, value = first["type"], first.get("input")
    if kind == "missing":
        text = f'The reply has no "{field}" field'
    elif kind == _REPLY_PROBLEM:
        text = f'The reply\'s "{field}" {(first.get("ctx") or {}).get("phrase")}'
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        got = f"{value:g}" if isinstance(value, int | float) else json.dumps(value, default=str)
        text = f'The reply\'s "{field}" is out of range (got {got})'
    elif kind in ("string_too_short", "too_short"):
        text = f'The reply\'s "{field}" is {"empty" if not value else "too short"}'
    else:
        detail = " ".join(str(first["msg"]).split())
        text = f'The reply\'s "{field}" is not valid ({detail[:1].lower()}{detail[1:]})'
    return text


def parse_result(kind: str, text: str) -> AssistantResult:
    """Validate a model's reply into the ``kind`` assistant's result.

    Tolerant of how models wrap JSON (code fences, prose around it, camelCase keys, a
    one-key wrapper object) and of obvious slips (priority case, "2.5 hours"), strict about
    content: a missing or mistyped field raises AssistantParseError with one sentence naming
    the field, and the raw text kept.
    """
    k = check_kind(kind)
    obj = _unwrap(k, extract_json_object(text))
    try:
        result: AssistantResult = _ADAPTERS[k].validate_python(obj)
    except ValidationError as exc:
        raise AssistantParseError(_sentence(exc), text) from None
    return result


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
        json_mode: how the JSON was asked for: the schema as the format, JSON mode (the
            server rejected the schema), or the prompt alone (it rejected JSON mode too).
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
    json_mode: JsonMode = "schema"

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
    started: Started | None = None
    terminal: Finished | Failed | Cancelled | None = None
    mode: JsonMode = "schema"
    fell_back: list[JsonMode] = []
    for mode in JSON_MODES:
        request = build_request(k, data, ref, json_mode=mode)
        started, terminal = None, None
        async for event in router.stream(request, cancel):
            if isinstance(event, Started):
                started = event
            elif isinstance(event, Finished | Failed | Cancelled):
                terminal = event
        if not (
            isinstance(terminal, Failed)
            and terminal.error.kind is ErrorKind.FORMAT_REJECTED
            and not terminal.partial_text
        ):
            break
        # Some Ollama-compatible servers take only format "json", some no format at all:
        # the schema is in the prompt either way, and the reply is validated the same.
        fell_back.append(mode)
    fallback_notes = (_fallback_note(fell_back, mode),) if fell_back else ()
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
            terminal.notes + fallback_notes,
            parse_error=parse_error,
            usage=terminal.usage,
            json_mode=mode,
        )
    if isinstance(terminal, Failed):
        return AssistantOutcome(
            k,
            ref,
            None,
            terminal.partial_text,
            terminal.answered or started_answered,
            locality,
            terminal.notes + fallback_notes,
            error=terminal.error,
            usage=terminal.usage,
            json_mode=mode,
        )
    if isinstance(terminal, Cancelled):
        return AssistantOutcome(
            k,
            ref,
            None,
            terminal.partial_text,
            terminal.answered or started_answered,
            locality,
            (started.notes if started else ()) + fallback_notes,
            usage=terminal.usage,
            cancelled=True,
            json_mode=mode,
        )
    # The router promises a terminal event; if that promise breaks, say so plainly.
    return AssistantOutcome(
        k,
        ref,
        None,
        "",
        error=RouteError(ErrorKind.INTERNAL, "The request ended without an answer or an error"),
    )
