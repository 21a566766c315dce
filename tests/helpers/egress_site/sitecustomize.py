"""Installs the test egress guard in a child Python process (see tests/helpers/egress.py).

Python imports ``sitecustomize`` at start-up from ``sys.path``; tests put this folder on
``PYTHONPATH`` together with the guard's settings, so the CLI under test runs with every
outgoing connection recorded (and refused unless allowed) from its first line on.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The repository root, so ``tests.helpers.egress`` imports in the child.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.helpers.egress import install_from_env  # noqa: E402

install_from_env()
