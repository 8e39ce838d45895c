"""Where in the user's program an action was called: the UI's Description."""

from __future__ import annotations

import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _in_ember(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)


def call_site() -> tuple[str, str]:
    """Returns ``(description, site)``, e.g. ``("collect at wc.py:7", "wc.py:7")``.

    The action is the outermost Ember function the user called; the site is
    the user's line that called it (``<stdin>:3`` in an interactive session).
    """
    frame = sys._getframe(1)
    action = "action"
    while frame is not None and _in_ember(frame.f_code.co_filename):
        name = frame.f_code.co_name
        if not name.startswith("_"):
            action = name
        frame = frame.f_back
    if frame is None:
        return action, ""
    filename = frame.f_code.co_filename
    base = filename if filename.startswith("<") else os.path.basename(filename)
    site = f"{base}:{frame.f_lineno}"
    return f"{action} at {site}", site
