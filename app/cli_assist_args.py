"""The ``assist`` subcommand's arguments, apart from app/cli_assist.py so that building the
parser (every command does) does not import the assistants."""

from __future__ import annotations

import argparse
from typing import Any


def add_assist_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``assist`` with its ``task``, ``event`` and ``note`` subcommands to ``subparsers``
    (the object ``ArgumentParser.add_subparsers()`` returned)."""
    assist = subparsers.add_parser(
        "assist",
        help="task / event / note assistants (structured suggestions from a model)",
        description="Ask a model for structured suggestions. Uses --model, else the default model.",
    )
    kinds = assist.add_subparsers(dest="assist_kind", metavar="KIND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", "-m", help="model reference, e.g. ollama/llama3.1:8b")
        p.add_argument(
            "--json", action="store_true", help="print the result, models and usage as JSON"
        )

    task = kinds.add_parser(
        "task", help="title and description → subtasks, labels, priority, estimate"
    )
    task.add_argument("--title", "-t", required=True, help="the task's title")
    task.add_argument("--description", "-d", default="", help="more about the task")
    common(task)

    event = kinds.add_parser("event", help="title, time, description → preparation steps")
    event.add_argument("--title", "-t", required=True, help="the event's title")
    event.add_argument(
        "--start", required=True, help="start time, ISO 8601 (2025-11-24T14:00, local time)"
    )
    event.add_argument("--end", help="end time, ISO 8601")
    event.add_argument("--description", "-d", default="", help="more about the event")
    common(event)

    note = kinds.add_parser("note", help="text → summary, tags, extracted tasks")
    source = note.add_mutually_exclusive_group()
    source.add_argument("--text", help="the note's text")
    source.add_argument("--file", "-f", help="read the note from this file ('-' = stdin)")
    note.add_argument("stdin", nargs="?", metavar="-", help="'-' reads the note from stdin")
    common(note)
    return assist
