"""``halext-desktop pull|rm|show|ps``: model management from a terminal.

References name the host: ``ollama/llama3.2`` (the default Ollama host), ``ollama@studio/
qwen2.5:7b`` (a named one), ``halext/client:3:tinyllama`` (a node of the halext server, for
its admins). A bare name (``llama3.2``) means the default Ollama host.

``pull`` draws one updating line on a terminal and prints plain lines otherwise (a line per
step, one per 10 % of the download); Ctrl+C cancels it — Ollama keeps what it downloaded and
the same command resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.units import (
    format_bytes,
    format_duration,
    format_processor,
    format_rate,
    format_until,
)

if TYPE_CHECKING:
    # Imported where used: the backends pull in httpx, ollama and pydantic, and
    # `halext-desktop config` (which builds this parser) must not wait for them.
    from halext_desktop.app.core import Core
    from halext_desktop.routing.backends.ollama_models import PullProgress

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_CANCELLED = 130
BAR_WIDTH = 24
DOWNLOADING = "downloading"  # PullPhase.DOWNLOADING (a StrEnum), without importing it
# Parts of the model card text that are long (license, modelfile): lines shown before "…".
CARD_LINES = 12


def add_model_parsers(sub: Any) -> None:
    """The four subcommands on ``halext-desktop``'s subparsers."""
    ref_help = (
        "ollama/<model>, ollama@<host>/<model>, halext/client:<node>:<model> (admins); "
        "a bare name means the default Ollama host"
    )
    p = sub.add_parser(
        "pull", help="download a model (progress; Ctrl+C cancels, run again resumes)"
    )
    p.add_argument("ref", metavar="REF", help=ref_help)
    r = sub.add_parser("rm", help="delete a model from an Ollama host or a halext node")
    r.add_argument("ref", metavar="REF", help=ref_help)
    s = sub.add_parser("show", help="a model's card: details, parameters, template, license")
    s.add_argument("ref", metavar="REF", help=ref_help)
    s.add_argument("--json", action="store_true", help="print Ollama's whole /api/show answer")
    ps = sub.add_parser("ps", help="models loaded in memory on the Ollama hosts")
    ps.add_argument("route", nargs="?", metavar="HOST", help="only this host, e.g. ollama@studio")
    ps.add_argument("--json", action="store_true")


def _err(msg: str) -> None:
    print(f"halext-desktop: {msg}", file=sys.stderr)


def parse_target(text: str) -> ModelRef:
    """The reference a command acts on (a bare name: the default Ollama host)."""
    text = text.strip()
    if "/" not in text:
        return ModelRef("ollama", None, text)
    return ModelRef.parse(text)


@dataclass(slots=True)
class _Target:
    ref: ModelRef
    route_id: str = ""  # the Ollama route; "" for a halext node
    title: str = ""  # "Ollama local (127.0.0.1:11434)"
    node_id: int | None = None
    model: str = ""


def _resolve(core: Core, text: str) -> _Target:
    from halext_desktop.routing.backends.halext_admin import parse_node_model

    ref = parse_target(text)
    if ref.kind == "halext":
        node_id, model = parse_node_model(ref.model)
        return _Target(ref, node_id=node_id, model=model, title=f"halext node {node_id}")
    if ref.kind != "ollama":
        raise RouteError(
            ErrorKind.BAD_REQUEST,
            f"{ref.route_id} is not an Ollama host: models are managed on Ollama hosts "
            "(and, for halext admins, on the server's nodes)",
            "Use an ollama/… or ollama@<host>/… reference",
        )
    backend = core.router.backend_for(ref)
    if backend is None:
        raise RouteError(
            ErrorKind.NOT_CONFIGURED,
            f"No Ollama host named {ref.host!r} is configured"
            if ref.host
            else "No Ollama host is configured",
            "Add one: halext-desktop config set ollama_hosts 'local=http://127.0.0.1:11434'",
        )
    title = _host_title(core, backend.route_id, backend.base_url)
    return _Target(ref, backend.route_id, title, model=ref.model)


def _host_title(core: Core, route_id: str, base_url: str) -> str:
    address = base_url.split("://", 1)[-1].rstrip("/")
    for i, host in enumerate(core.settings.effective_ollama_hosts()):
        rid = "ollama" if i == 0 else f"ollama@{host.name}"
        if rid == route_id:
            return f"Ollama {host.name} ({address})"
    return f"Ollama ({address})"


async def _with_close(core: Core, coro: Any) -> Any:
    try:
        return await coro
    finally:
        await core.aclose()


