"""Cached blocks of groupByKey's (key, ResultIterable) records are written as
record frames (tag 'R', falling back to pickle per batch): every reader of a
cached block — a later job reading the bytes, each storage level (memory,
spill to disk, disk only, two replicas) and a checkpoint of the cached RDD —
gets what the uncached lineage gives, type for type."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import pytest

from ember import ResultIterable, SparkContext, StorageLevel

OBJECT_CACHE = "spark.ember.pyexec.objectCache"


def edges() -> list[tuple]:
    rng = random.Random(11)
    pairs = [(str(rng.randrange(400)), str(int(400 ** rng.random()) - 1)) for _ in range(6000)]
    pairs += [(rng.randrange(50), rng.random()) for _ in range(500)]      # ints and floats
    pairs += [("odd", Fraction(1, 3)), ("odd", Fraction(2, 3))]           # pickled batches
    pairs += [(("t", 1), None), (("t", 1), (1, "x")), ("big", 2 ** 70)]
    return pairs


def shape(records: list) -> list:
    """Sorted (key, type of the values, their list) — the values' order sorted too
    (a group's order follows the fetch order of map outputs, cached or not)."""
    return sorted(((repr(k), type(v).__name__, sorted(map(repr, v))) for k, v in records))


def grouped(sc: SparkContext):
    return sc.parallelize(edges(), 3).distinct(3).groupByKey(3)


@pytest.mark.parametrize("level", ["MEMORY_ONLY", "MEMORY_AND_DISK", "DISK_ONLY", "MEMORY_ONLY_2"])
def test_cached_groups_read_back_from_blocks_equal_the_lineage(sc: SparkContext, level: str) -> None:
    expected = shape(grouped(sc).collect())
    acc = sc.accumulator(0)

    def counted(kv):
        acc.add(1)
        return kv
    links = (sc.parallelize(edges(), 3).map(counted).distinct(3).groupByKey(3)
               .persist(getattr(StorageLevel, level)))
    assert shape(links.collect()) == expected          # computed and teed into the blocks
    computed = acc.value
    sc.setLocalProperty(OBJECT_CACHE, "0")             # read the blocks' bytes, not objects
    try:
        again = links.collect()
        assert shape(again) == expected
        assert all(type(v) is ResultIterable for _, v in again)
        sizes = dict(links.mapValues(len).collect())
        assert sizes == {k: len(v) for k, v in again}
    finally:
        sc.setLocalProperty(OBJECT_CACHE, None)
    assert acc.value == computed, "the cached partitions were computed again"
    links.unpersist()


def test_checkpoint_of_cached_groups(sc: SparkContext, tmp_path: Path) -> None:
    sc.setCheckpointDir(str(tmp_path / "checkpoints"))
    expected = shape(grouped(sc).collect())
    links = grouped(sc).cache()
    links.checkpoint()
    assert links.count() == len(expected)
    assert links.isCheckpointed()
    again = links.map(lambda kv: kv).collect()
    assert shape(again) == expected
    assert all(type(v) is ResultIterable for _, v in again)
    links.unpersist()
