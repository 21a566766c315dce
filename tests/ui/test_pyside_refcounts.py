"""PySide6 6.12.0 drops a reference to None on every void call; CPython 3.11 (where None is
not immortal) then aborts after a few thousand calls ("none_dealloc"). pyproject keeps 3.11
below 6.12; this says so in one failing test instead of a crash if an install ignores it."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject


def test_void_calls_keep_the_reference_count_of_none() -> None:
    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(100):
        obj.setObjectName("x")  # returns None
    lost = before - sys.getrefcount(None)
    # (Measured before the assert: pytest's rewritten assert itself takes references to None.)
    assert lost < 100, f"{lost} references to None lost in 100 void calls"
