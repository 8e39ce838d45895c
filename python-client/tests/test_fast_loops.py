"""The C loops of ember-pyexec (_ember_fast, services/pyexec/pyexec_fast.c) against
the Python loops they replace: same results, same order, same errors.

The module is loaded from ``build/lib`` (next to ``EMBER_BIN_DIR``); a sanitized
build has no loadable copy (``/usr/bin/python3`` cannot load an ASan module).
"""

import operator
import random

import pytest

from fast_extension import _ember_fast

from ember import shuffle  # noqa: E402
from ember.shuffle import Aggregator, SimpleAggregator, combine_locally, portable_hash  # noqa: E402


@pytest.fixture
def python_loops(monkeypatch):
    """Runs the code under test with the pure-Python loops."""
    monkeypatch.setattr(shuffle, "_ember_fast", None)


def _both(run):
    """run() with the C loops, then with the Python ones."""
    saved = shuffle._ember_fast
    shuffle._ember_fast = _ember_fast
    try:
        fast = run()
        shuffle._ember_fast = None
        slow = run()
    finally:
        shuffle._ember_fast = saved
    return fast, slow


def _random_key(rng):
    return rng.choice([
        None, rng.randint(-2**70, 2**70), rng.randint(-5, 5), str(rng.random())[:4],
        rng.random(), b"b" + bytes([rng.randint(0, 255)]),
        (rng.randint(0, 3), None, (str(rng.randint(0, 3)),)), True,
    ])


def test_portable_hash_is_the_python_rule():
    rng = random.Random(7)
    keys = [_random_key(rng) for _ in range(20000)] + [(), ((),), (None,), -1, -2, 2**64]
    assert [_ember_fast.portable_hash(k) for k in keys] == [portable_hash(k) for k in keys]
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        _ember_fast.portable_hash(("a", [1]))


@pytest.mark.parametrize("agg", [SimpleAggregator(operator.add),
                                 SimpleAggregator(shuffle.keep_first),
                                 SimpleAggregator(lambda a, b: a * 2 + b),
                                 Aggregator(lambda v: [v], lambda c, v: c + [v],
                                            lambda a, b: a + b)])
def test_combine_locally_matches_python(agg):
    rng = random.Random(3)
    records = [(_random_key(rng), rng.randint(0, 9)) for _ in range(5000)]
    records += [[k, v] for k, v in records[:50]]            # any pair unpacks, as in Python
    fast, slow = _both(lambda: list(combine_locally(iter(records), agg, 1 << 30)))
    assert fast == slow and len(fast) > 100


def test_combine_locally_flushes_at_the_memory_limit_like_python():
    records = [(f"key{i}", i) for i in range(20000)]
    fast, slow = _both(lambda: list(combine_locally(records, SimpleAggregator(operator.add),
                                                    64 << 10)))
    assert len(fast) == len(slow) == 20000      # every key flushed once, none merged
    assert sorted(fast) == sorted(slow)


@pytest.mark.parametrize("record, error, text", [
    (5, TypeError, "cannot unpack non-iterable int object"),
    ((1,), ValueError, r"not enough values to unpack \(expected 2, got 1\)"),
    ((1, 2, 3), ValueError, r"too many values to unpack \(expected 2\)"),
    (([1], 2), TypeError, "unhashable type: 'list'"),
])
def test_combine_raises_what_python_raises(record, error, text):
    for fast in (_ember_fast, None):
        shuffle._ember_fast = fast
        try:
            with pytest.raises(error, match=text):
                list(combine_locally(iter([("a", 1), record]), SimpleAggregator(operator.add)))
        finally:
            shuffle._ember_fast = _ember_fast


def test_an_exception_in_the_user_merge_propagates():
    def merge(a, b):
        raise ZeroDivisionError("user code failed")
    with pytest.raises(ZeroDivisionError, match="user code failed"):
        _ember_fast.combine({}, iter([("a", 1), ("a", 2)]), None, merge, 10)


def test_partition_buckets_records_as_python_does():
    rng = random.Random(11)
    records = [(_random_key(rng), i) for i in range(3000)] + [[("l",), 1]]
    for partitioner, portable in ((portable_hash, True), (lambda k: len(repr(k)), False)):
        buckets = [[] for _ in range(7)]
        full = _ember_fast.partition(iter(records), partitioner, portable, buckets, 10**9)
        assert full == -1
        expected = [[] for _ in range(7)]
        for record in records:
            expected[partitioner(record[0]) % 7].append(record)
        assert buckets == expected


