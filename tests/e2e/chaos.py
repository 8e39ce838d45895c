"""A chaos monkey for one local cluster: kills a random worker, block manager
or Python subprocess of that cluster every few seconds and restarts killed
daemons as a supervisor would (same id, same arguments; a block manager on the
same address, since its worker knows it by address).

Only processes of the given SparkContext's cluster are touched: they are found
through its process handles and, for ember-pyexec, as children of its workers.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import traceback
from collections import Counter
from typing import Optional

from conftest import Gateway, children, wait_until
from ember import SparkContext

KINDS = ("worker", "blockd", "pyexec")


def _tag_of(proc: subprocess.Popen) -> str:
    args = list(proc.args)
    return args[args.index("--id") + 1]


def _own_args(proc: subprocess.Popen) -> list[str]:
    """The arguments the cluster gave the daemon, without the ones _spawn adds."""
    args = list(proc.args[1:])
    for flag in ("--ready-file", "--log-level"):
        i = args.index(flag)
        del args[i:i + 2]
    return args


class Chaos(threading.Thread):
    """Kills something every ``interval`` seconds (a random pause in that
    range), at most ``max_kills`` times, until stop() is called."""

    def __init__(self, sc: SparkContext, seed: int, interval: tuple[float, float],
                 max_kills: int) -> None:
        super().__init__(name="chaos", daemon=True)
        self.sc = sc
        self.cluster = sc._cluster
        self.gw = Gateway.of(sc)
        self.rng = random.Random(seed)
        self.interval = interval
        self.max_kills = max_kills
        self.kills: Counter[str] = Counter()
        self.restarts = 0
        self.error: Optional[str] = None     # the chaos thread's own traceback
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()
        self.join(60)

    def run(self) -> None:
        try:
            while sum(self.kills.values()) < self.max_kills:
                if self._done.wait(self.rng.uniform(*self.interval)):
                    return
                kind = self.rng.choice(KINDS)
                if getattr(self, f"_kill_{kind}")():
                    self.kills[kind] += 1
                    self._wait_all_alive()
        except BaseException:  # noqa: BLE001 - the test reports it
            self.error = traceback.format_exc()

    # ---- the victims ---------------------------------------------------------------
    def _daemons(self, program: str) -> list[subprocess.Popen]:
        return [p for p in self.cluster.processes
                if p.poll() is None and p.args[0].endswith("/" + program)]

    def _restart(self, proc: subprocess.Popen, program: str, listen: Optional[str]) -> None:
        """SIGKILLs proc and, after a moment, starts it again with its arguments."""
        args = _own_args(proc)
        if listen:
            args[args.index("--listen") + 1] = listen
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.cluster.processes.remove(proc)
        time.sleep(self.rng.uniform(0.2, 1.0))          # the supervisor notices
        self.restarts += 1
        self.cluster._spawn(program, f"{_tag_of(proc)}-restart{self.restarts}", args)

    def _kill_worker(self) -> bool:
        victims = self._daemons("ember-worker")
        if not victims:
            return False
        self._restart(self.rng.choice(victims), "ember-worker", None)
        return True

    def _kill_blockd(self) -> bool:
        victims = self._daemons("ember-blockd")
        if not victims:
            return False
        proc = self.rng.choice(victims)
        # Its worker knows it by address: it comes back on the same one.
        address = next(b["address"] for b in self.gw.api("/blockmanagers")
                       if b["id"] == _tag_of(proc))
        self._restart(proc, "ember-blockd", address)
        return True

    def _kill_pyexec(self) -> bool:
        pyexecs = [pid for w in self._daemons("ember-worker")
                   for pid in children(w.pid, "ember-pyexec")]
        if not pyexecs:
            return False
        try:
            os.kill(self.rng.choice(pyexecs), signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def _wait_all_alive(self) -> None:
        """Waits until every worker and block manager is registered and alive,
        so at most one thing is down at a time."""
        def all_alive() -> bool:
            executors = self.gw.api("/executors")
            blockds = self.gw.api("/blockmanagers")
            return (sum(e["state"] == "alive" for e in executors) >= self.cluster.workers
                    and sum(b["state"] == "alive" for b in blockds) >= self.cluster.workers)
        wait_until(all_alive, timeout=20, interval=0.1)
