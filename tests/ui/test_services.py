"""The Services contract, checked at run time: the app's Core and the tests' fake both have
every member the widgets are written against, with the same parameters and the same
sync/async nature (mypy checks the types; this catches a drift when mypy is not run)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from halext_desktop.app.core import Core
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.services import Services
from tests.helpers.fake_services import FakeServices

MEMBERS = sorted(name for name in vars(Services) if not name.startswith("_"))
PROPERTIES = [n for n in MEMBERS if isinstance(vars(Services)[n], property)]
METHODS = [n for n in MEMBERS if n not in PROPERTIES]


@pytest.fixture
def core() -> Iterator[Core]:
    c = Core(settings=Settings(None, env={}), env={})
    yield c
    c.close()


@pytest.fixture(params=["core", "fake"])
def implementation(request: pytest.FixtureRequest, core: Core) -> Any:
    return core if request.param == "core" else FakeServices(Settings(None, env={}))


def test_the_contract_is_read_from_the_protocol() -> None:
    assert {"settings", "router", "usage"} <= set(PROPERTIES)
    assert {"check_route", "route_models", "routes", "database_path", "policy"} <= set(METHODS)


def mismatches(implementation: Any) -> list[str]:
    """Every way ``implementation`` differs from the Protocol's members."""
    wrong = [
        f"{n}: missing or None" for n in PROPERTIES if getattr(implementation, n, None) is None
    ]
    for name in METHODS:
        wanted, have = getattr(Services, name), getattr(implementation, name, None)
        if not callable(have):
            wrong.append(f"{name}: missing")
            continue
        if inspect.iscoroutinefunction(have) != inspect.iscoroutinefunction(wanted):
            wrong.append(f"{name}: async in one, not in the other")
        want_params = list(inspect.signature(wanted).parameters)[1:]  # without self
        if list(inspect.signature(have).parameters) != want_params:
            wrong.append(f"{name}: parameters {inspect.signature(have)}")
    return wrong


def test_core_and_the_fake_keep_the_whole_contract(implementation: Any) -> None:
    assert mismatches(implementation) == []


def test_a_drift_is_caught() -> None:
    class Drifted(FakeServices):
        async def routes(self) -> list[Any]:  # type: ignore[override]
            return []

        async def check_route(self, route: str, extra: int = 0) -> Any:  # type: ignore[override]
            return None

    drifted = Drifted(Settings(None, env={}))
    drifted.usage = None  # type: ignore[assignment]
    assert mismatches(drifted) == [
        "usage: missing or None",
        f"check_route: parameters {inspect.signature(drifted.check_route)}",
        "routes: async in one, not in the other",
    ]
