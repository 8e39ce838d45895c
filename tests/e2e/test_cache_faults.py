"""Losing cached partitions: a MEMORY_ONLY partition whose block manager died
is recomputed from lineage; a replicated one is read from its other copy."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from conftest import Gateway, start_sc, wait_until
from ember import SparkContext
from ember.storagelevel import StorageLevel
from test_cache import computations, storage, tracked

TIMEOUT_MS = 2000


@pytest.fixture
def fresh_sc(request: pytest.FixtureRequest):
    """A private cluster per test, with a short heartbeat timeout, for tests that kill daemons."""
    return start_sc(request, f"e2e-cache-{request.node.name}",
                    EMBER_HEARTBEAT_TIMEOUT_MS=str(TIMEOUT_MS))


def kill_block_manager(sc: SparkContext, gw: Gateway, index: int) -> None:
    proc = next(p for p in sc._cluster.processes if f"blockd-{index}" in " ".join(p.args))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_until(lambda: any(b["id"] == f"blockd-{index}" and b["state"] == "dead"
                                  for b in gw.api("/blockmanagers")), timeout=15)


def test_lost_memory_only_partitions_are_recomputed(fresh_sc: SparkContext,
                                                    tmp_path: Path) -> None:
    gw = Gateway(fresh_sc._client.address)
    rdd = fresh_sc.parallelize(range(1000), 4).mapPartitionsWithIndex(tracked(tmp_path))
    rdd = rdd.map(lambda x: x * 3).persist(StorageLevel.MEMORY_ONLY)
    assert rdd.sum() == 3 * sum(range(1000))
    assert computations(tmp_path) == 4
    lost = blockd_address(gw, 1)
    held_by_1 = sum(1 for r in storage(gw, fresh_sc) for p in r["partitions"]
                    if p["blockManagers"] == [lost])
    kill_block_manager(fresh_sc, gw, 1)
    assert rdd.sum() == 3 * sum(range(1000))
    assert computations(tmp_path) == 4 + held_by_1
    assert held_by_1 > 0


def blockd_address(gw: Gateway, index: int) -> str:
    return next(b["address"] for b in gw.api("/blockmanagers") if b["id"] == f"blockd-{index}")


def test_replicated_partitions_survive_a_lost_block_manager(fresh_sc: SparkContext,
                                                           tmp_path: Path) -> None:
    gw = Gateway(fresh_sc._client.address)
    rdd = fresh_sc.parallelize(range(1000), 4).mapPartitionsWithIndex(tracked(tmp_path))
    rdd = rdd.map(lambda x: x + 1).persist(StorageLevel.MEMORY_ONLY_2)
    assert rdd.sum() == sum(range(1, 1001))
    [entry] = [r for r in storage(gw, fresh_sc) if r["id"] == rdd.id]
    assert all(len(p["blockManagers"]) == 2 for p in entry["partitions"]), entry
    kill_block_manager(fresh_sc, gw, 1)
    assert rdd.sum() == sum(range(1, 1001))
    assert computations(tmp_path) == 4, "a replicated partition was recomputed"
