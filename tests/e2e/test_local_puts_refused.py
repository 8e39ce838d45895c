"""A block manager that takes no blocks from memory (--local-puts 0, as one on another host,
in another pid namespace, or an older one would answer): the worker falls back to PutBlock
chunks for the rest of its life, says so once, and the blocks read back the same."""

from __future__ import annotations

import glob
import os

import pytest

from conftest import start_sc
from ember import SparkContext, StorageLevel
from test_cache_store import blobs, read_back
from test_local_puts import MIB, read_locally


@pytest.fixture(scope="module")
def sc(request: pytest.FixtureRequest):
    return start_sc(request, "e2e-local-puts-refused", EMBER_BLOCKD_LOCAL_PUTS="0",
                    EMBER_CONF_spark_ember_logLevel="debug")


def test_a_block_manager_that_refuses_gets_chunks(sc: SparkContext) -> None:
    sizes = [3 * MIB + 5, 2 * MIB, 3 * MIB, MIB + 1]
    lineage = sc.parallelize(range(4), 4).mapPartitionsWithIndex(blobs(sizes))
    expected = lineage.collect()
    for _ in range(2):
        acc = sc.accumulator(0)

        def counted(b):
            acc.add(1)
            return b
        cached = lineage.map(counted).persist(StorageLevel.MEMORY_ONLY)
        assert cached.count() == 4
        assert read_back(sc, cached) == expected
        assert acc.value == 4, "the partitions were not stored (computed again)"
        cached.unpersist()
    assert read_locally(sc) == set()
    said = 0
    for path in glob.glob(os.path.join(sc._cluster.log_dir, "worker-*.log")):
        with open(path, errors="replace") as fh:
            said += fh.read().count("does not take blocks from this worker's memory")
    assert 1 <= said <= 2, said                       # once per worker that stored one
