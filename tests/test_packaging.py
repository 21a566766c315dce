"""The wheel installs one import package, ``halext_desktop``, with everything it needs.

The owner's folders stay at the top of the repository and are mapped into the package by
pyproject.toml. A folder missing from the explicit package list, or one without an
``__init__.py``, would be dropped from the wheel without a word; these tests catch both,
build the wheel, and run it from outside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGE_DIR: dict[str, str] = SETUPTOOLS["package-dir"]
PACKAGES: list[str] = SETUPTOOLS["packages"]


def _package_folders() -> dict[str, Path]:
    """Every folder that holds Python files under a mapped folder, by its import name."""
    found: dict[str, Path] = {}
    for pkg, folder in PACKAGE_DIR.items():
        base = ROOT / folder
        for path in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            if path.name == "__pycache__" or path.is_symlink():
                continue
            if not any(path.glob("*.py")):
                continue
            rel = path.relative_to(base).parts
            found[".".join((pkg, *rel))] = path
    return found


def test_every_folder_with_python_files_is_a_listed_package() -> None:
    folders = _package_folders()
    missing_init = [name for name, path in folders.items() if not (path / "__init__.py").exists()]
    assert missing_init == [], "these folders need an __init__.py or they leave the wheel"
    assert sorted(folders) == sorted(PACKAGES)


def test_the_checkout_mirrors_the_wheel_layout() -> None:
    """halext_desktop/<name> links to the top-level folder, as package-dir maps it."""
    for pkg, folder in PACKAGE_DIR.items():
        if pkg == "halext_desktop":
            continue
        link = ROOT / "halext_desktop" / pkg.rsplit(".", 1)[1]
        assert link.is_symlink(), f"{link} should be a symlink"
        assert link.resolve() == (ROOT / folder).resolve()


def _copy_sources(dest: Path) -> Path:
    """What a clean clone holds for building: no venv, caches or build leftovers."""
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in {*PACKAGE_DIR.values()}:
        shutil.copytree(ROOT / folder, src / folder, symlinks=True, ignore=ignore)
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(work)
    out = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("halext_desktop-*.whl")
    return built


def test_the_wheel_holds_one_package_with_its_migrations_and_resources(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"halext_desktop"}
    for required in (
        "halext_desktop/__main__.py",
        "halext_desktop/storage/migrations/env.py",
        "halext_desktop/storage/migrations/script.py.mako",
        "halext_desktop/resources/halext-desktop.desktop",
        "halext_desktop/resources/icons/halext-desktop.svg",
    ):
        assert required in names
    versions = sorted(p.name for p in (ROOT / "storage/migrations/versions").glob("0*.py"))
    shipped = sorted(
        n.rsplit("/", 1)[1]
        for n in names
        if n.startswith("halext_desktop/storage/migrations/versions/0")
    )
    assert shipped == versions and versions
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "halext-desktop = halext_desktop.app.cli:run" in text


def test_the_installed_wheel_runs_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
        + [str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(target),
        "HALEXT_DESKTOP_HOME": str(tmp_path / "home"),
        "QT_QPA_PLATFORM": "offscreen",
        # Nothing listens here: the commands must still answer, quickly, without a network.
        "OLLAMA_HOST": "127.0.0.1:9",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=outside, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    where = run("-c", "import halext_desktop.app.cli as m; print(m.__file__)")
    assert where.stdout.strip().startswith(str(target)), where.stderr
    assert run("-m", "halext_desktop", "config", "set", "halext_url", "").returncode == 0
    models = run("-m", "halext_desktop", "models", "--json")
    assert '"models": []' in models.stdout, models.stderr
    usage = run("-m", "halext_desktop", "usage")
    assert usage.returncode == 0 and "No requests" in usage.stdout, usage.stderr
    window = run(
        "-c",
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from halext_desktop.app.core import Core\n"
        "from halext_desktop.app.gui import build_window\n"
        "from halext_desktop.app.loop_thread import LoopThread\n"
        "core = Core(); lt = LoopThread().start()\n"
        "w = build_window(core, lt); w.show(); app.processEvents()\n"
        "print('shown', w.isVisible(), w.windowIcon().isNull())\n"
        "lt.run(core.aclose()); lt.stop(); core.close()\n",
    )
    assert window.stdout.strip() == "shown True False", window.stderr
    db = tmp_path / "home" / "data" / "halext.db"
    assert db.exists()  # the migrations shipped in the wheel created it
