"""The wheel's package list is explicit (pyproject.toml): a folder with ``__init__.py`` left
out of it would be dropped from the wheel without a word, so every one must be listed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("app", "ui", "storage", "routing", "resources")


def listed_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def packages_on_disk() -> set[str]:
    found = {"halext_desktop"}
    for top in FOLDERS:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            found.add(".".join(("halext_desktop", *rel)))
    return found


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    on_disk = packages_on_disk()
    assert {"halext_desktop.ui.settings", "halext_desktop.routing.backends"} <= on_disk
    assert on_disk - listed_packages() == set()


def test_nothing_listed_is_missing_from_disk() -> None:
    assert listed_packages() - packages_on_disk() == set()
