"""How the worker stores a cached partition (worker_task.c route_cache_frame,
worker_blocks.c worker_store_block): the first batch the pyexec writes becomes the block
without a copy (a first batch of 1 MiB or more of a level kept in memory goes into a memfd
instead, test_cache_splice), and chunks that lie within one buffer go to the block manager straight
from it. A later job reading the blocks' bytes (objects off) gets exactly what the
lineage gives, for one big batch of every size around the 1 MiB chunk boundaries, for
partitions of many batches, for empty ones, and for a replicated level."""

from __future__ import annotations

import pytest

from ember import SparkContext, StorageLevel

OBJECT_CACHE = "spark.ember.pyexec.objectCache"
CHUNK = 1 << 20


def blob_sizes() -> list[int]:
    """Payload sizes whose pickles land just under, on and over 1, 2 and 3 MiB."""
    return [0, 1, 100] + [k * CHUNK + d for k in (1, 2, 3) for d in range(-48, 49, 6)]


def blobs(sizes: list[int]):
    """A partition function: one bytes record per partition, of that partition's size
    (a closure: the test module is not importable in the pyexec)."""
    def one_blob(split: int, records):
        n = sizes[split]
        yield bytes((split + i) % 251 for i in range(min(n, 251))) * (n // 251) + bytes(n % 251)
    return one_blob


def read_back(sc: SparkContext, rdd) -> list:
    sc.setLocalProperty(OBJECT_CACHE, "0")             # the blocks' bytes, not kept objects
    try:
        return rdd.collect()
    finally:
        sc.setLocalProperty(OBJECT_CACHE, None)


@pytest.mark.parametrize("level", ["MEMORY_ONLY", "MEMORY_ONLY_2"])
def test_one_big_batch_per_partition_reads_back_byte_for_byte(sc: SparkContext,
                                                              level: str) -> None:
    n = len(blob_sizes())
    lineage = sc.parallelize(range(n), n).mapPartitionsWithIndex(blobs(blob_sizes()))
    expected = lineage.collect()
    assert [len(b) for b in expected] == blob_sizes()
    acc = sc.accumulator(0)

    def counted(b):
        acc.add(1)
        return b
    cached = lineage.map(counted).persist(getattr(StorageLevel, level))
    assert cached.count() == n                          # computed and stored
    assert acc.value == n
    assert read_back(sc, cached) == expected
    assert acc.value == n, "the cached partitions were computed again"
    cached.unpersist()


def test_partitions_of_many_batches_and_empty_ones_read_back(sc: SparkContext) -> None:
    def rows(split, records):
        if split % 3 == 2:
            return iter(())
        return ((split, i, str(i) * (i % 7), float(i) / 3) for i in range(120_000 + split))
    lineage = sc.parallelize(range(6), 6).mapPartitionsWithIndex(rows)
    expected = lineage.collect()
    acc = sc.accumulator(0)

    def counted(r):
        acc.add(1)
        return r
    cached = lineage.map(counted).cache()
    assert cached.count() == len(expected)
    computed = acc.value
    assert read_back(sc, cached) == expected
    assert acc.value == computed, "the cached partitions were computed again"
    cached.unpersist()


def test_pickled_shuffle_and_cache_batches_written_with_their_prefix_apart(
        sc: SparkContext) -> None:
    # Fractions are not simple records: every batch is a pickle, which the runtime writes
    # after its 4-byte reduce partition or cache index without joining the two first.
    from fractions import Fraction
    pairs = [(i % 37, Fraction(i, 7)) for i in range(50_000)]
    expected = {}
    for k, v in pairs:
        expected[k] = expected.get(k, 0) + v
    summed = sc.parallelize(pairs, 4).reduceByKey(lambda a, b: a + b, 5).cache()
    assert dict(summed.collect()) == expected
    assert dict(read_back(sc, summed)) == expected
    summed.unpersist()
