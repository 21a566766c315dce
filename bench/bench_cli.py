"""``halext-desktop ask`` as a whole process vs a tiny ollama-client script.

Both ask the same fast Ollama-protocol server (``bench/fast_ollama.py``, its own process)
for the same reply and exit; each run is timed from spawn to exit, the two interleaved.
``halext-desktop`` runs as ``python -m halext_desktop`` from this checkout, in a home of its
own whose database already exists (a first start's schema creation is not what is timed),
with its bytecode compiled first, as an installed package has it (pip compiles at install;
under ``PYTHONDONTWRITEBYTECODE`` every run would otherwise compile ~100 modules again).

    .venv/bin/python bench/bench_cli.py [--rounds 15] [--chunks 200]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    HERE,
    GoalRow,
    ServerProcess,
    Spread,
    app_env,
    app_home,
    compile_app,
    interleave,
    ratios,
    report,
    timed_run,
)

from halext_desktop.storage.db import Database  # noqa: E402

PROMPT = "Write a plan for the week, please."


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--chunks", type=int, default=200)
    args = ap.parse_args(argv)
    model = f"fast-{args.chunks}:latest"
    compile_app()
    with ServerProcess("fast") as server, app_home() as home:
        env = app_env(home, server.url)
        db = Database(home / "data" / "halext.db", backups=home / "data" / "backups")
        db.open()
        db.close()
        tiny = [sys.executable, str(HERE / "tiny_ollama_client.py"), server.url, model, PROMPT]
        ours = [sys.executable, "-m", "halext_desktop", "ask", "-m", f"ollama/{model}", PROMPT]
        base, mine = interleave(
            args.rounds, lambda: timed_run(tiny, env), lambda: timed_run(ours, env)
        )
    b, o = Spread(base), Spread(mine)
    rat = ratios(mine, base)
    print(f"whole process, {args.chunks} chunks, {args.rounds} rounds interleaved:")
    print(f"  tiny ollama-client script  {b.ms()}")
    print(f"  halext-desktop ask         {o.ms()}")
    print(f"  ratio                      {rat.x()}")
    report(
        [GoalRow("1. `halext-desktop ask` vs a tiny ollama script", b, o, "ratio", 1.5, ratio=rat)]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
