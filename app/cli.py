"""``halext-desktop``: the desktop window, or a subcommand over the same router and storage.

Every failure prints one clear line on stderr and exits non-zero; nothing waits on the
network before a subcommand actually needs it.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:
    # At run time these come with ``_load_commands``: the window's start (``gui``, or no
    # command) must not wait for asyncio, the routes and the commands' helpers. Core is
    # imported where it is built (main): app.core pulls in every backend, and
    # `halext-desktop config` must not wait for that.
    import asyncio

    from halext_desktop.app.cli_assist_args import add_assist_parser
    from halext_desktop.app.cli_conversations import HANDLERS as CONVERSATION_HANDLERS
    from halext_desktop.app.cli_conversations import (
        add_ask_arguments,
        add_conversation_parsers,
        attachments_of,
        preset_of,
        settings_of,
    )
    from halext_desktop.app.cli_models import HANDLERS as MODEL_HANDLERS
    from halext_desktop.app.cli_models import add_model_parsers
    from halext_desktop.app.cli_output import explain, safe_line, safe_text, usage_json
    from halext_desktop.app.core import Core
    from halext_desktop.routing.display import chip_label
    from halext_desktop.routing.errors import ErrorKind, RouteError
    from halext_desktop.routing.router import CancelToken
    from halext_desktop.routing.types import Cancelled, Delta, Failed, Finished, Started
    from halext_desktop.storage.chat_settings import ChatSettings
    from halext_desktop.storage.settings import Settings, SettingsError

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130
# How long a command waits, at its end, for a database another program keeps locked before
# it keeps the waiting rows in the spool file (written at the next start).
EXIT_WAIT_S = 2.0
MAX_ID = 2**63 - 1  # SQLite's largest integer


def _conversation_id(text: str) -> int:
    """``--conversation``: a positive whole number SQLite can hold."""
    t = text.strip()
    if not t.isdigit() or len(t) > 19 or not 1 <= int(t) <= MAX_ID:
        raise argparse.ArgumentTypeError(
            f"{safe_line(text)!r} is not a conversation id (a whole number from 1 to {MAX_ID}; "
            "see the ids with `halext-desktop ask --json`)"
        )
    return int(t)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="halext-desktop",
        description="Chat with halext and local Ollama models. With no command, opens the window.",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="log everything (also HALEXT_DEBUG=1); the log file is in the data folder",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    m = sub.add_parser("models", help="list every model the configured routes offer")
    m.add_argument("--json", action="store_true", help="print JSON")

    a = sub.add_parser("ask", help="send one prompt and stream the reply")
    a.add_argument("prompt", nargs="+", help="the message ('-' reads it from stdin)")
    a.add_argument("--model", "-m", help="model reference, e.g. ollama/llama3.1:8b")
    a.add_argument(
        "--conversation", "-c", type=_conversation_id, help="continue this conversation id"
    )
    a.add_argument("--json", action="store_true", help="print one JSON object at the end")
    a.add_argument("--no-fallback", action="store_true", help="do not try the fallback models")
    add_ask_arguments(a)

    li = sub.add_parser("login", help="sign in to halext (token goes to the OS keyring)")
    li.add_argument("--username", "-u")
    li.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    li.add_argument("--remember", action="store_true", help="also keep the password in the keyring")

    sub.add_parser("logout", help="forget the halext token and any remembered password")

    u = sub.add_parser("usage", help="requests, latency and error rate by model")
    u.add_argument("--since", default="7d", help="24h, 7d, 30d or all (default 7d)")
    u.add_argument("--json", action="store_true")

    c = sub.add_parser("config", help="read or change settings")
    c.add_argument("action", choices=["get", "set", "list", "reset"])
    c.add_argument("key", nargs="?")
    c.add_argument("value", nargs="?")

    g = sub.add_parser("gui", help="open the desktop window (the default)")
    g.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="files to put in the message box (what a file manager passes on 'Open with')",
    )
    add_assist_parser(sub)
    add_model_parsers(sub)
    add_conversation_parsers(sub)
    return p


def _command_names(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _err(msg: str) -> None:
    """One line on stderr, made safe for a terminal (what servers say can hold escapes)."""
    print(f"halext-desktop: {safe_line(msg)}", file=sys.stderr)


def _desktop_argv(argv: list[str], commands: Sequence[str]) -> list[str]:
    """What a desktop environment passes (``Exec=halext-desktop %U``): files or URLs with no
    command. They mean "open the window with these", not an unknown command."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first in commands:
        return argv
    # A mistyped command stays an error; only what names a file or URL opens the window.
    if "://" not in first and not os.path.exists(first):
        return argv
    options = [a for a in argv if a.startswith("-")]
    return [*options, "gui", *[a for a in argv if not a.startswith("-")]]


