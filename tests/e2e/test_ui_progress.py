"""The driver's console progress bar (ember/progress.py): Spark's layout, only on
a terminal, off with spark.ui.showConsoleProgress=false, and a real driver
drawing it on a pseudo-terminal while its job runs."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys

import pytest

from conftest import CLIENT_DIR
from ember import progress
from ember.conf import SparkConf

BAR = re.compile(r"\[Stage \d+:[=> ]*\((\d+) \+ (\d+)\) / 8\]")


def stage(stage_id: int, done: int, running: int, total: int, status: str = "ACTIVE") -> dict:
    return {"stageId": stage_id, "status": status, "numTasks": total,
            "numCompleteTasks": done, "numActiveTasks": running}


@pytest.mark.parametrize("stages, width, want", [
    ([stage(1, 3, 2, 8)], 40, "[Stage 1:=======>           (3 + 2) / 8]"),
    ([stage(1, 0, 2, 8)], 30, "[Stage 1:>        (0 + 2) / 8]"),
    ([stage(1, 8, 0, 8)], 30, "[Stage 1:=========(8 + 0) / 8]"),
    ([stage(2, 1, 1, 2), stage(1, 0, 1, 4)], 50,
     "[Stage 1:>   (0 + 1) / 4][Stage 2:==> (1 + 1) / 2]"),
    ([stage(1, 1, 0, 2, "COMPLETE"), stage(2, 0, 0, 3, "PENDING")], 40, ""),
    ([stage(i, 0, 1, 9) for i in range(1, 6)], 90,
     "[Stage 1:>        (0 + 1) / 9][Stage 2:>        (0 + 1) / 9]"
     "[Stage 3:>        (0 + 1) / 9]"),
    ([stage(12, 5, 3, 100)], 15, "[Stage 12:(5 + 3) / 100]"),
], ids=["one stage", "nothing done", "all done", "two stages by id", "none active",
        "at most three", "too narrow for a bar"])
def test_render_follows_sparks_layout(stages, width, want):
    got = progress.render(stages, width)
    assert got == want, f"\ngot  {got!r}\nwant {want!r}"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_off_a_terminal_or_when_turned_off():
    assert isinstance(progress.for_job(SparkConf(), io.StringIO()), progress._NoProgressBar)
    off = SparkConf().set("spark.ui.showConsoleProgress", "False")
    assert isinstance(progress.for_job(off, Terminal()), progress._NoProgressBar)
    bar = progress.for_job(SparkConf(), Terminal())
    try:
        assert isinstance(bar, progress.ConsoleProgressBar)
        assert isinstance(progress.for_job(SparkConf(), Terminal()), progress._NoProgressBar), \
            "a second job's bar would share the line"
    finally:
        bar.close()
    progress.for_job(SparkConf(), Terminal()).close()     # the line is free again


def test_bar_waits_half_a_second_then_draws_and_clears(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    out = Terminal()
    bar = progress.for_job(SparkConf(), out)
    status = {"stages": [stage(3, 1, 2, 8)]}
    bar.update(status)
    assert out.getvalue() == "", "drawn before half a second"
    now[0] += 0.75
    bar.update(status)
    drawn = out.getvalue()
    assert drawn.startswith("\r[Stage 3:") and drawn.endswith("(1 + 2) / 8]")
    now[0] += 0.125                    # binary fractions: exact clock arithmetic
    bar.update({"stages": [stage(3, 2, 2, 8)]})
    assert out.getvalue() == drawn, "redrawn sooner than every 200 ms"
    now[0] += 0.125
    bar.update({"stages": [stage(3, 2, 2, 8)]})
    assert out.getvalue().endswith("(2 + 2) / 8]")
    cleared = "\r" + " " * (len(drawn) - 1) + "\r"
    now[0] += 0.25
    bar.update({"stages": [stage(3, 8, 0, 8, "COMPLETE"), stage(4, 0, 0, 2, "PENDING")]})
    assert out.getvalue().endswith(cleared), "no active stage: the line is not cleared"
    bar.close()
    assert out.getvalue().endswith(cleared) and not out.getvalue().endswith(cleared * 2), \
        "cleared twice"


def test_close_clears_the_bar():
    out = Terminal()
    bar = progress.for_job(SparkConf(), out)
    bar._started -= 1                  # as if the job had run for a second
    bar.update({"stages": [stage(1, 0, 1, 2)]})
    drawn = out.getvalue()
    bar.close()
    assert out.getvalue() == drawn + "\r" + " " * (len(drawn) - 1) + "\r"


DRIVER = """
import sys, time
sys.path.insert(0, sys.argv[3])
from ember import SparkConf, SparkContext
conf = SparkConf().set("spark.ui.showConsoleProgress", sys.argv[2])
sc = SparkContext("ember://" + sys.argv[1], "console-progress", conf=conf)
print(sc.parallelize(range(8), 8).map(lambda x: time.sleep(0.4) or x).sum())
sc.stop()
"""


def run_on_terminal(gateway_address: str, secret: str, show: str) -> tuple[str, str]:
    """Runs the driver with stderr on a pseudo-terminal: (stdout, what the terminal got)."""
    controller, terminal = pty.openpty()
    env = dict(os.environ, COLUMNS="70", EMBER_AUTH_SECRET=secret)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, gateway_address, show,
                             str(CLIENT_DIR)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=terminal, env=env)
    os.close(terminal)
    screen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:                # EIO: the driver closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=60) == 0, screen.decode(errors="replace")
    return out, screen.decode(errors="replace")


def test_driver_draws_the_bar_on_a_terminal_while_its_job_runs(sc):
    out, screen = run_on_terminal(sc._client.address, sc._cluster.secret, "true")
    assert out.strip() == "28"
    bars = BAR.findall(screen)
    assert bars, f"no progress bar on the terminal: {screen!r}"
    assert len(set(bars)) >= 2, f"the bar never moved: {bars}"
    assert all(int(running) <= 2 for _, running in bars), "more tasks running than cores"
    assert re.search(r"\r +\r$", screen), f"the bar was not cleared at the end: {screen[-80:]!r}"
    assert max(len(line) for line in screen.split("\r")) <= 69, "wider than COLUMNS - 1"


def test_driver_draws_no_bar_when_turned_off(sc):
    out, screen = run_on_terminal(sc._client.address, sc._cluster.secret, "false")
    assert out.strip() == "28"
    assert "[Stage" not in screen, screen
