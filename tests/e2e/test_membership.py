"""Membership: a worker and its block manager that stop heartbeating are
declared dead after the master's timeout, their work runs elsewhere, and they
register again by themselves when they come back."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import Gateway, start_sc, wait_until
from ember import SparkContext

TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
def sc(request: pytest.FixtureRequest):
    yield start_sc(request, "e2e-membership", EMBER_HEARTBEAT_TIMEOUT_MS=str(TIMEOUT_MS))


def executor_states(gw: Gateway) -> dict[str, str]:
    return {e["id"]: e["state"] for e in gw.api("/executors")}


def test_silent_worker_is_declared_dead_and_comes_back(sc: SparkContext) -> None:
    gw = Gateway.of(sc)
    cluster = sc._cluster
    worker = next(p.pid for p in cluster.processes if "worker-1" in " ".join(p.args))
    blockd = next(p.pid for p in cluster.processes if "blockd-1" in " ".join(p.args))
    assert executor_states(gw) == {"worker-0": "alive", "worker-1": "alive"}

    os.kill(worker, signal.SIGSTOP)
    os.kill(blockd, signal.SIGSTOP)
    try:
        assert wait_until(lambda: executor_states(gw).get("worker-1") == "dead",
                          timeout=TIMEOUT_MS / 1000 * 5), executor_states(gw)
        # The cluster keeps working on the remaining worker.
        words = sc.parallelize(["a b", "b c", "c a", "a"], 4).flatMap(str.split)
        counts = dict(words.map(lambda w: (w, 1)).reduceByKey(lambda x, y: x + y, 2).collect())
        assert counts == {"a": 3, "b": 2, "c": 2}
    finally:
        os.kill(blockd, signal.SIGCONT)
        os.kill(worker, signal.SIGCONT)

    # Its next heartbeat is answered "unknown", so it registers again.
    assert wait_until(lambda: executor_states(gw).get("worker-1") == "alive", timeout=10), \
        executor_states(gw)
    total = sc.parallelize(range(100), 8).map(lambda x: x * 2).sum()
    assert total == 9900
