"""``halext-desktop conversations|export|import``, and the ``ask`` options that go with a
conversation: ``--system``, ``--temperature``, ``--top-p``, ``--num-ctx``, ``--max-tokens``,
``--seed`` (kept with the conversation, as the window's header keeps them) and
``--attach FILE`` (repeatable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from halext_desktop.app.cli_output import safe_line

if TYPE_CHECKING:
    from halext_desktop.app.core import Core
    from halext_desktop.storage.attachments import Prepared
    from halext_desktop.storage.chat_settings import ChatSettings

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

# ask flag -> ChatSettings field
SETTING_FLAGS = {
    "system": "system",
    "temperature": "temperature",
    "top_p": "top_p",
    "num_ctx": "num_ctx",
    "max_tokens": "max_tokens",
    "seed": "seed",
}


def add_ask_arguments(a: argparse.ArgumentParser) -> None:
    """The conversation options of ``ask``."""
    a.add_argument("--system", metavar="TEXT", help="system prompt (kept with the conversation)")
    a.add_argument("--temperature", type=float, metavar="X", help="0 to 2")
    a.add_argument("--top-p", type=float, metavar="X", help="0 to 1")
    a.add_argument("--num-ctx", type=int, metavar="N", help="context length (Ollama only)")
    a.add_argument("--max-tokens", type=int, metavar="N", help="longest reply, in tokens")
    a.add_argument("--seed", type=int, metavar="N", help="for repeatable replies")
    a.add_argument(
        "--preset",
        metavar="NAME",
        help="start from a saved preset's system prompt and parameters (the flags override it)",
    )
    a.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="attach a file (repeatable): images go to vision models, text files into the message",
    )


def add_conversation_parsers(sub: Any) -> None:
    c = sub.add_parser("conversations", help="list the conversations (id, title, model)")
    c.add_argument("--json", action="store_true", help="print JSON")
    e = sub.add_parser("export", help="a conversation (or all) to Markdown or JSON")
    e.add_argument("id", nargs="?", type=int, metavar="ID", help="conversation id")
    e.add_argument("--all", action="store_true", help="every conversation")
    e.add_argument("--format", choices=["markdown", "json"], default="markdown")
    e.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE (Markdown: attachments go to FILE's _files folder beside it)",
    )
    i = sub.add_parser("import", help="import a JSON export as new conversation(s)")
    i.add_argument("file", metavar="FILE")


def settings_of(args: argparse.Namespace, current: ChatSettings) -> ChatSettings | None:
    """The conversation's settings (or the ``--preset``'s) with the ``ask`` flags given
    applied; None when neither was given. Raises ValueError (a setting out of range)
    before anything is sent."""
    changes = {
        field: getattr(args, flag)
        for flag, field in SETTING_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    if not changes:
        return current if getattr(args, "preset", None) else None
    if changes.get("system") == "":
        changes["system"] = None  # --system "" clears it
    return current.merged(**changes)


def attachments_of(args: argparse.Namespace) -> list[Prepared]:
    """The ``--attach`` files. Raises AttachmentError (a ValueError: one line) first."""
    from halext_desktop.storage.attachments import prepare_file

    return [prepare_file(path) for path in args.attach or []]


def _conversations(core: Core, args: argparse.Namespace) -> int:
    rows = asyncio.run(core.conversations.list())
    if args.json:
        data = [
            {
                "id": r.id,
                "title": r.title,
                "model": r.default_model_id,
                "messages": r.message_count,
                "created_at": r.created_at.isoformat(),
                "updated_at": r.updated_at.isoformat(),
            }
            for r in rows
        ]
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("No conversations yet.", file=sys.stderr)
        return EXIT_OK
    width = max(len(str(r.id)) for r in rows)
    for r in rows:
        when = r.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
        model = r.default_model_id or "-"
        print(safe_line(f"{r.id:>{width}}  {when}  {r.message_count:>4}  {model}  {r.title}"))
    return EXIT_OK


def _export(core: Core, args: argparse.Namespace) -> int:
    from halext_desktop.storage import transfer

    if args.all == (args.id is not None):
        print("halext-desktop: export needs a conversation ID or --all", file=sys.stderr)
        return EXIT_USAGE

    async def gather() -> list[transfer.Exported]:
        if args.all:
            return await transfer.export_all(core.conversations)
        return [await transfer.export_conversation(core.conversations, args.id)]

    try:
        exports = asyncio.run(gather())
    except LookupError as exc:
        print(f"halext-desktop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    target = Path(args.output) if args.output else None
    if args.format == "json":
        text = transfer.to_json(transfer.document(exports, all_of_them=args.all))
        if target is None:
            sys.stdout.write(text)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"Wrote {target}", file=sys.stderr)
        return EXIT_OK
    if target is None:
        sys.stdout.write("\n\n---\n\n".join(transfer.to_markdown(e) for e in exports))
        if any(e.files for e in exports):
            print(
                "halext-desktop: attachments are named, not included; use -o FILE to write "
                "them beside it, or --format json",
                file=sys.stderr,
            )
        return EXIT_OK
    written = transfer.write_markdown(exports, target)
    extra = f" and {len(written) - 1} attachment file(s)" if len(written) > 1 else ""
    print(f"Wrote {target}{extra}", file=sys.stderr)
    return EXIT_OK


def _import(core: Core, args: argparse.Namespace) -> int:
    from halext_desktop.storage import transfer

    try:
        doc = transfer.read_document(args.file)
        rows = asyncio.run(transfer.import_document(core.conversations, doc))
    except transfer.BadExport as exc:
        print(f"halext-desktop: {safe_line(str(exc))}", file=sys.stderr)
        return EXIT_FAIL
    for r in rows:
        print(safe_line(f"Imported conversation {r.id}: {r.title} ({r.message_count} messages)"))
    return EXIT_OK


HANDLERS = {"conversations": _conversations, "export": _export, "import": _import}


async def preset_of(core: Core, name: str) -> ChatSettings:
    """The saved preset ``name``. Raises ValueError naming the presets there are."""
    presets = dict(await core.conversations.presets())
    if name not in presets:
        known = ", ".join(sorted(presets)) or "none saved yet (the window's header saves them)"
        raise ValueError(f"no preset named {name!r}; presets: {known}")
    return presets[name]