# ---- pull ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class PullPrinter:
    """Writes pull progress: one redrawn line on a terminal, plain lines otherwise."""

    out: TextIO
    tty: bool
    name: str
    last_phase: str | None = None
    last_decile: int = -1
    said_resume: bool = False
    drawn: bool = False
    layers_seen: set[str] = field(default_factory=set)

    def show(self, p: PullProgress) -> None:
        if self.tty:
            self._draw(p)
        else:
            self._lines(p)

    def _draw(self, p: PullProgress) -> None:
        pct = p.percent
        if p.phase == DOWNLOADING and pct is not None:
            filled = round(BAR_WIDTH * pct / 100)
            bar = "█" * filled + "░" * (BAR_WIDTH - filled)
            parts = [
                f"pulling {self.name}",
                bar,
                f"{pct:3.0f}%",
                f"{format_bytes(p.completed)}/{format_bytes(p.total)}",
            ]
            if p.bytes_per_second:
                parts.append(format_rate(p.bytes_per_second))
            if p.eta_seconds is not None:
                parts.append(f"{format_duration(p.eta_seconds)} left")
            text = "  ".join(parts)
        else:
            text = f"{self.name}: {p.status}"
        self.out.write(f"\r\033[K{text}")
        self.out.flush()
        self.drawn = True

    def _lines(self, p: PullProgress) -> None:
        if p.resumed_bytes and not self.said_resume:
            self.said_resume = True
            print(f"resuming: {format_bytes(p.resumed_bytes)} already downloaded", file=self.out)
        if p.phase != self.last_phase and p.phase != DOWNLOADING:
            print(p.status, file=self.out)
        for layer in p.layers:
            if layer.digest not in self.layers_seen:
                self.layers_seen.add(layer.digest)
                short = layer.digest.removeprefix("sha256:")[:12]
                print(f"layer {short}: {format_bytes(layer.total)}", file=self.out)
        self.last_phase = p.phase
        pct = p.percent
        if p.phase == DOWNLOADING and pct is not None:
            decile = int(pct // 10)
            if decile > self.last_decile:
                self.last_decile = decile
                extra = [f"{format_bytes(p.completed)} of {format_bytes(p.total)}"]
                if p.bytes_per_second:
                    extra.append(format_rate(p.bytes_per_second))
                if p.eta_seconds is not None:
                    extra.append(f"{format_duration(p.eta_seconds)} left")
                print(f"downloading {decile * 10}% ({', '.join(extra)})", file=self.out)
        self.out.flush()

    def end(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()
            self.drawn = False


def pull(core: Core, args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    target = _resolve(core, args.ref)
    if target.node_id is not None:
        return asyncio.run(_with_close(core, _pull_on_node(core, target, out)))
    return int(asyncio.run(_with_close(core, _pull_async(core, target, out))))


async def _pull_on_node(core: Core, target: _Target, out: TextIO) -> int:
    from halext_desktop.routing.backends.halext_admin import NO_PROGRESS_NOTE

    assert target.node_id is not None
    print(f"pulling {target.model} on {target.title} — {NO_PROGRESS_NOTE}", file=out, flush=True)
    result = await core.node_pull(target.node_id, target.model)
    print(result.message, file=out)
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    return EXIT_OK


async def _pull_async(core: Core, target: _Target, out: TextIO) -> int:
    printer = PullPrinter(out, out.isatty(), target.model)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    cancelled = False

    def on_sigint() -> None:
        nonlocal cancelled
        cancelled = True
        if task is not None:
            task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    last: PullProgress | None = None
    try:
        async for progress in core.pull_model(target.route_id, target.model):
            last = progress
            printer.show(progress)
    except asyncio.CancelledError:
        if not cancelled:
            raise
        if task is not None:
            task.uncancel()
        printer.end()
        got = f" after {format_bytes(last.completed)}" if last and last.completed else ""
        _err(
            f"pull of {target.model} cancelled{got}; Ollama keeps what it downloaded — "
            "run the same command to resume"
        )
        return EXIT_CANCELLED
    except RouteError:
        printer.end()
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    printer.end()
    if last is None or not last.done:  # pragma: no cover (pull raises instead)
        raise RouteError(ErrorKind.STREAM_DROPPED, f"the pull of {target.model} did not finish")
    size = format_bytes(last.total) if last.total else ""
    print(
        f"{last.installed_name} is ready on {target.title}"
        + (f" ({size})" if size else "")
        + f" — use it as {ModelRef('ollama', target.ref.host, last.installed_name)}",
        file=out,
    )
    return EXIT_OK


# ---- rm -------------------------------------------------------------------------------------


def rm(core: Core, args: argparse.Namespace) -> int:
    target = _resolve(core, args.ref)
    if target.node_id is not None:
        node_id = target.node_id
        result = asyncio.run(_with_close(core, core.node_delete(node_id, target.model)))
        print(result.message)
        if result.note:
            print(f"note: {result.note}", file=sys.stderr)
        return EXIT_OK
    freed = asyncio.run(_with_close(core, core.delete_model(target.route_id, target.model)))
    tail = f"; freed up to {format_bytes(freed)}" if freed else ""
    print(f"Deleted {target.model} from {target.title}{tail}")
    return EXIT_OK


# ---- show -----------------------------------------------------------------------------------


def show(core: Core, args: argparse.Namespace) -> int:
    target = _resolve(core, args.ref)
    if target.node_id is not None:
        raise RouteError(
            ErrorKind.BAD_REQUEST,
            "halext has no model card for a node's models (the server offers no /api/show "
            "for nodes)",
            "Add the node as an Ollama host in Settings to see its model cards",
        )
    card = asyncio.run(_with_close(core, core.model_card(target.route_id, target.model)))
    if args.json:
        obj = {"ref": str(card.ref), "host": target.title, "show": card.raw}
        print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    print(f"{card.ref}  ·  {target.title}")
    rows: list[tuple[str, str]] = []
    if card.architecture:
        rows.append(("architecture", card.architecture))
    if card.parameter_size or card.parameter_count:
        count = f" ({card.parameter_count:,})" if card.parameter_count else ""
        rows.append(("parameters", f"{card.parameter_size or ''}{count}".strip()))
    if card.quantization:
        rows.append(("quantization", card.quantization))
    if card.context_length:
        rows.append(("context", f"{card.context_length:,} tokens"))
    if card.embedding_length:
        rows.append(("embedding", f"{card.embedding_length:,}"))
    if card.capabilities:
        rows.append(("capabilities", ", ".join(card.capabilities)))
    if card.modified_at:
        rows.append(("modified", card.modified_at.astimezone().strftime("%Y-%m-%d %H:%M")))
    for key, value in rows:
        print(f"  {key:<13} {value}")
    pairs = card.parameter_pairs()
    if pairs:
        print("\nParameters")
        width = max(len(k) for k, _ in pairs)
        for key, value in pairs:
            print(f"  {key:<{width}}  {value}")
    for title, text in (("Template", card.template), ("System", card.system)):
        if text.strip():
            print(f"\n{title}")
            _block(text)
    if card.license.strip():
        print("\nLicense")
        _block(card.license, CARD_LINES)
    return EXIT_OK


def _block(text: str, limit: int | None = None) -> None:
    lines = text.strip("\n").splitlines()
    shown = lines if limit is None else lines[:limit]
    for line in shown:
        print(f"  {line}")
    if limit is not None and len(lines) > limit:
        print(f"  … ({len(lines) - limit} more lines; --json shows all)")


# ---- ps -------------------------------------------------------------------------------------


def ps(core: Core, args: argparse.Namespace) -> int:
    routes = [r for r in core.routes() if r.kind == "ollama"]
    if args.route:
        routes = [r for r in routes if r.route_id == args.route]
        if not routes:
            known = ", ".join(r.route_id for r in core.routes() if r.kind == "ollama") or "none"
            _err(f"no Ollama host {args.route!r} is configured (configured: {known})")
            return 2
    results = asyncio.run(_with_close(core, _ps_all(core, [r.route_id for r in routes])))
    rows: list[dict[str, Any]] = []
    problems: dict[str, str] = {}
    for route_id, result in results:
        if isinstance(result, RouteError):
            problems[route_id] = result.one_line()
            continue
        for m in result:
            rows.append(
                {
                    "ref": str(m.ref),
                    "name": m.name,
                    "route": route_id,
                    "size_bytes": m.size_bytes,
                    "vram_bytes": m.vram_bytes,
                    "context_length": m.context_length,
                    "expires_at": m.expires_at.isoformat() if m.expires_at else None,
                    "until": format_until(m.expires_at, datetime.now(UTC)),
                    "processor": format_processor(m.size_bytes, m.vram_bytes),
                }
            )
    if args.json:
        print(json.dumps({"loaded": rows, "hosts": problems}, indent=2))
        return EXIT_OK if not problems or rows else EXIT_FAIL
    if rows:
        wn = max(len("NAME"), *(len(r["name"]) for r in rows))
        wr = max(len("HOST"), *(len(r["route"]) for r in rows))
        print(
            f"{'NAME':<{wn}}  {'HOST':<{wr}}  {'SIZE':>8}  {'PROCESSOR':<16} {'CONTEXT':>7}  UNTIL"
        )
        for r in rows:
            ctx = str(r["context_length"] or "")
            print(
                f"{r['name']:<{wn}}  {r['route']:<{wr}}  {format_bytes(r['size_bytes']):>8}  "
                f"{r['processor']:<16} {ctx:>7}  {r['until']}"
            )
    elif not problems:
        print("No models are loaded.")
    for route_id, problem in problems.items():
        print(f"{route_id}: {problem}", file=sys.stderr)
    return EXIT_FAIL if problems and not rows else EXIT_OK


async def _ps_all(core: Core, route_ids: list[str]) -> list[tuple[str, Any]]:
    async def one(route_id: str) -> tuple[str, Any]:
        try:
            return route_id, await core.loaded_models(route_id)
        except RouteError as err:
            return route_id, err

    return list(await asyncio.gather(*(one(r) for r in route_ids)))


HANDLERS = {"pull": pull, "rm": rm, "show": show, "ps": ps}
