"""``python -m halext_desktop``: the same as the ``halext-desktop`` command."""

from halext_desktop.app.cli import run

run()
