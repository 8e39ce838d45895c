"""Peak resident memory of a process and all its descendants, sampled from /proc."""

from __future__ import annotations

import os
import threading
from collections import defaultdict

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _parents() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children[ppid].append(int(name))
    return children


def tree_rss(root: int) -> tuple[int, int]:
    """(bytes resident, processes) summed over root and its descendants."""
    children = _parents()
    total = count = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * PAGE_SIZE
            count += 1
        except OSError:
            pass
        todo.extend(children.get(pid, ()))
    return total, count


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU seconds of root and its living descendants."""
    children = _parents()
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            total += int(fields[11]) + int(fields[12])      # utime, stime
        except (OSError, ValueError, IndexError):
            pass
        todo.extend(children.get(pid, ()))
    return total / ticks


def deltas(readings: list[float]) -> list[float]:
    """Differences of consecutive readings: per-iteration CPU from tree_cpu_seconds taken
    before the first iteration and after each (seconds, 10 ms clock ticks)."""
    return [b - a for a, b in zip(readings, readings[1:])]


class TreeSampler:
    """Samples tree_rss(pid) every interval seconds from a thread until stop()."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, procs = tree_rss(self.pid)
            self.samples += 1
            if rss > self.peak_bytes:
                self.peak_bytes = rss
            self.peak_processes = max(self.peak_processes, procs)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
