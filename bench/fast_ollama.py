"""A minimal, fast Ollama-protocol server for benchmarks (not tests): asyncio, one process.

The project's test server (``tests/servers/ollama_server.py``) is faithful but built on
``http.server`` threads; this one only answers what a chat needs, as fast as it can, so the
time measured is the client's. Run it as its own process (``serve`` prints the port on
stdout) so its work never competes with the client for the GIL.

Models are named for what they do (every one is listed by ``/api/tags``):

- ``fast-<n>:latest`` — ``n`` content chunks, written back to back, then the ``done`` line.
- ``paced-<rate>x<n>:latest`` — ``n`` chunks at ``rate`` chunks a second (a model
  generating at that speed); a client that goes away stops it.

``/api/show`` reports a context length of ``CONTEXT_LENGTH`` tokens. ``GET /bench/stats``
answers how many connections were accepted and requests served, and how many streams the
client closed before their end.

    python bench/fast_ollama.py [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from typing import Any

CONTEXT_LENGTH = 8192
VERSION = "0.12.3"
_MODEL_RE = re.compile(r"^(?:fast-(\d+)|paced-(\d+)x(\d+))(?::latest)?$")
LISTED = ("fast-1", "fast-20", "fast-200", "fast-2000", "paced-100x500", "paced-100x300")
_WORDS = (  # noqa: SIM905 (a sentence reads better than a list of words)
    "the model answered with a plan for the week and three deadlines so that every task "
    "fits between meetings while the build runs on the studio node"
).split()


class Stats:
    connections = 0
    requests = 0
    chats = 0
    closed_early = 0


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".123456789Z"


def _line(model: str, text: str) -> bytes:
    return (
        b'{"model":'
        + _json(model)
        + b',"created_at":"'
        + _stamp().encode()
        + b'","message":{"role":"assistant","content":'
        + _json(text)
        + b'},"done":false}\n'
    )


def _done(model: str, prompt_count: int, n: int) -> bytes:
    return (
        _json(
            {
                "model": model,
                "created_at": _stamp(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                "total_duration": 1000,
                "load_duration": 10,
                "prompt_eval_count": prompt_count,
                "prompt_eval_duration": 100,
                "eval_count": n,
                "eval_duration": 900,
            }
        )
        + b"\n"
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _tags() -> dict[str, Any]:
    details = {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "8B",
        "quantization_level": "Q4_K_M",
    }
    return {
        "models": [
            {
                "name": f"{m}:latest",
                "model": f"{m}:latest",
                "modified_at": "2026-01-01T00:00:00.000000001Z",
                "size": 4_000_000_000,
                "digest": "a" * 64,
                "details": details,
            }
            for m in LISTED
        ]
    }


async def _respond(
    writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str = "application/json"
) -> None:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()


async def _chat(writer: asyncio.StreamWriter, body: dict[str, Any]) -> None:
    Stats.chats += 1
    name = str(body.get("model") or "")
    m = _MODEL_RE.match(name)
    if m is None:
        await _respond(writer, 404, _json({"error": f"model '{name}' not found"}))
        return
    n = int(m.group(1) or m.group(3))
    rate = float(m.group(2)) if m.group(2) else 0.0
    messages = body.get("messages") or []
    prompt_count = sum(4 + len(str(x.get("content", "")).split()) for x in messages)
    model = name if ":" in name else f"{name}:latest"
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    try:
        if rate:
            start = time.monotonic()
            for i in range(n):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(_chunk(_line(model, " " + _WORDS[i % len(_WORDS)])))
                await writer.drain()
        else:
            # The first line on its own (time to first token), the rest back to back.
            writer.write(_chunk(_line(model, " " + _WORDS[0])))
            await writer.drain()
            rest = (_line(model, " " + _WORDS[i % len(_WORDS)]) for i in range(1, n))
            writer.write(b"".join(_chunk(line) for line in rest))
        writer.write(_chunk(_done(model, prompt_count, n)) + b"0\r\n\r\n")
        await writer.drain()
    except (ConnectionError, OSError):
        Stats.closed_early += 1
        raise


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    Stats.connections += 1
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for h in lines[1:]:
                if ":" in h:
                    k, v = h.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            raw = await reader.readexactly(length) if length else b""
            Stats.requests += 1
            path = target.split("?", 1)[0]
            if method == "POST" and path == "/api/chat":
                await _chat(writer, json.loads(raw or b"{}"))
            elif path == "/api/tags":
                await _respond(writer, 200, _json(_tags()))
            elif path == "/api/version":
                await _respond(writer, 200, _json({"version": VERSION}))
            elif method == "POST" and path == "/api/show":
                await _respond(
                    writer,
                    200,
                    _json(
                        {
                            "modelfile": "",
                            "parameters": "",
                            "template": "{{ .Prompt }}",
                            "details": _tags()["models"][0]["details"],
                            "model_info": {
                                "general.architecture": "llama",
                                "llama.context_length": CONTEXT_LENGTH,
                            },
                            "capabilities": ["completion"],
                            "modified_at": "2026-01-01T00:00:00Z",
                        }
                    ),
                )
            elif path == "/api/ps":
                await _respond(writer, 200, _json({"models": []}))
            elif path == "/bench/stats":
                await _respond(
                    writer,
                    200,
                    _json(
                        {
                            "connections": Stats.connections,
                            "requests": Stats.requests,
                            "chats": Stats.chats,
                            "closed_early": Stats.closed_early,
                        }
                    ),
                )
            elif path == "/":
                await _respond(writer, 200, b"Ollama is running", "text/plain; charset=utf-8")
            else:
                await _respond(writer, 404, b"404 page not found", "text/plain")
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, OSError):
        return
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(port: int) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", port)
    sock = server.sockets[0]
    print(sock.getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
