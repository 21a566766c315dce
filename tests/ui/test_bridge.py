"""The bridge between the loop thread and the GUI thread, over a real LoopThread: outcomes
reach only receivers that are still alive, no error is ever dropped, stream events keep
their order, and cancelling a stream closes it. Waits are on signals, never on sleeps."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, wait
from typing import Any

import pytest
from PySide6.QtCore import QObject, Signal
from pytestqt.qtbot import QtBot

from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.ui.bridge import Bridge

WAIT_MS = 5_000


class Receiver(QObject):
    """A widget stand-in whose bound methods are the bridge's callbacks.

    Signals:
        sig_got(object): a result or event arrived.
        sig_failed(object): an error arrived.
    """

    sig_got = Signal(object)
    sig_failed = Signal(object)

    def __init__(self, got: list[Any], failed: list[BaseException]) -> None:
        super().__init__()
        self.got_values = got
        self.failures = failed

    def got(self, value: Any) -> None:
        self.got_values.append(value)
        self.sig_got.emit(value)

    def failed(self, exc: BaseException) -> None:
        self.failures.append(exc)
        self.sig_failed.emit(exc)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread().start()
    yield lt
    lt.stop()


@pytest.fixture
def bridge(qtbot: QtBot, loop_thread: LoopThread) -> Bridge:
    return Bridge(loop_thread)


@pytest.fixture
def unhandled(bridge: Bridge) -> list[str]:
    seen: list[str] = []
    bridge.sig_unhandled_error.connect(seen.append)
    return seen


def new_receiver() -> Receiver:
    return Receiver([], [])


def gated(gate: threading.Event, outcome: Any) -> Any:
    """A coroutine that waits (off the loop's thread) until ``gate`` opens, then returns
    ``outcome`` or raises it when it is an exception."""

    async def run() -> Any:
        opened = await asyncio.to_thread(gate.wait, WAIT_MS / 1000)
        assert opened, "the test never opened the gate"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return run()


def delete(qtbot: QtBot, obj: QObject) -> None:
    """Delete ``obj`` the way Qt deletes a closed window: later, from the event loop."""
    with qtbot.waitSignal(obj.destroyed, timeout=WAIT_MS):
        obj.deleteLater()


def drain(qtbot: QtBot, bridge: Bridge, *done: Future[Any]) -> None:
    """Return once the outcomes of the ``done`` futures have been handled on the GUI thread.

    A future's outcome is queued for the GUI thread by its done-callback, on the loop
    thread, before that thread runs anything else; so once the futures are done, a later
    call's delivery arriving proves theirs were handled (deliveries are queued in order).
    """
    wait(done, timeout=WAIT_MS / 1000)
    assert all(f.done() for f in done)

    async def marker() -> str:
        return "marker"

    probe = new_receiver()
    with qtbot.waitSignal(probe.sig_got, timeout=WAIT_MS):
        bridge.call(marker(), probe.got)


def test_a_result_reaches_a_live_receiver(qtbot: QtBot, bridge: Bridge) -> None:
    r = new_receiver()
    with qtbot.waitSignal(r.sig_got, timeout=WAIT_MS) as got:
        bridge.call(asyncio.sleep(0, result=42), r.got)
    assert got.args == [42]
    assert threading.current_thread() is threading.main_thread()


def test_a_result_for_a_deleted_receiver_is_not_delivered(
    qtbot: QtBot, bridge: Bridge, unhandled: list[str]
) -> None:
    got: list[Any] = []
    r = Receiver(got, [])
    gate = threading.Event()
    fut = bridge.call(gated(gate, "late"), r.got)  # receiver inferred from the bound method
    delete(qtbot, r)
    gate.set()
    assert fut.result(WAIT_MS / 1000) == "late"  # the work itself completed
    drain(qtbot, bridge, fut)
    assert got == []
    assert unhandled == []


def test_a_lambda_is_dropped_when_its_owner_was_deleted(qtbot: QtBot, bridge: Bridge) -> None:
    got: list[Any] = []
    owner = new_receiver()
    gate = threading.Event()
    fut = bridge.call(gated(gate, "late"), lambda value: got.append(value), owner=owner)
    delete(qtbot, owner)
    gate.set()
    drain(qtbot, bridge, fut)
    assert got == []


def test_an_error_without_on_error_is_logged_and_announced(
    qtbot: QtBot, bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    r = new_receiver()

    async def broken() -> None:
        raise RuntimeError("the index is gone")

    with qtbot.waitSignal(bridge.sig_unhandled_error, timeout=WAIT_MS) as announced:
        bridge.call(broken(), r.got)
    assert announced.args == ["RuntimeError: the index is gone"]
    records = [r for r in caplog.records if r.name == "halext_desktop.ui.bridge"]
    assert [rec.levelno for rec in records] == [logging.ERROR]
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)
    assert r.got_values == []


def test_an_error_reaches_a_live_receivers_on_error_and_nothing_else(
    qtbot: QtBot, bridge: Bridge, unhandled: list[str]
) -> None:
    r = new_receiver()
    returned = ValueError("a value, not an error")
    with qtbot.waitSignal(r.sig_failed, timeout=WAIT_MS) as failed:
        first = bridge.call(asyncio.sleep(0, result=returned), r.got, r.failed)
        second = bridge.call(_raise(KeyError("k")), r.got, r.failed)
    assert isinstance(failed.args[0], KeyError)
    drain(qtbot, bridge, first, second)
    assert r.got_values == [returned]  # a returned exception object is a result
    assert [type(e) for e in r.failures] == [KeyError]
    assert unhandled == []


async def _raise(exc: BaseException) -> None:
    raise exc


def test_an_error_for_a_deleted_receiver_is_neither_delivered_nor_surfaced(
    qtbot: QtBot, bridge: Bridge, unhandled: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="halext_desktop.ui.bridge")
    failures: list[BaseException] = []
    r = Receiver([], failures)
    gate = threading.Event()
    fut = bridge.call(gated(gate, OSError("disk gone")), r.got, r.failed)
    delete(qtbot, r)
    gate.set()
    drain(qtbot, bridge, fut)
    assert failures == []
    assert unhandled == []
    # Still not silent: the log keeps one line that nobody was left to tell.
    notes = [rec for rec in caplog.records if rec.name == "halext_desktop.ui.bridge"]
    assert [rec.levelno for rec in notes] == [logging.INFO]
    assert "disk gone" in notes[0].getMessage()


def test_stream_events_arrive_in_order_on_the_gui_thread(qtbot: QtBot, bridge: Bridge) -> None:
    r = new_receiver()
    threads: set[int] = set()
    r.sig_got.connect(lambda _v: threads.add(threading.get_ident()))

    async def numbers() -> AsyncIterator[int]:
        for i in range(200):
            yield i
            if i % 17 == 0:
                await asyncio.sleep(0)  # let other loop work interleave

    with qtbot.waitSignal(r.sig_got, timeout=WAIT_MS, check_params_cb=lambda v: v == 199):
        fut = bridge.stream(numbers, r.got)
    assert r.got_values == list(range(200))
    assert threads == {threading.get_ident()}
    assert fut.result(WAIT_MS / 1000) is None


def test_an_error_mid_stream_follows_the_events_before_it(
    qtbot: QtBot, bridge: Bridge, unhandled: list[str]
) -> None:
    r = new_receiver()

    async def two_then_fail() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ConnectionError("dropped")

    with qtbot.waitSignal(r.sig_failed, timeout=WAIT_MS):
        bridge.stream(two_then_fail, r.got, r.failed)
    assert r.got_values == [1, 2]
    assert [str(e) for e in r.failures] == ["dropped"]
    assert unhandled == []


def test_cancelling_the_streams_future_closes_the_iterator(
    qtbot: QtBot, bridge: Bridge, unhandled: list[str]
) -> None:
    r = new_receiver()
    closed = threading.Event()
    never = threading.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.to_thread(never.wait, WAIT_MS / 1000)
            yield "never reached"
        finally:
            closed.set()  # where a backend closes its HTTP stream

    with qtbot.waitSignal(r.sig_got, timeout=WAIT_MS):
        fut = bridge.stream(endless, r.got, r.failed)
    assert not closed.is_set()
    fut.cancel()
    assert closed.wait(WAIT_MS / 1000), "the stream's finally did not run"
    never.set()  # release the worker thread the generator was waiting on
    drain(qtbot, bridge, fut)
    assert fut.cancelled()
    assert r.got_values == ["first"]
    assert r.failures == [] and unhandled == []


@pytest.mark.parametrize("state", ["stopping", "closed"])
def test_a_call_after_the_loop_stops_is_dropped_quietly(qtbot: QtBot, state: str) -> None:
    """A signal that arrives while the window closes (the loop stopping, or already gone)
    must neither raise into Qt's event loop nor leave a coroutine never awaited."""
    lt = LoopThread().start()
    late_bridge = Bridge(lt)
    announced: list[str] = []
    late_bridge.sig_unhandled_error.connect(announced.append)
    if state == "stopping":
        lt._stopping = True  # stop() has begun; the loop still runs its last tasks
    else:
        lt.stop()
    ran: list[str] = []

    async def work() -> str:
        ran.append("ran")
        return "late"

    coro = work()
    receiver = new_receiver()
    fut = late_bridge.call(coro, receiver.got, receiver.failed)
    lt.stop()
    assert fut.cancelled()
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED  # no "never awaited"
    assert ran == [] and receiver.got_values == [] and receiver.failures == []
    assert announced == []
