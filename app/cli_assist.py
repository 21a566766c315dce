"""``halext-desktop assist task|event|note``: the assistants from the command line.

Wired into app/cli.py by two lines: ``add_assist_parser(sub)`` (app/cli_assist_args.py) in
the parser and ``run_assist`` in the handler table, imported only when ``assist`` runs (the
assistants' pydantic models are not needed by other commands). Output is sections with
bullet lists, or one JSON object with ``--json``. A reply that cannot be read still prints
its raw text on stdout (nothing is lost) and exits 1 with one clear line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from halext_desktop.app.cli_output import explain, safe_line, usage_json
from halext_desktop.routing.assistants import (
    AssistantInput,
    AssistantInputError,
    AssistantOutcome,
    EventInput,
    EventSuggestions,
    NoteInput,
    NoteSummary,
    TaskInput,
    TaskSuggestions,
    check_kind,
    result_to_dict,
    run_assistant,
    validate_input,
)
from halext_desktop.routing.display import chip_label
from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.router import CancelToken

if TYPE_CHECKING:
    from halext_desktop.app.core import Core

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


def _err(msg: str, stream: TextIO | None = None) -> None:
    print(f"halext-desktop: {safe_line(msg)}", file=stream or sys.stderr)


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 time from the command line; naive times are local time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AssistantInputError(
            f"--{what} {text!r} is not an ISO 8601 time (e.g. 2025-11-24T14:00 or "
            "2025-11-24T14:00+01:00)"
        ) from None
    # The prompt names the weekday and the offset, so make the zone explicit.
    return moment.astimezone() if moment.tzinfo is None else moment


def input_from_args(args: argparse.Namespace, stdin: TextIO | None = None) -> AssistantInput:
    """Build the assistant input from parsed arguments; AssistantInputError when unusable."""
    kind = check_kind(args.assist_kind)
    data: AssistantInput
    if kind == "task":
        data = TaskInput(args.title, args.description or "")
    elif kind == "event":
        start = parse_time(args.start, "start")
        end = parse_time(args.end, "end") if args.end else None
        data = EventInput(args.title, start, end, args.description or "")
    else:
        data = NoteInput(_note_text(args, stdin or sys.stdin))
    validate_input(kind, data)
    return data


def _note_text(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.stdin not in (None, "-"):
        raise AssistantInputError(f"unexpected argument {args.stdin!r}: use --text, --file or -")
    given = [x is not None for x in (args.text, args.file, args.stdin)]
    if sum(given) != 1:
        raise AssistantInputError("give the note with exactly one of --text T, --file F or -")
    if args.text is not None:
        return str(args.text)
    if args.stdin == "-" or args.file == "-":
        return stdin.read()
    path = Path(args.file).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AssistantInputError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise AssistantInputError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise AssistantInputError(f"cannot read {path}: {exc.strerror or exc}") from None


def run_assist(core: Core, args: argparse.Namespace) -> int:
    """Entry point for ``halext-desktop assist ...``; returns the exit code."""
    try:
        data = input_from_args(args)
    except AssistantInputError as exc:
        _err(str(exc))
        return EXIT_USAGE
    return asyncio.run(_closing(core, _assist(core, args, data, sys.stdout, sys.stderr)))


async def _closing(core: Core, coro: Coroutine[Any, Any, int]) -> int:
    try:
        return await coro
    finally:
        await core.aclose()


async def _assist(
    core: Core, args: argparse.Namespace, data: AssistantInput, out: TextIO, err: TextIO
) -> int:
    try:
        listing = None
        if not args.model and not core.settings.default_model:
            listing = await core.list_models()
        ref = core.resolve_model(args.model, listing)
    except RouteError as exc:
        _err(explain(core, exc), err)
        return EXIT_FAIL

    cancel = CancelToken()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        # Ctrl+C stops the request cleanly (the stream is closed, a usage row is written).
        loop.add_signal_handler(signal.SIGINT, cancel.cancel)
    try:
        outcome = await run_assistant(core.router, args.assist_kind, data, ref, cancel)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
    # A route failure is worded like every other CLI failure (an internal one names the log).
    problem = explain(core, outcome.error) if outcome.error is not None else outcome.problem()
    return report(outcome, problem, as_json=args.json, out=out, err=err)


# ---- output -----------------------------------------------------------------------------------


def report(
    outcome: AssistantOutcome, problem: str | None, *, as_json: bool, out: TextIO, err: TextIO
) -> int:
    """Print ``outcome`` (human sections or JSON) and return the exit code.

    ``problem`` is the one line saying why there is no result (``outcome.problem()``, or the
    CLI's wording of the route error); None when there is a result.
    """
    if as_json:
        print(json.dumps(outcome_json(outcome, problem), indent=2, ensure_ascii=False), file=out)
    else:
        if outcome.answered is not None and outcome.locality is not None:
            print(safe_line(chip_label(outcome.answered, outcome.locality)), file=err)
        for note in outcome.notes:
            print(safe_line(f"⚠ {note}"), file=err)
        if outcome.result is not None:
            out.write(format_result(outcome.result))
        elif outcome.raw_text:
            # Unreadable or partial: the raw reply goes to stdout so nothing is lost.
            out.write(outcome.raw_text.rstrip("\n") + "\n")
    if outcome.result is not None:
        return EXIT_OK
    if outcome.cancelled:
        _err("stopped" + ("; the partial reply is printed above" if outcome.raw_text else ""), err)
        return EXIT_CANCELLED
    if outcome.parse_error is not None and not as_json:
        problem = f"{problem} (the raw reply is printed above)"
    _err(problem or "the assistant produced no result", err)
    return EXIT_FAIL


def _indent(text: str, prefix: str) -> str:
    # Continuation lines of a multi-line item line up under its first line.
    return text.replace("\n", "\n" + " " * len(prefix))


def _bullets(title: str, items: list[str]) -> list[str]:
    lines = [title]
    lines += [f"  • {_indent(item, '  • ')}" for item in items] if items else ["  (none)"]
    return lines


def _hours(hours: float) -> str:
    if 0 < hours < 1:
        return f"{round(hours * 60)} min"
    return f"{hours:g} h"


def format_result(result: TaskSuggestions | EventSuggestions | NoteSummary) -> str:
    """The human form: titled sections with bullet lists, ending with a newline."""
    lines: list[str] = []
    if isinstance(result, TaskSuggestions):
        lines += _bullets("Subtasks", result.subtasks)
        lines += [""] + _bullets("Labels", result.labels)
        reason = f" — {result.priority_reasoning}" if result.priority_reasoning else ""
        lines += ["", f"Priority: {result.priority}{reason}"]
        lines += [f"Estimate: {_hours(result.estimated_hours)}"]
    elif isinstance(result, EventSuggestions):
        lines += ["Summary", f"  {_indent(result.summary, '  ')}", ""]
        lines += _bullets("Preparation", result.preparation_steps)
        lines += [""] + _bullets("Suggestions", result.suggestions)
    else:
        lines += ["Summary", f"  {_indent(result.summary, '  ')}", ""]
        lines += _bullets("Tags", result.tags)
        lines += [""] + _bullets("Tasks", result.extracted_tasks)
    return "\n".join(lines) + "\n"


def outcome_json(outcome: AssistantOutcome, problem: str | None) -> dict[str, Any]:
    """The ``--json`` object: the result plus what was asked, what answered, and usage;
    ``problem`` becomes its "error" when there is no result."""
    if outcome.result is not None:
        status = "ok"
    elif outcome.cancelled:
        status = "cancelled"
    elif outcome.parse_error is not None:
        status = "unparseable"
    else:
        status = "error"
    obj: dict[str, Any] = {
        "kind": outcome.kind,
        "status": status,
        "result": result_to_dict(outcome.result) if outcome.result is not None else None,
        "model_asked": str(outcome.requested),
        "model_answered": str(outcome.answered) if outcome.answered else None,
        "locality": outcome.locality.value if outcome.locality else None,
        "notes": list(outcome.notes),
        # How the JSON was asked for: "schema", "json" (the server rejected the schema) or
        # "prompt" (it rejected JSON mode too).
        "json_mode": outcome.json_mode,
        "usage": usage_json(outcome.usage) if outcome.usage is not None else None,
    }
    if outcome.result is None:
        obj["error"] = problem
        obj["raw_text"] = outcome.raw_text
    return obj
