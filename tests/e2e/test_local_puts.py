"""Blocks of 1 MiB or more go from a worker to its own block manager as a sealed memfd
(worker_blocks.c put_local, the block manager's PutBlockLocal), not as 1 MiB PutBlock
chunks over loopback TCP. Cached partitions, shuffle outputs and results stored that way
read back exactly as the lineage gives them; smaller blocks and the copy of a replicated
level (another block manager) still go in chunks.

The block managers log each block they read from the host's memory at debug level
("block=ID was read from this host's memory"): that is what the tests read.
"""

from __future__ import annotations

import glob
import os
import re

import pytest

from conftest import start_sc
from ember import SparkContext, StorageLevel
from test_cache_store import blobs, read_back

LOCAL_LINE = r"block=(\w+) was read from this host's memory"
MIB = 1 << 20


@pytest.fixture(scope="module")
def sc(request: pytest.FixtureRequest):
    return start_sc(request, "e2e-local-puts", EMBER_CONF_spark_ember_logLevel="debug")


def read_locally(sc: SparkContext) -> set[str]:
    """Ids of the blocks the block managers read from this host's memory so far."""
    found = set()
    for path in glob.glob(os.path.join(sc._cluster.log_dir, "blockd-*.log")):
        with open(path, errors="replace") as fh:
            found.update(re.findall(LOCAL_LINE, fh.read()))
    return found


@pytest.mark.parametrize("level", ["MEMORY_ONLY", "MEMORY_AND_DISK", "DISK_ONLY"])
def test_big_cached_partitions_come_from_memory_unless_disk_only_and_read_back(sc: SparkContext,
                                                              level: str) -> None:
    sizes = [3 * MIB + 12345, MIB, 100, 0]
    lineage = sc.parallelize(range(4), 4).mapPartitionsWithIndex(blobs(sizes))
    expected = lineage.collect()
    acc = sc.accumulator(0)

    def counted(b):
        acc.add(1)
        return b
    cached = lineage.map(counted).persist(getattr(StorageLevel, level))
    before = read_locally(sc)
    assert cached.count() == 4
    assert read_back(sc, cached) == expected
    assert acc.value == 4, "the cached partitions were computed again"
    new = {b for b in read_locally(sc) - before if b.startswith("rdd_")}
    # Partitions 0 and 1 pickle to more than 1 MiB, 2 and 3 to far less. DISK_ONLY goes
    # in chunks whatever its size: a memfd would first hold the block in memory.
    from_memory = set() if level == "DISK_ONLY" else {"0", "1"}
    assert {b.rsplit("_", 1)[1] for b in new} == from_memory, new
    cached.unpersist()


def test_replica_goes_in_chunks(sc: SparkContext) -> None:
    sizes = [2 * MIB, 2 * MIB]
    lineage = sc.parallelize(range(2), 2).mapPartitionsWithIndex(blobs(sizes))
    expected = lineage.collect()
    cached = lineage.map(lambda b: b).persist(StorageLevel.MEMORY_ONLY_2)
    before = read_locally(sc)
    assert cached.count() == 2
    new = [b for b in read_locally(sc) - before if b.startswith("rdd_")]
    # One memfd per partition (its own block manager); the replicas came in chunks, or a
    # block manager would have logged the same id twice (the set hides it: count lines).
    assert len(new) == 2
    logs = ""
    for path in glob.glob(os.path.join(sc._cluster.log_dir, "blockd-*.log")):
        with open(path, errors="replace") as fh:
            logs += fh.read()
    for block in new:
        assert len(re.findall(rf"block={block} was read from this host's memory", logs)) == 1
    assert read_back(sc, cached) == expected
    cached.unpersist()


def test_big_shuffle_outputs_and_results_come_from_memory(sc: SparkContext) -> None:
    before = read_locally(sc)
    pairs = sc.parallelize(range(4), 2).flatMap(
        lambda i: [(k, str(k) * 50) for k in range(i * 20000, (i + 1) * 20000)])
    grouped = pairs.partitionBy(2).mapPartitions(lambda kvs: [sorted(kvs)])
    result = grouped.collect()
    assert sorted(kv for part in result for kv in part) == \
        [(k, str(k) * 50) for k in range(80000)]
    new = read_locally(sc) - before
    assert any(b.startswith("shuffle_") for b in new), new
    assert any(b.startswith("result_") for b in new), new

