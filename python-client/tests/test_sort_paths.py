"""sortByKey's fast paths against the paths they replace: the range partitioner in C
(services/pyexec/pyexec_sort.c) against RangePartitioner.__call__ (PySpark's bisect),
the radix sort of int-keyed runs against list.sort(key=itemgetter(0)), ExternalSorter's
batched reading against sorted(), and SortKeySampler's one pass against PySpark's count
job followed by its sample job. Same results, same order, same errors."""

import operator
import random

import pytest

from fast_extension import _ember_fast

from ember import rddsampler, shuffle  # noqa: E402
from ember.rddsampler import RDDSampler, SortKeySampler  # noqa: E402
from ember.shuffle import ExternalSorter, RangePartitioner, first_item  # noqa: E402

_ember_fast.set_range_partitioner(RangePartitioner)
FIRST = operator.itemgetter(0)


def _python_buckets(records, partitioner, n):
    buckets = [[] for _ in range(n)]
    for record in records:
        buckets[partitioner(record[0]) % n].append(record)
    return buckets


def _outcome(run):
    """(result, None) or (None, (exception type, message))."""
    try:
        return run(), None
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        return None, (type(exc), str(exc))


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("keys, bounds", [
    ("ints", (-5, 0, 0, 17, 2**40)),                   # equal bounds, negative keys
    ("ints", (3,)),
    ("big", (-(2**70), 5, 2**64)),                    # bounds beyond 64 bits: compared in Python
    ("floats", (0.25, 0.5, 0.75)),
    ("mixed", (0.5, 10, 2**65)),                      # ints keys against float bounds
    ("strs", ("b", "m", "t")),
])
def test_range_partition_in_c_matches_bisect(keys, bounds, ascending):
    rng = random.Random(len(bounds))
    make = {
        "ints": lambda: (rng.randint(-10, 30) if rng.random() < 0.5
                         else rng.randint(-2**63, 2**63 - 1)),
        "big": lambda: rng.choice([rng.randint(-2**80, 2**80), rng.randint(-9, 9), 2**63,
                                   -2**63 - 1]),
        "floats": lambda: rng.random(),
        "mixed": lambda: rng.choice([rng.random(), rng.randint(-3, 30), True, 2**66]),
        "strs": lambda: rng.choice("abcmnstuz") * rng.randint(0, 2),
    }[keys]
    records = [(make(), i) for i in range(5000)] + [[make(), "list record"]]
    n = len(bounds) + 1
    part = RangePartitioner(bounds, ascending, n)
    buckets = [[] for _ in range(n)]
    assert _ember_fast.partition(iter(records), part, False, buckets, 10**9) == -1
    assert buckets == _python_buckets(records, part, n)


def test_range_partition_with_a_keyfunc_calls_it_per_record():
    calls = []

    def keyfunc(k):
        calls.append(k)
        return k.lower()
    part = RangePartitioner(("b", "m"), False, 3, keyfunc)
    records = [(w, i) for i, w in enumerate("Apple banana Mango zebra B m".split())]
    buckets = [[], [], []]
    _ember_fast.partition(iter(records), part, False, buckets, 100)
    assert calls == [k for k, _ in records]
    calls.clear()
    assert buckets == _python_buckets(records, part, 3)


@pytest.mark.parametrize("bounds, good, bad", [
    ((1, 5), (0, 9), "x"),              # str key against int bounds
    (("a", "b"), ("", "c"), 3),         # int key against str bounds
    ((1, 5), (0, 9), (1,)),             # a tuple key
])
def test_range_partition_raises_what_bisect_raises(bounds, good, bad):
    part = RangePartitioner(bounds, True, 3)
    records = [(good[0], "a"), (good[1], "b"), (bad, "c"), (good[0], "d")]

    def fast():
        buckets = [[], [], []]
        try:
            _ember_fast.partition(iter(records), part, False, buckets, 100)
        finally:
            fast.buckets = buckets
    slow = _outcome(lambda: _python_buckets(records, part, 3))
    got = _outcome(fast)
    assert got[1] == slow[1] and got[1][0] is TypeError
    assert fast.buckets == _python_buckets(records[:2], part, 3)   # stopped at the same record


def _sorted_as_python(records, reverse):
    out = list(records)
    out.sort(key=FIRST, reverse=reverse)
    return out


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("spread", [3, 1000, 2**62])
def test_radix_sort_is_list_sort_of_the_first_item(spread, reverse):
    rng = random.Random(spread)
    records = [(rng.randint(-spread, spread), i) for i in range(20000)]
    records += [(2**63 - 1, "max"), (-(2**63), "min"), (0, "zero"), (0, "zero again"), (5,)]
    rng.shuffle(records)
    got = list(records)
    assert _ember_fast.sort_by_int_key(got, reverse) is True
    expected = _sorted_as_python(records, reverse)
    assert all(a is b for a, b in zip(got, expected)) and len(got) == len(expected)


