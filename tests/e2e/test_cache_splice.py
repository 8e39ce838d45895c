"""A cache write whose first batch is 1 MiB or more goes from the pyexec's pipe straight
into a memfd (worker_task.c splice_cache_frame, worker_pipe.c worker_pipe_splice), which
the block manager then takes as it is (worker_blocks.c worker_store_memfd): the worker
faults no buffer in for it. Blocks written that way, later batches of any size appended,
read back exactly as the lineage gives them and as a DISK_ONLY copy (which still goes
through the worker's buffer) does; a replicated level's copy goes in chunks from a mapping
of the memfd (test_local_puts_refused covers a block manager that refuses the memfd)."""

from __future__ import annotations

import os

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


def minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    return int(stat[stat.rindex(")") + 2:].split()[7])


def test_the_worker_faults_no_buffer_in_for_a_big_cache_write(sc: SparkContext) -> None:
    # A pyexec is its worker's child.
    workers = set(sc.parallelize(range(8), 8).map(lambda _: os.getppid()).collect())
    before = {pid: minor_faults(pid) for pid in workers}
    cached = sc.parallelize(range(4), 4).mapPartitionsWithIndex(blobs([16 * MIB] * 4)).cache()
    assert cached.count() == 4
    faults = sum(minor_faults(pid) - before[pid] for pid in workers)
    pages = 4 * 16 * MIB // os.sysconf("SC_PAGE_SIZE")
    # Read into a buffer, each block would fault in every page of it.
    assert faults < pages // 4, (faults, pages)
    assert [len(b) for b in read_back(sc, cached)] == [16 * MIB] * 4
    cached.unpersist()