def _load_commands() -> None:
    """Import what the commands (and the full argument parser) use, as module globals."""
    global SettingsError  # noqa: PLW0603
    from halext_desktop.storage.settings import SettingsError

    global asyncio, add_assist_parser, MODEL_HANDLERS, add_model_parsers  # noqa: PLW0603
    global explain, safe_line, safe_text, usage_json, chip_label, ErrorKind  # noqa: PLW0603
    global RouteError, CancelToken, Cancelled, Delta, Failed, Finished, Started  # noqa: PLW0603
    global CONVERSATION_HANDLERS, add_ask_arguments, add_conversation_parsers  # noqa: PLW0603
    global attachments_of, preset_of, settings_of, ChatSettings  # noqa: PLW0603
    import asyncio

    from halext_desktop.app.cli_assist_args import add_assist_parser
    from halext_desktop.app.cli_conversations import HANDLERS as CONVERSATION_HANDLERS
    from halext_desktop.app.cli_conversations import (
        add_ask_arguments,
        add_conversation_parsers,
        attachments_of,
        preset_of,
        settings_of,
    )
    from halext_desktop.app.cli_models import HANDLERS as MODEL_HANDLERS
    from halext_desktop.app.cli_models import add_model_parsers
    from halext_desktop.app.cli_output import explain, safe_line, safe_text, usage_json
    from halext_desktop.routing.display import chip_label
    from halext_desktop.routing.errors import ErrorKind, RouteError
    from halext_desktop.routing.router import CancelToken
    from halext_desktop.routing.types import Cancelled, Delta, Failed, Finished, Started
    from halext_desktop.storage.chat_settings import ChatSettings


def _window_files(argv: list[str]) -> list[str] | None:
    """The files to open when ``argv`` plainly asks for the window (nothing, or ``gui``
    and file names; ``--debug`` anywhere), else None (the full parser decides)."""
    rest = [a for a in argv if a != "--debug"]
    if not rest:
        return []
    if rest[0] == "gui" and not any(a.startswith("-") for a in rest[1:]):
        return rest[1:]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    from halext_desktop.storage.logfile import debug_requested, setup_logging

    raw = list(sys.argv[1:] if argv is None else argv)
    files = _window_files(raw)
    if files is not None:
        # The window: its outline paints before anything the commands need is imported, and
        # before the log file is opened (the window sets logging up once it has painted).
        from halext_desktop.app.gui import main as gui_main

        def log_setup() -> None:
            setup_logging(
                debug="--debug" in raw or debug_requested(), console_level=logging.WARNING
            )

        return gui_main(files=files, log_setup=log_setup)
    _load_commands()
    parser = _parser()
    commands = _command_names(parser)
    args = parser.parse_args(_desktop_argv(raw, commands))
    gui = args.command in (None, "gui")
    # Once, for the whole process. A command prints its own one-line messages (naming the log
    # file when there is more to read), so its console stays quiet unless --debug: a
    # traceback above the line would bury it. The window's console shows warnings. The file
    # keeps INFO and up either way.
    setup_logging(
        debug=args.debug or debug_requested(),
        console_level=logging.WARNING if gui else logging.CRITICAL + 1,
    )
    if gui:
        from halext_desktop.app.gui import main as gui_main

        return gui_main(files=getattr(args, "files", None) or [])
    if args.command == "config":
        return _config(args)

    from halext_desktop.app.core import PLAIN_HTTP_WARN, Core

    # Here, not at the top: the window's start must not wait for SQLAlchemy (storage.db).
    from halext_desktop.storage.db import DatabaseError

    try:
        # A command sends what it is told to, but says so when a password, token or key
        # would cross plain http to another machine (the window asks first instead).
        core = Core(plain_http=PLAIN_HTTP_WARN)
    except Exception as exc:  # a broken settings file, a session folder we cannot write
        _err(str(exc))
        return EXIT_FAIL
    code = EXIT_FAIL
    try:
        if core.settings.load_warning:
            _err(core.settings.load_warning)
        for line in (core.settings.env_warning or "").splitlines():
            _err(line)
        if args.command in ("models", "ask", "login", "assist"):
            for line in core.plain_http_warnings(signing_in=args.command == "login"):
                _err(line)
        try:
            core.wait_open()
        except DatabaseError as exc:  # damaged, locked, read-only: one line, no traceback
            _err(str(exc))
            return EXIT_FAIL
        handler = {
            "models": _models,
            "ask": _ask,
            "login": _login,
            "logout": _logout,
            "usage": _usage,
            "assist": _assist,
            **MODEL_HANDLERS,
            **CONVERSATION_HANDLERS,
        }[args.command]
        code = handler(core, args)
        return code
    except RouteError as exc:
        _err(explain(core, exc))
        return EXIT_FAIL
    except (SettingsError, ValueError) as exc:
        _err(str(exc))
        code = EXIT_USAGE
        return code
    except KeyboardInterrupt:
        # Ctrl+C outside a streaming reply (listing models, waiting for a first byte
        # before anything was stored): nothing to keep, but no traceback either.
        _err("interrupted")
        return EXIT_CANCELLED
    except BrokenPipeError:
        # `halext-desktop models | head`: the reader left; stay quiet like other tools.
        _silence_stdout()
        return EXIT_OK
    except DatabaseError as exc:
        _err(str(exc))
        return EXIT_FAIL
    finally:
        _close(core)