@pytest.mark.parametrize("odd", [2**63, -(2**63) - 1, True, 1.5, "s", None])
def test_radix_sort_leaves_other_keys_to_list_sort(odd):
    records = [(3, "a"), (1, "b"), (odd, "c"), (2, "d")]
    got = list(records)
    assert _ember_fast.sort_by_int_key(got, False) is False
    assert all(a is b for a, b in zip(got, records))            # untouched


@pytest.mark.parametrize("odd", [[1, "list"], 7, (), type("T", (tuple,), {})((1, 2))])
def test_radix_sort_takes_only_tuples(odd):
    records = [(3, "a"), odd, (2, "d")]
    got = list(records)
    assert _ember_fast.sort_by_int_key(got, True) is False
    assert got == records
    assert _ember_fast.sort_by_int_key([], False) is True
    one = [(1, 2)]
    assert _ember_fast.sort_by_int_key(one, False) is True and one == [(1, 2)]


def _with_loops(fast, run):
    saved = shuffle._ember_fast
    shuffle._ember_fast = _ember_fast if fast else None
    try:
        return _outcome(run)
    finally:
        shuffle._ember_fast = saved


@pytest.mark.parametrize("limit", [10**9, 60_000])       # in memory; many spilled runs
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", ["ints", "strs", "mixed ints", "lists"])
def test_external_sorter_by_first_item_is_sorted(kind, reverse, limit, tmp_path):
    rng = random.Random(9)
    make = {
        "ints": lambda i: (rng.randrange(500), i),
        "strs": lambda i: (str(rng.randrange(500)), i),
        "mixed ints": lambda i: (rng.choice([rng.randrange(500), 2**64 + rng.randrange(9)]), i),
        "lists": lambda i: [rng.randrange(500), i],
    }[kind]
    records = [make(i) for i in range(30000)]
    expected = _sorted_as_python(records, reverse)
    for fast in (True, False):
        sorter = ExternalSorter(memory_limit=limit, spill_dir=str(tmp_path))
        got, error = _with_loops(fast, lambda: list(sorter.sorted(iter(records), key=first_item,
                                                                  reverse=reverse)))
        assert error is None and got == expected
    # The key of any other sort: the same order.
    sorter = ExternalSorter(memory_limit=limit, spill_dir=str(tmp_path))
    assert list(sorter.sorted(iter(records), key=lambda kv: kv[0], reverse=reverse)) == expected


def test_external_sorter_spills_past_its_limit_and_not_below(tmp_path):
    records = [(i % 1000, i) for i in range(50_000)]
    before = shuffle.task_spill_metrics()["spills"]
    assert list(ExternalSorter(10**9).sorted(iter(records), key=first_item)) == \
        _sorted_as_python(records, False)
    assert shuffle.task_spill_metrics()["spills"] == before
    # about 120 bytes a record: 6 MB in runs of at most 1 MB
    out = list(ExternalSorter(1 << 20, str(tmp_path)).sorted(iter(records), key=first_item))
    assert out == _sorted_as_python(records, False)
    assert 5 <= shuffle.task_spill_metrics()["spills"] - before <= 8


@pytest.mark.parametrize("records", [
    [(1, "a"), ("x", "b"), (0, "c")],                 # incomparable keys
    [(1, "a"), 5, (0, "c")],                          # a record without [0]
])
def test_external_sorter_raises_what_list_sort_raises(records):
    expected = _outcome(lambda: _sorted_as_python(records, False))
    assert expected[1] is not None
    for fast in (True, False):
        got = _with_loops(fast, lambda: list(ExternalSorter(10**9).sorted(iter(records),
                                                                          key=first_item)))
        assert got == expected


def _count_then_sample(partitions, sample_size, seed):
    """PySpark's sortByKey: a count job, then a sample job of each partition's keys."""
    size = sum(len(p) for p in partitions)
    fraction = min(sample_size / max(size, 1), 1.0)
    sampler = RDDSampler(False, fraction, seed)
    return [kv[0] for split, part in enumerate(partitions)
            for kv in sampler.func(split, iter(part))]


