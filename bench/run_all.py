"""Run every benchmark, each in its own process (so memory readings do not mix), then the
issue-13 goal table (``bench/goals.py``: each speed goal against its baseline, met or not).

    .venv/bin/python bench/run_all.py [--quick] [--no-goals]

Benchmarks print numbers next to an in-run baseline; they never fail on timings.
The exit status is non-zero only if a benchmark itself crashed. The goal table's large
databases are generated on first use and cached outside the repository
(``$XDG_CACHE_HOME/halext-bench``, or ``$HALEXT_BENCH_CACHE``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHES: dict[str, list[str]] = {
    "bench_stream_stall.py": [],
    "bench_open_conversation.py": [],
    "bench_markdown.py": [],
    "bench_usage_report.py": [],
    "bench_db_writer.py": [],
}
QUICK: dict[str, list[str]] = {
    "bench_stream_stall.py": ["--seconds", "2", "--messages", "2000"],
    "bench_open_conversation.py": ["--messages", "3000"],
    "bench_markdown.py": ["--sections", "8", "--repeat", "3"],
    "bench_usage_report.py": ["--rows", "100000", "--repeat", "1"],
    "bench_db_writer.py": ["--rows", "5000", "--parser-mb", "8"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the GUI benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument("--no-goals", action="store_true", help="skip the goal table")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    failed = 0
    for script, extra in BENCHES.items():
        options = QUICK[script] if args.quick else extra
        print(f"== {script} {' '.join(options)}".rstrip(), flush=True)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(HERE / script), *options],
            env=env,
            timeout=300,
            check=False,
        )
        print(f"   ({time.perf_counter() - started:.1f} s, exit {result.returncode})\n", flush=True)
        failed += result.returncode != 0
    if not args.no_goals:
        result = subprocess.run(
            [sys.executable, str(HERE / "goals.py"), *(["--quick"] if args.quick else [])],
            env=env,
            check=False,
        )
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
