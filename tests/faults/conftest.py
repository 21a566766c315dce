"""The fault suite: every kind of fault the app must survive, against the protocol test
servers, each checked from the database afterwards (the user's message, the partial reply,
one usage row per request) and from what the user was told (one clear message).

Each test carries ``@pytest.mark.fault("<kind>")``; at the end of a run the summary says how
many fault kinds passed every one of their tests:

    Fault suite: 15 of 15 fault kinds: nothing lost, one clear message
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests.servers.conftest import halext_server, ollama_server  # noqa: F401 (fixtures)

# Every kind the suite covers, in the order the summary lists failures.
KINDS = (
    "connection refused",
    "blackhole",
    "drop mid-stream",
    "401 mid-session",
    "plain-text 5xx",
    "HTML 5xx",
    "malformed frames",
    "stall",
    "lock during a stream",
    "corrupt page",
    "kill -9 mid-stream and restart",
    "SIGTERM / SIGHUP mid-stream",
    "four concurrent streams into one database",
    "disk full",
    "reply past the size limit",
)

_outcomes: dict[str, list[bool]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fault(kind): the kind of fault a test of the fault suite inflicts"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("fault")
    if marker is None:
        return
    kind = str(marker.args[0])
    assert kind in KINDS, f"unknown fault kind {kind!r}: add it to KINDS"
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _outcomes.setdefault(kind, []).append(report.passed)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes:
        return
    ran = [k for k in KINDS if k in _outcomes]
    good = [k for k in ran if all(_outcomes[k])]
    terminalreporter.write_sep("-", "fault suite")
    terminalreporter.write_line(
        f"Fault suite: {len(good)} of {len(ran)} fault kinds: nothing lost, one clear message"
    )
    for kind in ran:
        if kind not in good:
            terminalreporter.write_line(f"  failed: {kind}")
    missing = [k for k in KINDS if k not in _outcomes]
    if missing:
        terminalreporter.write_line(f"  not run: {', '.join(missing)}")
