"""The driver's console progress bar while it waits for a job, as Spark draws it::

    [Stage 1:=====================>                                    (3 + 2) / 8]

3 tasks of stage 1 done, 2 running, 8 in all; one such segment per active stage
(at most three) on one line of stderr, rewritten in place and cleared when the
job ends. It shows only when stderr is a terminal, once the job has run for
half a second (fast jobs never flicker), one job at a time, and never with
``spark.ui.showConsoleProgress=false``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, Optional, TextIO, Union

FIRST_DELAY_S = 0.5         # as Spark's ConsoleProgressBar
UPDATE_INTERVAL_S = 0.2
MAX_STAGES = 3
DEFAULT_WIDTH = 80

# One bar owns the terminal line: jobs waited for in several threads would
# garble it, so only the first of them draws.
_terminal = threading.Lock()


def render(stages: list[dict], width: int) -> str:
    """The bar for the ACTIVE stages of a job's ``stages`` (from GET .../jobs/{id}).

    Each of at most MAX_STAGES active stages, by id, gets an equal share of
    ``width`` columns. Returns "" when no stage is active.

    Example
    -------
    >>> render([{"stageId": 1, "status": "ACTIVE", "numTasks": 8,
    ...          "numCompleteTasks": 3, "numActiveTasks": 2}], 40)
    '[Stage 1:=======>           (3 + 2) / 8]'
    """
    active = sorted((s for s in stages if s.get("status") == "ACTIVE"),
                    key=lambda s: s["stageId"])[:MAX_STAGES]
    if not active:
        return ""
    share = width // len(active)
    return "".join(_segment(s, share) for s in active)


def _segment(stage: dict, width: int) -> str:
    total, done = stage.get("numTasks", 0), stage.get("numCompleteTasks", 0)
    header = f"[Stage {stage['stageId']}:"
    tail = f"({done} + {stage.get('numActiveTasks', 0)}) / {total}]"
    room = width - len(header) - len(tail)
    if room <= 0:
        return header + tail
    filled = room * done // total if total else room
    return header + "".join("=" if i < filled else ">" if i == filled else " "
                            for i in range(room)) + tail


class ConsoleProgressBar:
    """Draws one job's progress on a terminal stream; close() clears the line."""

    def __init__(self, stream: TextIO, width: int, release: Callable[[], None]) -> None:
        self._stream = stream
        self._width = width
        self._release = release
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._line = ""

    def update(self, status: dict) -> None:
        """Redraws from a job status (GET .../jobs/{id}) when due and changed."""
        now = time.monotonic()
        if now - self._started < FIRST_DELAY_S or now - self._drawn_at < UPDATE_INTERVAL_S:
            return
        line = render(status.get("stages", []), self._width)
        if not line:
            self._clear()                # between stages, or the job is over
        elif line != self._line:
            self._write("\r" + line.ljust(len(self._line)))
            self._line = line
            self._drawn_at = now

    def close(self) -> None:
        """Clears the bar and gives the terminal line back."""
        self._clear()
        self._release()

    def _clear(self) -> None:
        """Blanks the line and leaves the cursor at its start."""
        if self._line:
            self._write("\r" + " " * len(self._line) + "\r")
            self._line = ""

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):    # a closed or broken terminal: draw nothing more
            self._width = 0


class _NoProgressBar:
    """What waiting uses when no bar is drawn."""

    def update(self, status: dict) -> None:
        pass

    def close(self) -> None:
        pass


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _width(stream: Any) -> int:
    """Columns of the terminal (COLUMNS wins, as in Spark), less one so that a
    full line never wraps."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        try:
            columns = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
    return (columns if columns > 0 else DEFAULT_WIDTH) - 1


def for_job(conf: Any, stream: Optional[TextIO] = None
            ) -> Union[ConsoleProgressBar, _NoProgressBar]:
    """The progress bar for one job being waited for: drawn on ``stream``
    (default stderr) when it is a terminal, spark.ui.showConsoleProgress is not
    "false" and no other job's bar is on screen; else one that draws nothing.

    Example
    -------
    >>> import io
    >>> from ember.conf import SparkConf
    >>> for_job(SparkConf(), io.StringIO()).update({"stages": []})  # not a terminal
    """
    stream = stream if stream is not None else sys.stderr
    enabled = str(conf.get("spark.ui.showConsoleProgress", "true")).strip().lower() != "false"
    if not enabled or not _is_terminal(stream) or not _terminal.acquire(blocking=False):
        return _NoProgressBar()
    return ConsoleProgressBar(stream, _width(stream), _terminal.release)
