"""House rule: routing/ and storage/ never import PySide6 (Qt stays in app/ and ui/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT_FREE = ("routing", "storage")
FORBIDDEN = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "qtpy")


def _is_forbidden(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in FORBIDDEN  # type: ignore[union-attr]


def qt_imports(source: str, filename: str = "<src>") -> list[str]:
    """Every Qt import in ``source``: ``import``/``from`` statements at any depth (inside
    functions, ``if TYPE_CHECKING``, try blocks) and ``importlib.import_module("...")`` /
    ``__import__("...")`` with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {a.name}" for a in node.names if _is_forbidden(a.name)
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _is_forbidden(node.module):
                found.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and _is_forbidden(arg.value)
            ):
                found.append(f"{node.lineno}: {name}({arg.value!r})")
    return found


def qt_free_sources() -> list[Path]:
    return sorted(p for pkg in QT_FREE for p in (ROOT / pkg).rglob("*.py"))


def test_the_scan_sees_the_packages() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in qt_free_sources()}
    assert "routing/refs.py" in names
    assert "storage/__init__.py" in names


@pytest.mark.parametrize(
    "source",
    [
        "import PySide6",
        "import os, PySide6.QtCore as qc",
        "from PySide6.QtCore import QObject",
        "from PySide6 import QtWidgets",
        "def f():\n    from PySide6.QtGui import QColor\n",
        "if TYPE_CHECKING:\n    from PySide6.QtCore import Signal\n",
        "try:\n    import shiboken6\nexcept ImportError:\n    pass\n",
        "import importlib\nqt = importlib.import_module('PySide6.QtCore')",
        "qt = __import__('PySide6')",
    ],
)
def test_the_scanner_catches_qt_imports(source: str) -> None:
    assert qt_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "from routing.refs import ModelRef",
        "from .PySide6 import x",  # a relative module that merely shares the name
        "text = 'PySide6 is only allowed in app/ and ui/'",
        "import PySide6_helpers_not_qt",
    ],
)
def test_the_scanner_ignores_non_qt(source: str) -> None:
    assert qt_imports(source) == []


@pytest.mark.parametrize("path", qt_free_sources(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_routing_and_storage_never_import_qt(path: Path) -> None:
    offending = qt_imports(path.read_text(encoding="utf-8"), str(path))
    assert offending == [], f"{path.relative_to(ROOT)} imports Qt: {offending}"
