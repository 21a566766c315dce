"""``halext-desktop``: the desktop window, or a subcommand over the same router and storage.

Every failure prints one clear line on stderr and exits non-zero; nothing waits on the
network before a subcommand actually needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from sqlalchemy import exc as sa_exc

from halext_desktop.app.cli_assist_args import add_assist_parser
from halext_desktop.app.cli_models import HANDLERS as MODEL_HANDLERS
from halext_desktop.app.cli_models import add_model_parsers
from halext_desktop.app.cli_output import explain, usage_json
from halext_desktop.routing.display import chip_label
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.router import CancelToken
from halext_desktop.routing.types import Cancelled, Delta, Failed, Finished, Started
from halext_desktop.storage.settings import SettingsError

if TYPE_CHECKING:
    # Imported where it is built (main): app.core pulls in every backend, and
    # `halext-desktop config` must not wait for that.
    from halext_desktop.app.core import Core
    from halext_desktop.storage.settings import Settings

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


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
    a.add_argument("--conversation", "-c", type=int, help="continue this conversation id")
    a.add_argument("--json", action="store_true", help="print one JSON object at the end")
    a.add_argument("--no-fallback", action="store_true", help="do not try the fallback models")

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
    return p


def _command_names(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _err(msg: str) -> None:
    print(f"halext-desktop: {msg}", file=sys.stderr)


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


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    from halext_desktop.storage.logfile import debug_requested, setup_logging

    parser = _parser()
    commands = _command_names(parser)
    args = parser.parse_args(_desktop_argv(list(sys.argv[1:] if argv is None else argv), commands))
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

    try:
        # A command sends what it is told to, but says so when a password, token or key
        # would cross plain http to another machine (the window asks first instead).
        core = Core(plain_http=PLAIN_HTTP_WARN)
    except Exception as exc:  # a broken database or settings file: one line, not a traceback
        _err(str(exc))
        return EXIT_FAIL
    if core.settings.load_warning:
        _err(core.settings.load_warning)
    if args.command in ("models", "ask", "login", "assist"):
        for line in core.plain_http_warnings(signing_in=args.command == "login"):
            _err(line)
    try:
        handler = {
            "models": _models,
            "ask": _ask,
            "login": _login,
            "logout": _logout,
            "usage": _usage,
            "assist": _assist,
            **MODEL_HANDLERS,
        }[args.command]
        return handler(core, args)
    except RouteError as exc:
        _err(explain(core, exc))
        return EXIT_FAIL
    except (SettingsError, ValueError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Ctrl+C outside a streaming reply (listing models, waiting for a first byte
        # before anything was stored): nothing to keep, but no traceback either.
        _err("interrupted")
        return EXIT_CANCELLED
    except BrokenPipeError:
        # `halext-desktop models | head`: the reader left; stay quiet like other tools.
        _silence_stdout()
        return EXIT_OK
    except sa_exc.OperationalError as exc:
        _err(_db_problem(core, exc))
        return EXIT_FAIL
    finally:
        core.close()


def _silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush does not raise again."""
    import os

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _db_problem(core: Core, exc: sa_exc.OperationalError) -> str:
    from halext_desktop.storage.db import is_busy

    if is_busy(exc):
        return (
            f"The database {core.db.path} is locked by another program (waited "
            f"{core.db.busy_timeout_ms / 1000:g} s). Try again when the other Halext Desktop "
            "window or command has finished."
        )
    return f"The database {core.db.path} could not be written: {exc.orig or exc}"


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
                print(f"{key} = {json.dumps(settings.get(key))}")
            return EXIT_OK
        if args.action == "reset":
            settings.reset()
            print("settings restored to their defaults")
            return EXIT_OK
        if not args.key:
            _err(f"config {args.action} needs a KEY; one of: {', '.join(settings.keys())}")
            return EXIT_USAGE
        if args.action == "get":
            value = settings.get(args.key)
            print(value if isinstance(value, str) else json.dumps(value))
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
    if args.json:
        print(json.dumps({"models": rows, "routes": problems}, indent=2))
        return EXIT_OK
    if rows:
        w = max(len(r["ref"]) for r in rows)
        print(f"{'MODEL':<{w}}  {'ROUTE':<14} {'PROVIDER':<9} {'WHERE':<11} AVAILABLE")
        for r in rows:
            avail = "yes" if r["available"] else f"no — {r['blocked'] or 'unavailable'}"
            print(f"{r['ref']:<{w}}  {r['route']:<14} {r['provider']:<9} {r['where']:<11} {avail}")
    for rid, problem in problems.items():
        print(f"{rid}: {problem}", file=sys.stderr)
    if not rows:
        print(f"No models available. {_connect_hint()}", file=sys.stderr)
    return EXIT_OK


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


