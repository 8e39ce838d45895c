"""A cache write whose first batch is 1 MiB or more goes from the pyexec's pipe straight
into a memfd (worker_task.c splice_cache_frame, worker_pipe.c worker_pipe_splice), which
the block manager then takes as it is (worker_blocks.c worker_store_memfd): the worker
faults no buffer in for it. Blocks written that way, later batches of any size appended,
read back exactly as the lineage gives them and as a DISK_ONLY copy (which still goes
through the worker's buffer) does; a replicated level's copy goes in chunks from a mapping
of the memfd. test_cache_splice_own: the worker faults no buffer in for such a write,
and a block manager that refuses the memfd gets the spliced block in chunks."""

from __future__ import annotations


import pytest

from ember import SparkContext, StorageLevel
from test_cache_store import blobs, read_back

MIB = 1 << 20


def big_then_small():
    """A partition function: a 3 MiB record (the first batch is at least that), then
    enough small ones for more batches: a block of several frames (a closure: the test
    module is not importable in the pyexec)."""
    def rows(split: int, records):
        yield bytes((split + i) % 251 for i in range(251)) * (3 * MIB // 251)
        for i in range(200_000):
            yield (split, i, str(i) * (i % 5))
    return rows


@pytest.mark.parametrize("level", ["MEMORY_ONLY", "MEMORY_ONLY_2", "MEMORY_AND_DISK"])
def test_blocks_of_several_frames_read_back_as_the_buffered_copy(sc: SparkContext,
                                                                 level: str) -> None:
    lineage = sc.parallelize(range(3), 3).mapPartitionsWithIndex(big_then_small())
    expected = lineage.collect()
    acc = sc.accumulator(0)

    def counted(r):
        acc.add(1)
        return r
    spliced = lineage.map(counted).persist(getattr(StorageLevel, level))
    buffered = lineage.map(counted).persist(StorageLevel.DISK_ONLY)
    assert spliced.count() == buffered.count() == len(expected)
    computed = acc.value
    assert read_back(sc, spliced) == expected
    assert read_back(sc, buffered) == expected
    assert acc.value == computed, "the cached partitions were computed again"
    spliced.unpersist()
    buffered.unpersist()
