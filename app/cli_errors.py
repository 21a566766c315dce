"""How the command line words a route failure: the error's own line, plus what only the app
knows — where the log file is (an internal error), and why a sign-in will not outlive the
command (no keyring). Shared by ``app/cli.py`` and ``app/cli_assist.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.storage.logfile import see_the_log

if TYPE_CHECKING:
    from halext_desktop.app.core import Core


def explain(core: Core, exc: RouteError) -> str:
    """``exc`` as one line for stderr (or a ``--json`` "error"), with the way out."""
    line = exc.one_line()
    if exc.kind is ErrorKind.INTERNAL:
        # Routing cannot know the log's path (it sits below storage): the front end names it.
        line += f"; {see_the_log()}"
    elif (
        exc.kind is ErrorKind.SIGNED_OUT
        and core.env_credentials is None
        and not core.secrets.persistent
    ):
        line += (
            ". There is no system keyring here, so `halext-desktop login` lasts one command: "
            "set HALEXT_USERNAME and HALEXT_PASSWORD instead"
        )
    return line