async def _ask_async(core: Core, args: argparse.Namespace, prompt: str, out: TextIO) -> int:
    from halext_desktop.storage.turns import TurnBegun

    conv = None
    if args.conversation is not None:
        conv = core.conversations.get(args.conversation)
        if conv is None:
            _err(f"no conversation with id {args.conversation}")
            return EXIT_USAGE
    # Without --model, a conversation goes on with its own model (as in the window), not
    # the global default.
    chosen = args.model or (conv.default_model_id if conv is not None else None)
    listing = None
    if not chosen and not core.settings.default_model:
        listing = await core.list_models()
    ref = core.resolve_model(chosen, listing)
    if conv is None:
        title = " ".join(prompt.split())[:60] or "New chat"
        conv = core.conversations.create(title=title, default_model_id=str(ref))

    cancel = CancelToken()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, cancel.cancel)

    started: Started | None = None
    terminal: Finished | Failed | Cancelled | None = None
    streamed = False
    stream = core.turns.send(
        conv.id, prompt, ref, cancel=cancel, use_fallbacks=not args.no_fallback
    )
    async for event in stream:
        if isinstance(event, TurnBegun):
            continue
        if isinstance(event, Started):
            started = event
            if not args.json:
                print(chip_label(event.answered, event.locality), file=sys.stderr)
                for note in event.notes:
                    print(f"⚠ {note}", file=sys.stderr)
        elif isinstance(event, Delta):
            if not args.json:
                out.write(event.text)
                out.flush()
                streamed = True
        elif isinstance(event, Finished | Failed | Cancelled):
            terminal = event
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.remove_signal_handler(signal.SIGINT)
    if streamed:
        out.write("\n")

    assert terminal is not None
    answered = terminal.answered or (started.answered if started else None)
    started_notes = set(started.notes) if started else set()
    new_notes = [n for n in getattr(terminal, "notes", ()) if n not in started_notes]
    if args.json:
        text = terminal.text if isinstance(terminal, Finished) else terminal.partial_text
        obj: dict[str, Any] = {
            "text": text,
            "model_asked": str(ref),
            "model_answered": str(answered) if answered else None,
            "route": answered.route_id if answered else ref.route_id,
            "conversation_id": conv.id,
            "status": terminal.usage.status.value,
            "notes": list(getattr(terminal, "notes", ())),
            "usage": usage_json(terminal.usage),
        }
        if isinstance(terminal, Failed):
            obj["error"] = explain(core, terminal.error)
        print(json.dumps(obj, indent=2))
    else:
        for note in new_notes:
            print(f"⚠ {note}", file=sys.stderr)
    if isinstance(terminal, Failed):
        partial = terminal.partial_text and terminal.error.kind is not ErrorKind.PLACEHOLDER
        kept = " (partial reply kept)" if partial else ""
        _err(explain(core, terminal.error) + kept)
        return EXIT_FAIL
    if isinstance(terminal, Cancelled):
        if terminal.partial_text:
            _err(f"stopped; the partial reply is kept in conversation {conv.id}")
        else:
            _err(f"stopped before any reply; your message is kept in conversation {conv.id}")
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
    print(f"Signed in to {core.settings.effective_halext_url()} as {user}")
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
    by_model = core.usage.requests_by_model(since)
    blocked = core.usage.blocked_by_model(since)
    latency = core.usage.latency_by_model(since)
    errors = core.usage.error_rate_by_model(since)
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