def test_partition_stops_at_a_full_bucket():
    buckets = [[], []]
    records = iter([(0, "a"), (2, "b"), (1, "c"), (4, "d")])
    assert _ember_fast.partition(records, portable_hash, True, buckets, 2) == 0
    assert buckets == [[(0, "a"), (2, "b")], []]
    assert next(records) == (1, "c")          # nothing read past the full bucket


def test_partition_rejects_a_partitioner_that_is_not_an_integer():
    with pytest.raises(TypeError, match="integer is required"):
        _ember_fast.partition(iter([(1, 1)]), lambda k: 0.5, False, [[], []], 10)


def _grouped(merger):
    return sorted((repr(k), sorted(map(repr, vs))) for k, vs in merger.items())


@pytest.mark.parametrize("limit", [1 << 30, 32 << 10])
def test_group_by_matches_python_in_memory_and_spilling(limit):
    rng = random.Random(5)
    pairs = [(_random_key(rng), rng.randint(0, 99)) for _ in range(6000)]

    def combiners():    # fresh lists each time: a merger takes over (and extends) a record's list
        return [(k, [v, v + 1]) for k, v in pairs[:3000]] + [("empty", []), ("gen", iter([7]))]

    def values():
        merger = shuffle.ExternalGroupBy(memory_limit=limit)
        merger.mergeValues(iter(pairs))
        return _grouped(merger), merger.spills

    def combined():
        merger = shuffle.ExternalGroupBy(memory_limit=limit)
        merger.mergeCombiners(iter(combiners()))
        return _grouped(merger), merger.spills

    for run in (values, combined):
        (fast, fast_spills), (slow, slow_spills) = _both(run)
        assert fast == slow
        assert (fast_spills > 0) == (slow_spills > 0) == (limit < 1 << 20)


def test_map_side_grouping_matches_python():
    rng = random.Random(9)
    pairs = [(rng.randint(0, 300), str(i)) for i in range(5000)]

    def merged(flushed):     # partial groups flushed at the limit, merged as the reduce side does
        groups: dict = {}
        for k, vs in flushed:
            groups.setdefault(k, []).extend(vs)
        return sorted(groups.items())
    for limit in (1 << 30, 16 << 10):
        fast, slow = _both(lambda: list(combine_locally(iter(pairs), shuffle.LIST_AGGREGATOR,
                                                        limit, grouping=True)))
        assert merged(fast) == merged(slow)
        assert (len(fast) > 301) == (len(slow) > 301) == (limit < 1 << 20)


def test_map_side_grouping_of_mostly_new_keys_matches_python():
    """Past shuffle._GROUPING_SAMPLE records of mostly new keys the C path stops
    grouping and sends one-value lists: merged, the same groups, values in the
    same order (keys repeat on both sides of the switch)."""
    rng = random.Random(5)
    pairs = [(rng.randrange(200_000), i) for i in range(60_000)]
    pairs += [(k, -1) for k, _ in pairs[:3000]]

    def merged(flushed):
        groups: dict = {}
        for k, vs in flushed:
            groups.setdefault(k, []).extend(vs)
        return sorted(groups.items())
    fast, slow = _both(lambda: list(combine_locally(iter(pairs), shuffle.LIST_AGGREGATOR,
                                                    1 << 30, grouping=True)))
    assert merged(fast) == merged(slow)
    assert len(slow) == len({k for k, _ in pairs}) < len(fast)
    assert fast[-1] == (pairs[-1][0], [-1])


def test_distinct_map_side_of_mostly_new_keys_matches_python():
    """distinct's map side (keep_first) past _GROUPING_SAMPLE mostly new records
    passes the rest through: kept first per key, in order, it is the same."""
    rng = random.Random(6)
    pairs = [((rng.randrange(500_000), "x"), None) for _ in range(60_000)]
    pairs += pairs[:3000]

    def first_of_each(records):
        kept: dict = {}
        for k, v in records:
            kept.setdefault(k, v)
        return list(kept.items())
    agg = shuffle.SimpleAggregator(shuffle.keep_first)
    fast, slow = _both(lambda: list(combine_locally(iter(pairs), agg, 1 << 30)))
    assert first_of_each(fast) == first_of_each(slow) == slow
    assert len(slow) < len(fast)

    def error():
        with pytest.raises(ValueError) as raised:
            list(combine_locally(iter(pairs + [(1, 2, 3)]), agg, 1 << 30))
        return str(raised.value)
    assert _both(error) == ("too many values to unpack (expected 2)",) * 2