def _one_pass(partitions, sample_size, seed):
    sketch = [next(SortKeySampler(sample_size, seed).func(split, iter(part)))
              for split, part in enumerate(partitions)]
    size = sum(count for count, _, _ in sketch)
    fraction = min(sample_size / max(size, 1), 1.0)
    assert not any(u < fraction for _, _, failed in sketch for u in failed)
    return [k for _, keys, _ in sketch for u, k in keys if u < fraction]


@pytest.fixture(params=["C loop", "Python loop"])
def sampler_loop(request, monkeypatch):
    """SortKeySampler with _ember_fast.draws_below, then with compress and map."""
    monkeypatch.setattr(rddsampler, "_ember_fast",
                        _ember_fast if request.param == "C loop" else None)


@pytest.mark.parametrize("sizes", [[0], [0, 3], [1, 5, 7], [300, 20], [20000, 5000, 0, 9000],
                                   [100_000, 100_000]])
@pytest.mark.parametrize("partitions", [2, 3, 8])
def test_sort_key_sampler_gives_the_sample_of_the_count_and_sample_jobs(sizes, partitions,
                                                                        sampler_loop):
    rng = random.Random(sum(sizes))
    parts = [[(rng.randrange(10**6), i) for i in range(n)] for n in sizes]
    for seed in (1, 42):
        expected = _count_then_sample(parts, partitions * 20.0, seed)
        assert _one_pass(parts, partitions * 20.0, seed) == expected
        if sum(sizes) > 1000:
            assert len(expected) > partitions * 10


def test_sort_key_sampler_reports_records_without_a_key(sampler_loop):
    part = [(1, "a"), 5, (2, "b"), None, (3, "c")]
    ((count, keys, failed),) = SortKeySampler(100.0, 1).func(0, iter(part))
    assert count == 5 and [k for _, k in keys] == [1, 2, 3] and len(failed) == 2


def test_draws_below_draws_once_per_record_and_keeps_the_low_ones():
    draws = iter([0.5, 0.1, 0.9, 0.2])
    assert _ember_fast.draws_below(["a", "b", "c"], lambda: next(draws), 0.3) == [(0.1, "b")]
    assert next(draws) == 0.2
    with pytest.raises(StopIteration):
        _ember_fast.draws_below(["a"], lambda: next(draws), 0.3)
    with pytest.raises(TypeError, match="not supported"):
        _ember_fast.draws_below(["a"], lambda: "x", 0.3)


@pytest.mark.parametrize("reverse", [False, True])
def test_compacted_records_are_equal_copies_in_sorted_order(reverse):
    rng = random.Random(4)
    shared = [1, 2]
    values = [7, -3, 2**40, 2**70, 1.5, -0.0, float("inf"), "s", b"b", None, True, shared, (1, 2)]
    records = [(rng.randrange(-50, 50), rng.choice(values), i) for i in range(5000)]
    records += [(3,), (4, 2**63, -(2**63) - 1)]
    got = list(records)
    assert _ember_fast.sort_by_int_key(got, reverse, True) is True
    expected = _sorted_as_python(records, reverse)
    assert got == expected
    for a, b in zip(got, expected):
        assert a is not b and type(a) is tuple
        assert [type(x) for x in a] == [type(x) for x in b]
        assert [repr(x) for x in a] == [repr(x) for x in b]        # -0.0 stays -0.0
        assert all(x is y for x, y in zip(a, b) if type(x) not in (int, float) or
                   (type(x) is int and not -(2**63) <= x < 2**63))
    assert any(r[1] is shared for r in got)


def test_external_sorter_compacts_only_with_room_for_the_copy(tmp_path):
    records = [((i * 7919) % 1000, i) for i in range(20000)]
    expected = _sorted_as_python(records, False)
    for limit in (10**9, 3 << 20, 1 << 20):        # room; no room for a copy; spilling
        out = list(ExternalSorter(limit, str(tmp_path)).sorted(iter(records), key=first_item,
                                                                 compact=True))
        assert out == expected
        copied = sum(a is not b for a, b in zip(out, expected))
        assert copied == (len(records) if limit == 10**9 else copied)
    out = list(ExternalSorter(3 << 20).sorted(iter(records), key=first_item, compact=True))
    assert all(a is b for a, b in zip(out, expected))          # 2.4 MB: no room for a copy


def test_a_range_partitioner_is_kept_by_the_function_cache_when_its_bounds_are_immutable():
    from ember.function_cache import is_stateless
    assert is_stateless(RangePartitioner((1, "a", (2, 3)), True, 4))
    assert is_stateless(RangePartitioner((1, 2), False, 3, str.lower))
    assert not is_stateless(RangePartitioner(([1], [2]), True, 3))