def run() -> None:
    """The ``halext-desktop`` command (and ``python -m halext_desktop``): ``main``, then the
    process ends — for a command, at once.

    Tearing the interpreter down (every module and object: SQLAlchemy's, pydantic's...)
    costs a command 0.1–0.2 s after its work is done, with nothing left to clean up by
    then: the database is closed and its files written, the owner thread joined. So once
    the output and the log are flushed, a command leaves with ``os._exit``. The window, or
    a thread still at work (a database that would not close in time), ends the usual way.
    """
    code = main()
    _leave(code)


def _leave(code: int) -> None:
    import threading

    if "PySide6" in sys.modules or threading.active_count() > 1:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a reader that left (`| head`): the usual way
        sys.exit(code)
    import logging

    logging.shutdown()  # the log file's last lines
    os._exit(code)


def _close(core: Core) -> None:
    """Close the database, telling the user once if something is kept for the next start."""
    from halext_desktop.storage.store import close_message

    report = core.close(EXIT_WAIT_S)
    message = close_message(report, core.db.path)
    if message:
        _err(message)


def _silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush does not raise again."""
    import os

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# ---- config -------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> int:
    from halext_desktop.storage.settings import Settings

    try:
        settings = Settings.load()
    except Exception as exc:
        _err(str(exc))
        return EXIT_FAIL
    if settings.load_warning:
        _err(settings.load_warning)
    try:
        if args.action == "list":
            for key in settings.keys():  # noqa: SIM118 (Settings is not a dict)
                print(f"{key} = {safe_line(json.dumps(settings.get(key)))}")
            return EXIT_OK
        if args.action == "reset":
            if args.key:
                settings.reset([args.key])  # that key only; an unknown key is refused
                print(f"{args.key} = {json.dumps(settings.get(args.key))} (the default)")
            else:
                settings.reset()
                print("settings restored to their defaults")
            return EXIT_OK
        if not args.key:
            _err(f"config {args.action} needs a KEY; one of: {', '.join(settings.keys())}")
            return EXIT_USAGE
        if args.action == "get":
            value = settings.get(args.key)
            print(safe_line(value) if isinstance(value, str) else json.dumps(value))
            return EXIT_OK
        if args.value is None:
            _err(f"config set {args.key} needs a VALUE ({settings.describe(args.key)})")
            return EXIT_USAGE
        settings.set_from_text(args.key, args.value)
        print(f"{args.key} = {json.dumps(settings.get(args.key))}")
        for line in _plain_http_notes(settings, args.key):
            _err(line)
        return EXIT_OK
    except (SettingsError, KeyError) as exc:
        _err(str(exc).strip("'\""))
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:  # Settings.set writes the file first; the value is unchanged
        _err(f"could not save the settings to {settings.path}: {exc.strerror or exc}")
        return EXIT_FAIL


def _plain_http_notes(settings: Settings, key: str) -> list[str]:
    """Warnings for an address just set that would carry credentials unencrypted."""
    from halext_desktop.routing.backends.http_guard import is_plain_http_remote, plain_http_key

    urls: list[tuple[str, str]] = []
    if key == "halext_url" and settings.halext_url:
        urls.append(("your halext password and token", settings.halext_url))
    elif key == "openai_endpoints":
        urls += [
            (f"the API key of the endpoint {e.name!r}", e.url) for e in settings.openai_endpoints
        ]
    elif key == "ollama_hosts":
        urls += [
            (f"an API key of the Ollama host {h.name!r}", h.url) for h in settings.ollama_hosts
        ]
    return [
        f"warning: {what} would go unencrypted over plain http:// to {plain_http_key(url)}; "
        "use https:// unless you trust every network in between"
        for what, url in urls
        if is_plain_http_remote(url)
    ]


# ---- models -------------------------------------------------------------------------------


def _models(core: Core, args: argparse.Namespace) -> int:
    listing = asyncio.run(_with_close(core, core.list_models()))
    rows: list[dict[str, Any]] = []
    for info in listing.models:
        refusal = core.router.refusal(info.ref)
        rows.append(
            {
                "ref": str(info.ref),
                "route": info.ref.route_id,
                "provider": info.provider,
                "where": info.locality.value,
                "available": info.available and refusal is None,
                "blocked": refusal,
                "size_bytes": info.size_bytes,
                "context_length": info.context_length,
                "node": info.node_name,
            }
        )
    problems = {rid: explain(core, e) for rid, e in listing.errors.items()}
    problems.update({rid: f"skipped: {why}" for rid, why in listing.skipped.items()})
    # Every route failed (not merely skipped by policy): that is a failure, not "0 models".
    failed = not rows and bool(listing.errors)
    if args.json:
        print(json.dumps({"models": rows, "routes": problems}, indent=2))
        return EXIT_FAIL if failed else EXIT_OK
    if rows:
        shown = [{k: safe_line(str(v)) for k, v in r.items()} for r in rows]
        w = max(len(r["ref"]) for r in shown)
        print(f"{'MODEL':<{w}}  {'ROUTE':<14} {'PROVIDER':<9} {'WHERE':<11} AVAILABLE")
        for r, raw in zip(shown, rows, strict=True):
            avail = "yes" if raw["available"] else f"no — {r['blocked'] or 'unavailable'}"
            print(f"{r['ref']:<{w}}  {r['route']:<14} {r['provider']:<9} {r['where']:<11} {avail}")
    for rid, problem in problems.items():
        print(safe_line(f"{rid}: {problem}"), file=sys.stderr)
    if not rows:
        print(f"No models available. {_connect_hint()}", file=sys.stderr)
    return EXIT_FAIL if failed else EXIT_OK


def _connect_hint() -> str:
    from halext_desktop.app.core import CONNECT_HINT

    return CONNECT_HINT


async def _with_close(core: Core, coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    finally:
        await core.aclose()


# ---- ask ----------------------------------------------------------------------------------


def _read_prompt(parts: list[str]) -> str:
    if parts == ["-"]:
        return sys.stdin.read()
    return " ".join(parts)


def _ask(core: Core, args: argparse.Namespace) -> int:
    prompt = _read_prompt(args.prompt)
    if not prompt.strip():
        _err("the prompt is empty")
        return EXIT_USAGE
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        # Python hands undecodable argv/stdin bytes over as lone surrogates, which neither
        # SQLite nor JSON accept: say so before anything is stored or sent.
        _err("the prompt is not valid UTF-8 text; convert it first (e.g. with iconv)")
        return EXIT_USAGE
    return asyncio.run(_with_close(core, _ask_async(core, args, prompt, sys.stdout)))


_SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):
    _SIGNAL_NAMES[signal.SIGHUP] = "SIGHUP"


async def _ask_async(core: Core, args: argparse.Namespace, prompt: str, out: TextIO) -> int:
    from halext_desktop.storage.db import DatabaseDamaged
    from halext_desktop.storage.turns import TurnBegun, TurnSaved

    conv = None
    cid: int | None = None
    if args.conversation is not None:
        conv = await core.conversations.get(args.conversation)
        if conv is None:
            _err(f"no conversation with id {args.conversation}")
            return EXIT_USAGE
        cid = conv.id
    # Without --model, a conversation goes on with its own model (as in the window), not
    # the global default.
    chosen = args.model or (conv.default_model_id if conv is not None else None)
    listing = None
    if not chosen and not core.settings.default_model:
        listing = await core.list_models()
    ref = core.resolve_model(chosen, listing)
    # The files and the settings are checked before anything is stored or sent.
    attachments = attachments_of(args)
    current = await core.conversations.chat_settings(cid) if cid is not None else None
    if args.preset:
        current = await preset_of(core, args.preset)
    settings = settings_of(args, current or ChatSettings())

    cancel = CancelToken()
    loop = asyncio.get_running_loop()
    stopped_by: list[int] = []

    def on_signal(signum: int) -> None:
        # SIGTERM/SIGHUP (a closed terminal, a service manager): stop the reply and save
        # what arrived, marked interrupted, before exiting.
        stopped_by.append(signum)
        core.turns.interrupt_all()
        cancel.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, cancel.cancel)
        for signum in _SIGNAL_NAMES:
            loop.add_signal_handler(signum, on_signal, signum)

    started: Started | None = None
    terminal: Finished | Failed | Cancelled | None = None
    saved: TurnSaved | None = None
    streamed = False
    tty = out.isatty()
    stream = core.turns.send(
        cid,
        prompt,
        ref,
        cancel=cancel,
        use_fallbacks=not args.no_fallback,
        attachments=attachments,
        settings=settings,
    )
    try:
        async for event in stream:
            if isinstance(event, TurnBegun):
                cid = event.assistant.conversation_id
            elif isinstance(event, Started):
                started = event
                if not args.json:
                    print(safe_line(chip_label(event.answered, event.locality)), file=sys.stderr)
                    for note in event.notes:
                        print(safe_line(f"⚠ {note}"), file=sys.stderr)
            elif isinstance(event, Delta):
                if not args.json:
                    out.write(safe_text(event.text) if tty else event.text)
                    out.flush()
                    streamed = True
            elif isinstance(event, Finished | Failed | Cancelled):
                terminal = event
            elif isinstance(event, TurnSaved):
                saved = event
    except DatabaseDamaged as exc:
        _err(f"{exc} Your message was not sent.")
        return EXIT_FAIL
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
            for signum in _SIGNAL_NAMES:
                loop.remove_signal_handler(signum)
    if streamed:
        out.write("\n")
        out.flush()

    assert terminal is not None and cid is not None
    # The rows are queued; a database another program keeps locked gets a little longer
    # before they go to the spool file (closing says so, once).
    written = await asyncio.to_thread(core.storage.owner.flush, EXIT_WAIT_S)
    real_cid = core.conversations.resolve(cid)
    where = f"conversation {real_cid}" if real_cid >= 0 else "its new conversation"
    answered = terminal.answered or (started.answered if started else None)
    started_notes = set(started.notes) if started else set()
    new_notes = [n for n in getattr(terminal, "notes", ()) if n not in started_notes]
    if args.json:
        text = terminal.text if isinstance(terminal, Finished) else terminal.partial_text
        if saved is not None:
            text = saved.assistant.content
        obj: dict[str, Any] = {
            "text": text,
            "model_asked": str(ref),
            "model_answered": str(answered) if answered else None,
            "route": answered.route_id if answered else ref.route_id,
            "conversation_id": real_cid if real_cid >= 0 else None,
            "status": terminal.usage.status.value,
            "notes": list(getattr(terminal, "notes", ())),
            "usage": usage_json(terminal.usage),
            "saved": written,
        }
        if isinstance(terminal, Failed):
            obj["error"] = explain(core, terminal.error)
        if saved is not None and saved.assistant.error and "error" not in obj:
            obj["error"] = saved.assistant.error
        print(json.dumps(obj, indent=2))
    else:
        for note in new_notes:
            print(safe_line(f"⚠ {note}"), file=sys.stderr)
    if stopped_by:
        name = _SIGNAL_NAMES.get(stopped_by[0], "a signal")  # type: ignore[call-overload]
        partial = bool(getattr(terminal, "partial_text", "")) or streamed
        kept = "the partial reply is kept" if partial else "your message is kept"
        _err(f"stopped by {name}; {kept} in {where}, marked interrupted")
        return 128 + int(stopped_by[0])
    if isinstance(terminal, Failed):
        partial = bool(terminal.partial_text) and terminal.error.kind is not ErrorKind.PLACEHOLDER
        kept = " (partial reply kept)" if partial else ""
        _err(explain(core, terminal.error) + kept)
        return EXIT_FAIL
    if isinstance(terminal, Cancelled):
        if saved is not None and saved.assistant.status == "error" and saved.assistant.error:
            _err(f"{saved.assistant.error} (in {where})")
            return EXIT_FAIL
        if terminal.partial_text:
            _err(f"stopped; the partial reply is kept in {where}")
        else:
            _err(f"stopped before any reply; your message is kept in {where}")
        return EXIT_CANCELLED
    return EXIT_OK


# ---- assist -------------------------------------------------------------------------------


def _assist(core: Core, args: argparse.Namespace) -> int:
    from halext_desktop.app.cli_assist import run_assist

    return run_assist(core, args)


# ---- login / logout -----------------------------------------------------------------------


def _login(core: Core, args: argparse.Namespace) -> int:
    username = args.username or core.settings.halext_username
    if not username:
        if not sys.stdin.isatty():
            _err("no username: pass --username")
            return EXIT_USAGE
        username = input("halext username: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {username}: ")
    else:
        _err("no password: use --password-stdin or run in a terminal")
        return EXIT_USAGE
    if not password:
        _err("the password is empty")
        return EXIT_USAGE
    user = asyncio.run(_with_close(core, core.sign_in(username, password, args.remember)))
    print(safe_line(f"Signed in to {core.settings.effective_halext_url()} as {user}"))
    if not core.secrets.persistent:
        print(
            f"Note: {core.secrets.note} For scripts, set HALEXT_USERNAME and HALEXT_PASSWORD.",
            file=sys.stderr,
        )
    return EXIT_OK


def _logout(core: Core, args: argparse.Namespace) -> int:
    asyncio.run(_with_close(core, core.sign_out()))
    print("Signed out; the token and any remembered password were removed from the keyring")
    return EXIT_OK


# ---- usage --------------------------------------------------------------------------------


def _usage(core: Core, args: argparse.Namespace) -> int:
    from halext_desktop.storage.usage import parse_since

    since = parse_since(args.since)
    owner = core.storage.owner  # this thread runs no event loop: it may wait for the owner
    by_model = owner.call(owner.usage.requests_by_model, since)
    blocked = owner.call(owner.usage.blocked_by_model, since)
    latency = owner.call(owner.usage.latency_by_model, since)
    errors = owner.call(owner.usage.error_rate_by_model, since)
    if args.json:
        print(
            json.dumps(
                {
                    "since": args.since,
                    "requests_by_model": [list(r) for r in by_model],
                    "blocked_by_model": [list(r) for r in blocked],
                    "latency_by_model": [list(r) for r in latency],
                    "error_rate_by_model": [list(r) for r in errors],
                },
                indent=2,
                default=str,
            )
        )
        return EXIT_OK
    if not by_model and not blocked:
        print(f"No requests logged in the last {args.since}.")
        return EXIT_OK
    by_model = [type(r)(safe_line(r[0]), *r[1:]) for r in by_model]
    blocked = [type(r)(safe_line(r[0]), *r[1:]) for r in blocked]
    latency = [type(r)(safe_line(r[0]), *r[1:]) for r in latency]
    errors = [type(r)(safe_line(r[0]), *r[1:]) for r in errors]
    w = max(len(str(r[0])) for r in [*by_model, *blocked])
    print(f"Requests by model (since {args.since})")
    for model, count in by_model:
        print(f"  {model:<{w}}  {count:>7}")
    print("\nAverage latency by model")
    print(f"  {'MODEL':<{w}}  {'LATENCY':>9}  {'FIRST TOKEN':>11}  {'N':>6}")
    for model, avg_ms, ttft_ms, n in latency:
        lat = f"{avg_ms:.0f} ms" if avg_ms is not None else "—"
        ttft = f"{ttft_ms:.0f} ms" if ttft_ms is not None else "—"
        print(f"  {model:<{w}}  {lat:>9}  {ttft:>11}  {n:>6}")
    print("\nError rate by model (failed or halext's placeholder ÷ requests)")
    for model, errs, total, rate in errors:
        print(f"  {model:<{w}}  {errs:>5}/{total:<6} {rate * 100:5.1f} %")
    if blocked:
        n = sum(c for _, c in blocked)
        print(f"\nBlocked by policy: {n} (nothing sent; not counted as requests or tokens)")
        for model, count in blocked:
            print(f"  {model:<{w}}  {count:>7}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