def test_group_raises_what_python_raises():
    with pytest.raises(ValueError, match="not enough values to unpack"):
        _ember_fast.group({}, iter([("a", 1), ("b",)]), False, 10)
    with pytest.raises(TypeError, match="not iterable"):
        _ember_fast.group({}, iter([("a", 1)]), True, 10)


@pytest.mark.parametrize("limit", [1 << 30, 48 << 10])
def test_external_merger_matches_python_in_memory_and_spilling(limit):
    rng = random.Random(13)
    values = [(rng.randint(0, 2000), rng.randint(0, 9)) for _ in range(20000)]
    combiners = [(rng.randint(0, 2000), [rng.randint(0, 9)]) for _ in range(5000)]
    list_agg = Aggregator(lambda v: [v], lambda c, v: c + [v], lambda a, b: a + b)

    def merged(agg, method, records):
        def run():
            merger = shuffle.ExternalMerger(agg, limit)
            getattr(merger, method)(iter(records))
            return sorted(merger.items()), merger.spills
        return run
    for run in (merged(SimpleAggregator(operator.add), "mergeValues", values),
                merged(SimpleAggregator(shuffle.keep_first), "mergeCombiners", values),
                merged(list_agg, "mergeValues", values),
                merged(list_agg, "mergeCombiners", combiners)):
        (fast, fast_spills), (slow, slow_spills) = _both(run)
        assert fast == slow
        assert (fast_spills > 0) == (slow_spills > 0) == (limit < 1 << 20)


def test_size_tracker_answers_before_any_update():
    # The C loops report 0 records at the end of an input, possibly right after a spill.
    tracker = shuffle._DictSizeTracker()
    assert tracker.update({}, 0) > 0
    tracker.reset()
    assert tracker.update({"a": 1}, 0) > 0


class _Odd(tuple):
    """A tuple that iterates its own way: portable_hash must follow Python here."""

    def __iter__(self):
        return iter((7, 8, 9))

    def __len__(self):
        return 3


def test_tuple_subclasses_in_keys_are_hashed_by_the_python_rule():
    key = ("a", _Odd((1, 2)))
    assert _ember_fast.portable_hash(key) is None          # left to Python
    buckets = [[] for _ in range(5)]
    _ember_fast.partition(iter([(key, 1)]), portable_hash, True, buckets, 10)
    assert buckets[portable_hash(key) % 5] == [(key, 1)]


def test_an_error_from_a_records_own_iter_passes_unchanged():
    class Broken:
        def __iter__(self):
            raise KeyError("from __iter__")
    for fast in (_ember_fast, None):
        shuffle._ember_fast = fast
        try:
            with pytest.raises(KeyError, match="from __iter__"):
                list(combine_locally(iter([Broken()]), SimpleAggregator(operator.add)))
        finally:
            shuffle._ember_fast = _ember_fast


def _merge_every_64(self, records, create, merge):
    """ExternalMerger._merge_fast as it was: a memory check after every 64 records."""
    while True:
        consumed, exhausted = _ember_fast.combine(self.data, records, create,
                                                  shuffle._c_merge(merge), 64)
        if self._tracker.update(self.data, consumed) > self.memory_limit:
            self._spill()
        if exhausted:
            return


@pytest.mark.parametrize("limit", [1 << 30, 200 << 10, 48 << 10, 6 << 10])
def test_external_merger_checks_memory_at_the_records_the_64_record_loop_did(limit, monkeypatch):
    """_merge_fast runs the C loop past checks that could change nothing: the same
    spills at the same records, so the same items in the same order (spilled
    items come out bucket by bucket, which shows where each spill happened)."""
    rng = random.Random(17)
    distinct = [((str(rng.randint(0, 9000)), str(rng.randint(0, 99))), None) for _ in range(30000)]
    sums = [(rng.randint(0, 3000), rng.random()) for _ in range(30000)]
    spilled_at = []

    def run(agg, method, records):
        merger = shuffle.ExternalMerger(agg, limit)
        spill = merger._spill
        merger._spill = lambda: (spilled_at.append(len(merger.data)), spill())
        getattr(merger, method)(iter(records))
        return list(merger.items()), merger.spills

    for agg, method, records in ((SimpleAggregator(shuffle.keep_first), "mergeCombiners", distinct),
                                 (SimpleAggregator(operator.add), "mergeValues", sums)):
        spilled_at.clear()
        new = run(agg, method, records)
        new_at = list(spilled_at)
        spilled_at.clear()
        with monkeypatch.context() as m:
            m.setattr(shuffle.ExternalMerger, "_merge_fast", _merge_every_64)
            old = run(agg, method, records)
        assert new == old and new_at == spilled_at
        assert (new[1] > 0) == (limit < 1 << 20)
