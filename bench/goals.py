"""Issue 13's speed goals, each measured against its baseline in the same run: one table.

Runs each goal's bench in its own process (they leave their rows in a file named by
``HALEXT_BENCH_RESULTS``), then prints: goal, baseline, ours, ratio, met or not. Medians
over interleaved rounds, ranges in brackets. A benchmark reports; it never fails on a
timing (the exit status is non-zero only when a bench crashed).

    .venv/bin/python bench/goals.py [--quick] [--save FILE] [--only router,cli,...]

Large databases are generated on first use and cached (``benchlib.cache_dir()``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import HERE, RESULTS_ENV, ROOT, Table  # noqa: E402

# name: (script, full options, quick options)
GOALS: dict[str, tuple[str, list[str], list[str]]] = {
    "router": ("bench_router.py", ["--rounds", "100"], ["--rounds", "8"]),
    "cli": ("bench_cli.py", ["--rounds", "15"], ["--rounds", "5"]),
    "stall": ("bench_window_stall.py", ["--rounds", "5"], ["--rounds", "2", "--seconds", "2"]),
    "start": ("bench_start.py", ["--rounds", "10"], ["--rounds", "3", "--quick"]),
    "reports": ("bench_reports.py", ["--rounds", "5"], ["--rounds", "2", "--quick"]),
}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ms(values: list[float]) -> str:
    if not values:
        return "—"
    med = _median(values) * 1000
    lo, hi = min(values) * 1000, max(values) * 1000
    digits = 2 if med < 10 else 1 if med < 100 else 0
    if len(values) == 1:
        return f"{med:.{digits}f} ms"
    return f"{med:.{digits}f} ms ({lo:.{digits}f}–{hi:.{digits}f})"


def render(rows: list[dict[str, Any]]) -> str:
    table = Table(["goal", "baseline", "ours", "ratio", "met"])
    for row in rows:
        base = [float(v) for v in row["baseline"]]
        ours = [float(v) for v in row["ours"]]
        kind, target = str(row["kind"]), float(row["target"])
        rv = [float(v) for v in row.get("ratio") or []]
        b, o = _median(base), _median(ours)
        if kind == "info":
            table.add(str(row["goal"]), "—", f"{o:.1f}", "—", "(info)")
            continue
        if kind == "time":  # a time worth knowing, next to its baseline; not a goal
            table.add(str(row["goal"]), _ms(base), _ms(ours), f"{o / b:.2f}×", "(info)")
            continue
        if rv:
            ratio = f"{_median(rv):.2f}× ({min(rv):.2f}–{max(rv):.2f})"
        else:
            ratio = f"{o / b:.2f}×" if b > 0 else "—"
        if kind == "ratio":
            met = (_median(rv) if rv else o / b) <= target
            goal_text = f"≤ {target:g}×"
        elif kind == "abs":
            met = o <= target
            goal_text = f"≤ {target * 1000:g} ms"
        else:  # over
            met = o - b <= target
            ratio = f"+{(o - b) * 1000:.0f} ms"
            goal_text = f"≤ +{target * 1000:g} ms"
        table.add(
            str(row["goal"]),
            _ms(base),
            _ms(ours),
            ratio,
            f"{'yes' if met else 'NO'} ({goal_text})",
        )
    notes = [f"- {row['goal']}: {row['note']}" for row in rows if row.get("note")]
    unique = list(dict.fromkeys(notes))
    return table.render() + ("\n\nNotes:\n" + "\n".join(unique) if unique else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds, the smaller databases")
    ap.add_argument("--save", type=Path, help="also write the table (and the raw rows) here")
    ap.add_argument("--only", help="comma-separated: " + ",".join(GOALS))
    args = ap.parse_args(argv)
    chosen = [g.strip() for g in args.only.split(",")] if args.only else list(GOALS)
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="halext-goals-") as tmp:
        results = Path(tmp) / "rows.jsonl"
        results.touch()
        env[RESULTS_ENV] = str(results)
        for name in chosen:
            script, full, quick = GOALS[name]
            options = quick if args.quick else full
            print(f"== {script} {' '.join(options)}", flush=True)
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, str(HERE / script), *options],
                env=env,
                cwd=ROOT,
                timeout=3600,
                check=False,
            )
            took = time.perf_counter() - started
            print(f"   ({took:.0f} s, exit {result.returncode})\n", flush=True)
            failed += result.returncode != 0
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    text = render(rows)
    print("Issue 13 goals" + (" (quick)" if args.quick else "") + ":\n")
    print(text)
    if args.save:
        args.save.write_text(text + "\n\n" + json.dumps(rows) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
