"""Unit tests of the spilling shuffle structures and other pure client parts (no cluster)."""

import os
import random
import sys
from collections import Counter

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember import readers  # noqa: E402
from ember.conf import parse_size  # noqa: E402
from ember.lineage import coalesce_groups  # noqa: E402
from ember.shuffle import (Aggregator, ExternalGroupBy, ExternalList, ExternalMerger,  # noqa: E402
                           ExternalSorter, MemoryBudget, SimpleAggregator, combine_locally,
                           task_spill_metrics)

LIST_AGG = Aggregator(lambda v: [v], lambda c, v: c + [v], lambda a, b: a + b)


def test_parse_size():
    assert parse_size("1g") == 1 << 30
    assert parse_size("512m") == 512 << 20
    assert parse_size("64k") == 64 << 10
    assert parse_size("100") == 100
    assert parse_size("8", default_unit="m") == 8 << 20
    assert parse_size("1.5g") == 3 << 29
    assert parse_size("2MB") == 2 << 20 and parse_size("2mib") == 2 << 20
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("lots")


def test_external_merger_spills_and_merges_exactly(tmp_path):
    rng = random.Random(1)
    records = [(rng.randrange(20_000), 1) for _ in range(200_000)]
    before = task_spill_metrics()["spills"]
    merger = ExternalMerger(SimpleAggregator(lambda a, b: a + b), memory_limit=100_000,
                            spill_dir=str(tmp_path))
    merger.mergeValues(records)
    assert merger.spills > 0 and task_spill_metrics()["spills"] > before
    assert dict(merger.items()) == dict(Counter(k for k, _ in records))
    assert os.listdir(tmp_path) == []                      # spill files removed


def test_external_merger_recurses_into_a_big_spill_file(tmp_path):
    merger = ExternalMerger(SimpleAggregator(lambda a, b: a + b), memory_limit=20_000,
                            partitions=2, spill_dir=str(tmp_path))
    merger.mergeCombiners(((i % 5000, 2) for i in range(50_000)))
    result = dict(merger.items())
    assert len(result) == 5000 and set(result.values()) == {20}


def test_external_group_by_keeps_a_huge_group_on_disk(tmp_path):
    records = [(i % 3, i) for i in range(30_000)] + [("hot", b"x" * 1000)] * 3000
    random.Random(2).shuffle(records)
    merger = ExternalGroupBy(memory_limit=200_000, spill_dir=str(tmp_path))
    merger.mergeValues(records)
    groups = dict(merger.items())
    assert sorted(groups[0]) == list(range(0, 30_000, 3))
    assert len(groups["hot"]) == 3000 and set(groups["hot"]) == {b"x" * 1000}
    assert isinstance(groups["hot"], ExternalList) and groups["hot"].spilled
    assert list(groups["hot"]) == list(groups["hot"])        # iterable again


def test_external_group_by_merges_combiners_and_colliding_hashes(tmp_path):
    merger = ExternalGroupBy(memory_limit=50_000, spill_dir=str(tmp_path))
    # hash(-1) == hash(-2) in CPython: distinct keys with one hash stay apart
    merger.mergeCombiners(([(-1, [i]) for i in range(3000)] + [(-2, [i, i]) for i in range(3000)]))
    groups = {k: sorted(v) for k, v in merger.items()}
    assert groups[-1] == list(range(3000))
    assert groups[-2] == sorted(list(range(3000)) * 2)


@pytest.mark.parametrize("limit", [50_000_000, 50_000])
def test_items_with_equals_wrapping_items(tmp_path, limit):
    """groupByKey's (key, ResultIterable) records: items_with(wrap) gives what
    ((k, wrap(v)) for k, v in items()) gives, in order, spilled or not."""
    from ember.resultiterable import ResultIterable
    rng = random.Random(5)
    records = [(rng.randrange(2000), str(rng.random())) for _ in range(20_000)]

    def merged():
        merger = ExternalGroupBy(memory_limit=limit, spill_dir=str(tmp_path))
        merger.mergeValues(records)
        return merger
    plain = merged()
    expected = [(k, type(v), list(v)) for k, v in ((k, ResultIterable(v)) for k, v in plain.items())]
    fast = merged()
    assert bool(fast.spills) == (limit < 1_000_000)
    got = [(k, type(v), list(v)) for k, v in fast.items_with(ResultIterable)]
    assert got == expected and len(got) == 2000
    assert all(type(kv) is tuple for kv in merged().items_with(ResultIterable))


def test_external_sorter_is_stable_and_handles_reverse(tmp_path):
    rng = random.Random(3)
    records = [(rng.randrange(100), i) for i in range(50_000)]
    sorter = ExternalSorter(memory_limit=50_000, spill_dir=str(tmp_path))
    assert list(sorter.sorted(iter(records), key=lambda r: r[0])) == \
        sorted(records, key=lambda r: r[0])
    assert list(sorter.sorted(iter(records), key=lambda r: r[0], reverse=True)) == \
        sorted(records, key=lambda r: r[0], reverse=True)
    assert list(ExternalSorter(10 ** 9).sorted(iter([3, 1, 2]))) == [1, 2, 3]


def test_external_list_and_shared_budget(tmp_path):
    budget = MemoryBudget(10_000)
    a = ExternalList(budget=budget, spill_dir=str(tmp_path))
    b = ExternalList(budget=budget, spill_dir=str(tmp_path))
    for i in range(5000):
        a.append(i)
        b.append(str(i))
    assert a.spilled and b.spilled
    assert list(a) == list(range(5000)) and list(b) == [str(i) for i in range(5000)]
    assert len(a) == 5000
    import pickle
    assert pickle.loads(pickle.dumps(a)) == list(range(5000))


def test_combine_locally_flushes_but_never_loses_values():
    out = list(combine_locally(((i % 10, [i]) for i in range(10_000)),
                               Aggregator(lambda v: v, lambda c, v: c + v, lambda a, b: a + b),
                               memory_limit=5_000, grouping=True))
    assert len(out) > 10                                  # flushed several times
    merged: dict = {}
    for k, values in out:
        merged.setdefault(k, []).extend(values)
    assert {k: sorted(v) for k, v in merged.items()} == \
        {k: list(range(k, 10_000, 10)) for k in range(10)}


def test_coalesce_groups_and_combine_files():
    assert coalesce_groups(5, 2) == [[0, 1], [2, 3, 4]]
    assert coalesce_groups(10, 4) == [[0, 1], [2, 3, 4], [5, 6], [7, 8, 9]]
    assert coalesce_groups(3, 3) == [[0], [1], [2]]
    assert readers.combine_files(["a", "b", "c", "d"], [10] * 4, 2) == [["a", "b"], ["c", "d"]]
    assert readers.combine_files(["a", "b", "c"], [0, 0, 0], 2) == [["a", "b", "c"]]
    assert readers.combine_files(["a", "b", "c"], [100, 1, 1], 3) == [["a"], ["b", "c"]]
    assert readers.combine_files([], [], 2) == []
    assert readers.hadoop_path("/x/y") == "file:/x/y"
    assert readers.hadoop_path("http://h/p") == "http://h/p"
