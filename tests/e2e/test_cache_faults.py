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
from test_output_faults import mount_tmpfs, unmount

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
    gw = Gateway.of(fresh_sc)
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
    gw = Gateway.of(fresh_sc)
    rdd = fresh_sc.parallelize(range(1000), 4).mapPartitionsWithIndex(tracked(tmp_path))
    rdd = rdd.map(lambda x: x + 1).persist(StorageLevel.MEMORY_ONLY_2)
    assert rdd.sum() == sum(range(1, 1001))
    [entry] = [r for r in storage(gw, fresh_sc) if r["id"] == rdd.id]
    assert all(len(p["blockManagers"]) == 2 for p in entry["partitions"]), entry
    kill_block_manager(fresh_sc, gw, 1)
    assert rdd.sum() == sum(range(1, 1001))
    assert computations(tmp_path) == 4, "a replicated partition was recomputed"


def test_a_full_spill_directory_does_not_stop_the_block_manager(
        request: pytest.FixtureRequest) -> None:
    """Block managers with 1 MiB of memory spill to 1 MiB disks: spills fail
    with ENOSPC, pinned shuffle outputs stay in memory, DISK_ONLY partitions
    are dropped (and computed again when needed); jobs stay correct."""
    sc = start_sc(request, "e2e-spill-full", EMBER_BLOCKD_MEMORY=str(1 << 20))
    cluster = sc._cluster
    spills = [Path(cluster.run_dir) / f"blockd-{i}-spill" for i in range(cluster.workers)]
    mount_tmpfs(spills[0], "size=1m")
    request.addfinalizer(lambda: unmount(spills[0]))
    mount_tmpfs(spills[1], "size=1m")
    request.addfinalizer(lambda: unmount(spills[1]))
    daemons = cluster.pids()

    pairs = sc.parallelize(range(60000), 4).map(lambda i: (i % 5000, f"{i:08d}" + "y" * 60))
    grouped = pairs.groupByKey(4).mapValues(len)
    assert dict(grouped.collect()) == {k: 12 for k in range(5000)}
    on_disk = pairs.persist(StorageLevel.DISK_ONLY)
    assert on_disk.count() == 60000
    assert on_disk.map(lambda kv: kv[0]).sum() == sum(i % 5000 for i in range(60000))
    assert sorted(cluster.pids()) == sorted(daemons), "a daemon died"
    logs = "".join((Path(cluster.log_dir) / f"blockd-{i}.log").read_text(errors="replace")
                   for i in range(cluster.workers))
    assert "No space left on device" in logs, logs[-3000:]
