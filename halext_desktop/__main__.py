"""``python -m halext_desktop``: the same as the ``halext-desktop`` command."""

import sys

from halext_desktop.app.cli import main

sys.exit(main())
