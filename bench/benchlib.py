"""What the issue-13 benchmarks share: servers in their own process, cached databases,
interleaved rounds, medians and ranges, and the one JSON line each bench leaves for the
goal table (``bench/goals.py``).

Nothing here asserts a timing: benches print numbers next to a baseline measured in the
same run, interleaved with it (baseline, ours, baseline, ours...), several rounds, and
report the median and the range.
"""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Goal rows a bench reports: where the goal table reads them (see bench/goals.py).
RESULTS_ENV = "HALEXT_BENCH_RESULTS"


def cache_dir() -> Path:
    """Where generated databases are kept between runs (never in the repository):
    ``$HALEXT_BENCH_CACHE``, else ``$XDG_CACHE_HOME/halext-bench``, else
    ``~/.cache/halext-bench``."""
    explicit = os.environ.get("HALEXT_BENCH_CACHE", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
        path = Path(base) / "halext-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Spread:
    """The median and range of repeated measurements."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else float("nan")

    def ms(self, digits: int = 1) -> str:
        """``12.3 ms (10.1–15.0)``."""
        return (
            f"{self.median * 1000:.{digits}f} ms "
            f"({self.lo * 1000:.{digits}f}–{self.hi * 1000:.{digits}f})"
        )

    def x(self) -> str:
        """``1.23× (1.10–1.40)``."""
        return f"{self.median:.2f}× ({self.lo:.2f}–{self.hi:.2f})"


def ratios(ours: Sequence[float], base: Sequence[float]) -> Spread:
    """Per-round ratios ours/baseline (rounds are interleaved, so each pair shares the
    machine's load of that moment)."""
    return Spread([o / b for o, b in zip(ours, base, strict=True) if b > 0])


@dataclass
class GoalRow:
    """One row of the goal table.

    Attributes:
        goal: what is measured and the target, in words.
        baseline: the baseline's median (seconds) and range.
        ours: ours (seconds).
        kind: ``ratio`` (met when ours/baseline ≤ target), ``abs`` (met when ours ≤ target
            seconds), ``over`` (met when ours − baseline ≤ target seconds).
        target: the number the kind compares with.
        note: what else the reader should know (connections, sizes...).
    """

    goal: str
    baseline: Spread
    ours: Spread
    kind: str
    target: float
    note: str = ""
    ratio: Spread | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "baseline": self.baseline.values,
            "ours": self.ours.values,
            "kind": self.kind,
            "target": self.target,
            "note": self.note,
            "ratio": self.ratio.values if self.ratio else None,
        }


def report(rows: list[GoalRow]) -> None:
    """Leave the rows for the goal table (when it runs this bench) and print them."""
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row.to_json()) + "\n")


def interleave(
    rounds: int,
    base: Callable[[], float],
    ours: Callable[[], float],
    *,
    warmup: int = 1,
) -> tuple[list[float], list[float]]:
    """Run ``base`` and ``ours`` alternately (the order flips every round), ``warmup``
    rounds first that are not kept. Each returns seconds."""
    b: list[float] = []
    o: list[float] = []
    for i in range(warmup + rounds):
        if i % 2 == 0:
            bt, ot = base(), ours()
        else:
            ot, bt = ours(), base()
        if i >= warmup:
            b.append(bt)
            o.append(ot)
    return b, o


# ---- servers in their own process ------------------------------------------------------------


class ServerProcess:
    """``bench/fast_ollama.py`` (or the project's test server) in its own process."""

    def __init__(self, kind: str = "fast") -> None:
        self.kind = kind
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        if self.kind == "fast":
            cmd = [sys.executable, str(HERE / "fast_ollama.py")]
        else:
            cmd = [sys.executable, str(HERE / "test_server_process.py")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.port = int(line.strip())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            if self.proc.poll() is None:
                self.proc.kill()

    def stats(self) -> dict[str, int]:
        if self.kind != "fast":
            return {}
        with urllib.request.urlopen(f"{self.url}/bench/stats", timeout=5) as r:
            data: dict[str, int] = json.loads(r.read())
            return data


# ---- app homes -------------------------------------------------------------------------------


@contextlib.contextmanager
def app_home(db_source: Path | None = None, *, prefix: str = "halext-bench-") -> Iterator[Path]:
    """A fresh ``HALEXT_DESKTOP_HOME``; with ``db_source``, its database is a copy of it."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        (tmp / "data").mkdir(mode=0o700)
        (tmp / "config").mkdir(mode=0o700)
        if db_source is not None:
            shutil.copyfile(db_source, tmp / "data" / "halext.db")
            os.chmod(tmp / "data" / "halext.db", 0o600)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compile_app() -> None:
    """Byte-compile the app's modules, as an installed package has them (pip compiles at
    install). Without it, under ``PYTHONDONTWRITEBYTECODE`` (set on these machines) every
    timed process would compile ~100 modules again: time a user never spends."""
    for folder in ("app", "ui", "storage", "routing", "resources"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)
    compileall.compile_file(str(ROOT / "halext_desktop" / "__init__.py"), quiet=1)
    compileall.compile_file(str(ROOT / "halext_desktop" / "__main__.py"), quiet=1)


def app_env(home: Path, ollama_url: str | None = None) -> dict[str, str]:
    """The environment of an app process living in ``home``."""
    env = dict(os.environ)
    env["HALEXT_DESKTOP_HOME"] = str(home)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.pop("HALEXT_DEBUG", None)
    if ollama_url:
        env["OLLAMA_HOST"] = ollama_url
    # The app's own package, from this checkout.
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def timed_run(cmd: list[str], env: dict[str, str], *, cwd: Path = ROOT) -> float:
    """Wall time of one process from spawn to exit (its output discarded); raises when it
    fails (a benchmark of a failing command measures nothing)."""
    t0 = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()[-500:]}"
        )
    return took


@dataclass
class Table:
    """A plain text table."""

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def render(self) -> str:
        widths = [len(h) for h in self.header]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(self.header, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for row in self.rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        return "\n".join(lines)
