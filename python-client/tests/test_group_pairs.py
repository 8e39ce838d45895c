"""groupByKey without a map-side combine (map side: ember.shuffle.pair_records, unpacked in
C by _ember_fast.partition's pairs flag; reduce side: ExternalGroupBy.mergeValues) against
the path it replaced (map side: combine_locally(grouping=True), one-value lists past the
mostly-new switch; reduce side: mergeCombiners): the same groups, keys in the same order,
values in the same order, of the same types, and the same errors from the map side."""

import random

import pytest

from fast_extension import _ember_fast

from ember import shuffle  # noqa: E402
from ember.shuffle import (LIST_AGGREGATOR, ExternalGroupBy, PairRecords,  # noqa: E402
                           combine_locally, pair_records, portable_hash)


def _buckets(records, reduce_count, fast, pairs):
    """The shuffle writer's bucketing (worker_runtime._write_shuffle), in C with small
    batches (as frames leave), else in Python."""
    buckets = [[] for _ in range(reduce_count)]
    if not fast:
        for record in records:
            buckets[portable_hash(record[0]) % reduce_count].append(record)
        return buckets
    out = [[] for _ in range(reduce_count)]
    records = iter(records)
    if pairs:
        assert type(records) is PairRecords
        records = records.records
    while True:
        full = _ember_fast.partition(records, portable_hash, True, buckets, 7, pairs)
        if full < 0:
            break
        out[full].extend(buckets[full])
        buckets[full].clear()
    for i, bucket in enumerate(buckets):
        out[i].extend(bucket)
    return out


def _group(map_partitions, reduce_count, fast, new, memory_limit=1 << 30):
    """[(key, values)] of every reduce partition, or the error of the first map task
    that failed (type and message)."""
    saved = shuffle._ember_fast
    shuffle._ember_fast = _ember_fast if fast else None
    try:
        blocks = []
        for records in map_partitions:
            if new:
                sent = pair_records(iter(records))
            else:
                sent = combine_locally(iter(records), LIST_AGGREGATOR, 1 << 30, grouping=True)
            blocks.append(_buckets(sent, reduce_count, fast, pairs=new))
        result = []
        for r in range(reduce_count):
            merger = ExternalGroupBy(LIST_AGGREGATOR, memory_limit)
            fetched = (record for block in blocks for record in block[r])
            (merger.mergeValues if new else merger.mergeCombiners)(fetched)
            result.append([(k, list(vs)) for k, vs in merger.items_with(list)])
        return result
    except Exception as e:  # noqa: BLE001 - the error is part of what is compared
        return type(e), str(e)
    finally:
        shuffle._ember_fast = saved


def _types(result):
    return [[(type(k), [type(v) for v in vs]) for k, vs in part] for part in result]


def _same_as_old(map_partitions, reduce_count=3, memory_limit=1 << 30):
    old = _group(map_partitions, reduce_count, True, False, memory_limit)
    for fast in (True, False):
        new = _group(map_partitions, reduce_count, fast, True, memory_limit)
        assert new == old
        if isinstance(old, list):
            assert _types(new) == _types(old)
    return old


def _keys(rng):
    return rng.choice([rng.randrange(50), str(rng.randrange(30)), (rng.randrange(4), "t"),
                       None, 1.0, True])


def test_repeated_keys_give_the_old_groups_in_order():
    rng = random.Random(1)
    parts = [[(_keys(rng), rng.choice([i, str(i), None, [i], (i,)])) for i in range(3000)]
             for _ in range(3)]
    result = _same_as_old(parts)
    assert sum(len(p) for p in result) > 50


def test_mostly_new_keys_give_the_old_groups_in_order():
    """Past the old map side's switch to one-value lists (keys repeat across it)."""
    rng = random.Random(2)
    parts = []
    for _ in range(2):
        records = [(rng.randrange(300_000), i) for i in range(shuffle._GROUPING_SAMPLE * 2)]
        parts.append(records + [(k, -1) for k, _ in records[:2000]])
    _same_as_old(parts)


def test_records_that_are_not_tuples_are_unpacked_as_before():
    parts = [[["a", 1], ("b", 2), "cd", range(8, 10), ("a", [3])], [("b", 4), ["a", 6]]]
    result = _same_as_old(parts)
    assert sorted((g for p in result for g in p), key=str) == sorted(
        [(8, [9]), ("a", [1, [3], 6]), ("b", [2, 4]), ("c", ["d"])], key=str)


@pytest.mark.parametrize("bad, error", [
    (("a", 1, 2), (ValueError, "too many values to unpack (expected 2)")),
    (("a",), (ValueError, "not enough values to unpack (expected 2, got 1)")),
    (7, (TypeError, "cannot unpack non-iterable int object")),
    (None, (TypeError, "cannot unpack non-iterable NoneType object")),
])
def test_records_that_are_not_pairs_fail_on_the_map_side_as_before(bad, error):
    parts = [[("x", 1)] * 100 + [bad] + [("y", 2)] * 100]
    assert _same_as_old(parts) == error


def test_an_unhashable_key_fails_as_before():
    assert _same_as_old([[("x", 1), ([1], 2)]])[0] is TypeError


def test_the_reduce_side_spilling_keeps_each_keys_values_in_order():
    rng = random.Random(4)
    parts = [[(rng.randrange(2000), (p, i)) for i in range(20_000)] for p in range(3)]
    spills = shuffle.task_spill_metrics()["spills"]
    old = _group(parts, 2, True, False, memory_limit=200_000)
    assert shuffle.task_spill_metrics()["spills"] > spills
    for fast in (True, False):
        new = _group(parts, 2, fast, True, memory_limit=200_000)
        assert [sorted(p) for p in new] == [sorted(p) for p in old]


def test_partition_without_pairs_buckets_records_as_they_are():
    buckets = [[], []]
    records = [("a", 1, 2), ["b", 3]]
    assert _ember_fast.partition(iter(records), portable_hash, True, buckets, 100) == -1
    assert sorted(buckets[0] + buckets[1], key=str) == sorted(records, key=str)
