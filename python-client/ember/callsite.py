"""Where in the user's program an action was called: the UI's Description."""

from __future__ import annotations

import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


# co_filename -> is it inside the package: every RDD and job asks this of the
# same few files, and abspath costs a microsecond or two each time.
_IN_EMBER: dict[str, bool] = {}


# co_filename -> what a call site shows of it.
_BASENAMES: dict[str, str] = {}


def _in_ember(filename: str) -> bool:
    inside = _IN_EMBER.get(filename)
    if inside is None:
        # A relative co_filename is resolved against the current directory, which
        # may change: only absolute names are remembered.
        inside = os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)
        if os.path.isabs(filename) and len(_IN_EMBER) < 4096:
            _IN_EMBER[filename] = inside
    return inside


def call_site() -> tuple[str, str]:
    """Returns ``(description, site)``, e.g. ``("collect at wc.py:7", "wc.py:7")``.

    The action is the outermost Ember function the user called; the site is
    the user's line that called it (``<stdin>:3`` in an interactive session).
    """
    frame = sys._getframe(1)
    action = "action"
    known = _IN_EMBER.get                  # every RDD and job comes here: no call per frame
    while frame is not None:
        code = frame.f_code
        inside = known(code.co_filename)
        if inside is None:
            inside = _in_ember(code.co_filename)
        if not inside:
            break
        name = code.co_name
        if not name.startswith("_"):
            action = name
        frame = frame.f_back
    if frame is None:
        return action, ""
    filename = frame.f_code.co_filename
    base = _BASENAMES.get(filename)
    if base is None:
        base = filename if filename.startswith("<") else os.path.basename(filename)
        if len(_BASENAMES) < 4096:
            _BASENAMES[filename] = base
    site = f"{base}:{frame.f_lineno}"
    return f"{action} at {site}", site
