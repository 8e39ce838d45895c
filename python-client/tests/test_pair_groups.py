"""_ember_fast.PairGroups (groupByKey's reduce side keyed on str and bytes keys' bytes)
against _ember_fast.group's dict loop, which it replaces in ExternalGroupBy.mergeValues:
after the same calls, the same dict (keys in the same order, the very key and value
objects), the same result tuple from every call (so the memory checks and spills
happen at the same records), and the same errors."""

import random
import sys

import pytest

from fast_extension import _ember_fast

from ember import shuffle  # noqa: E402
from ember.shuffle import LIST_AGGREGATOR, ExternalGroupBy  # noqa: E402


class Text(str):
    pass


class Blob(bytes):
    pass


def _drive(records, chunks, fast):
    """Feeds records to a fresh dict in calls of the given sizes (then the last size
    again) until the iterator ends or fails: (dict items, call results, error)."""
    data, results, error = {}, [], None
    groups = _ember_fast.PairGroups()
    iterator = iter(records)
    sizes = iter(chunks)
    size = 64
    try:
        while True:
            size = next(sizes, size)
            result = (groups.add(data, iterator, size) if fast
                      else _ember_fast.group(data, iterator, False, size))
            results.append(result)
            if result[1]:
                break
    except Exception as e:  # noqa: BLE001 - the error is part of what is compared
        error = (type(e), str(e))
    groups.flush(data)
    assert len(groups) == 0
    return list(data.items()), results, error


def _assert_same(records, chunks=(64,)):
    """records: a list, or a function giving a new iterator of the same objects."""
    def fresh():
        return records() if callable(records) else records
    old = _drive(fresh(), chunks, False)
    new = _drive(fresh(), chunks, True)
    (old_items, old_results, old_error), (new_items, new_results, new_error) = old, new
    assert new_error == old_error
    assert len(new_items) == len(old_items)
    for (nk, nvs), (ok, ovs) in zip(new_items, old_items):
        assert nk is ok                    # the first record's key object, in first-seen order
        assert type(nvs) is list and len(nvs) == len(ovs)
        # the very value objects, except that an exact str may be an equal exact
        # str seen before it (one object per equal value: see test_equal_str_values_*)
        assert all(a is b or (type(a) is type(b) is str and a == b) for a, b in zip(nvs, ovs))
    assert len(new_results) == len(old_results)
    for n, o in zip(new_results, old_results):
        assert n[:4] == o[:4]              # consumed, exhausted, new keys, values added
        assert n[4] is o[4] and n[5] is o[5]   # the sampled key and value
    return old


class Share(str):
    pass


def _values(items):
    return [v for _, vs in items for v in vs]


def test_equal_str_values_are_one_object_in_the_groups():
    # PageRank's links: each url once per edge, decoded as its own str. The groups
    # hold one object per equal exact str (the first record's), so that a later
    # dict of them matches keys by identity; the values are the dict loop's
    # otherwise (same order, equal, exact str), and other types and str
    # subclasses are the very objects the records held.
    rng = random.Random(11)
    urls = [str(rng.randrange(500)) for _ in range(6000)]
    records = [(str(rng.randrange(300)), "".join(list(u))) for u in urls]    # fresh objects
    # equal values of every str width, as distinct objects (a whole slice or a folded
    # constant would be the very object): latin-1, UCS2, UCS4, an embedded NUL, and
    # values past the table's 16-byte inline head that differ only in their last byte
    wide = ["\u00e97", "\u4e2dx", "\U0001f6007" * 3, "a\x00b", "a\x00c", "p" * 99 + "q",
            "p" * 99 + "r", "\u4e2d" * 40 + "s"]
    records += [("k", Share("7")), ("k", Share("7")), ("k", 7)]
    records += [("j", "".join(list(w))) for w in wide] + [("j", "".join(list(w))) for w in wide]
    assert all(a is not b for (_, a), (_, b) in zip(records[-2 * len(wide):-len(wide)],
                                                    records[-len(wide):]))
    _assert_same(records)
    items, _, _ = _drive(records, (64,), True)
    values = _values(items)
    strs = [v for v in values if type(v) is str]
    assert len({id(v) for v in strs}) == len(set(strs))     # one object per value
    first = {}
    for _, v in records:
        if type(v) is str:
            first.setdefault(v, v)
    assert all(v is first[v] for v in strs)                 # the first record's
    shares = [v for v in values if type(v) is Share]
    assert len(shares) == 2 and shares[0] is not shares[1]  # a subclass is never shared
    assert sorted(map(repr, values)) == sorted(repr(v) for _, v in records)


def test_values_that_rarely_repeat_stay_the_records_objects():
    # Sharing costs a table entry per value; once the first 20,000 str values
    # or more are mostly new, the table stops and the values are the records' own.
    # 4,000 values in equal pairs (2,000 repeats), then 56,000 new ones, then fresh
    # copies of an early value, which would be shared if the table were still on
    records = [(str(i % 100), "v" + str(i // 2 if i < 4000 else i)) for i in range(60_000)]
    records += [("late", "".join(["v", "7"])) for _ in range(3)]
    _assert_same(records)
    items, _, _ = _drive(records, (64,), True)
    by_key = {}
    for k, v in records:
        by_key.setdefault(k, []).append(v)
    shared = sum(a is not b for k, vs in items for a, b in zip(vs, by_key[k]))
    assert shared == 2000                  # shared at first, not after the sample
    late = dict(items)["late"]
    assert all(a is b for a, b in zip(late, by_key["late"]))


def test_the_str_table_counts_its_bytes_and_frees_them_when_it_stops():
    # add()'s 7th item is the bytes of PairGroups' own tables, the str table's too:
    # it grows while values repeat and drops when the sample turns the table off.
    def table_bytes(groups, data, records):
        iterator = iter(records)
        while True:
            result = groups.add(data, iterator, 1000)
            if result[1]:
                return result[6]

    data: dict = {}
    groups = _ember_fast.PairGroups()
    few = table_bytes(groups, data, [("k", "".join(["u", str(i % 50)])) for i in range(19_000)])
    groups.flush(data)
    data = {}
    groups = _ember_fast.PairGroups()
    # the same 19,000 keyed records, but values that never repeat
    many = table_bytes(groups, data, [("k", "w" + str(i)) for i in range(19_000)])
    # past the 20,000th value the table stops and empties
    stopped = table_bytes(groups, data, [("k", "w" + str(i)) for i in range(19_000, 21_000)])
    groups.flush(data)
    assert many > few                      # 19,000 str entries against 50
    assert stopped < many


def _key(rng):
    return rng.choice([
        str(rng.randrange(3000)),
        "é" + str(rng.randrange(50)),                 # one byte per character, not ASCII
        "ĉ" + str(rng.randrange(50)),                 # two bytes per character
        "\U0001f600" + str(rng.randrange(50)),        # four
        "" if rng.random() < 0.01 else "k" * 30 + str(rng.randrange(40)),   # past the inline head
        str(rng.randrange(40)).encode(),              # bytes equal in bytes to a str key
    ])


@pytest.mark.parametrize("chunks", [(64,), (1,), (7, 3, 1000), (100_000,)])
def test_str_and_bytes_keys_give_the_dict_loops_groups(chunks):
    rng = random.Random(len(chunks))
    records = [(_key(rng), rng.choice([i, str(i), None, [i], (i,)])) for i in range(20_000)]
    items, _, error = _assert_same(records, chunks)
    assert error is None and len(items) > 2000


def test_many_keys_grow_the_table():
    rng = random.Random(5)
    records = [(str(rng.randrange(150_000)), i) for i in range(400_000)]
    items, _, _ = _assert_same(records)
    assert len(items) > 100_000


@pytest.mark.parametrize("other", [
    Text("7"),                 # equal to the str key "7": must join its group
    7, 7.0, True, None, ("7",),
    Blob(b"7" * 40),           # not exact bytes: never keyed on its bytes
    Blob(b"3"),                # equal to the bytes key b"3" of the tail
    ["7", 1],                  # a record that is not a tuple
])
def test_a_key_of_another_type_moves_the_groups_into_the_dict(other):
    head = [(str(i % 10), i) for i in range(100)]
    odd = other if isinstance(other, list) else (other, "odd")
    tail = [(str(i % 12), i) for i in range(100)] + [(Text("3"), "t"), (b"3", "b")]
    for at in (0, 1, 50):
        _assert_same(head[:at] + [odd] + head[at:] + tail, (64, 5, 64))


@pytest.mark.parametrize("bad", [("a", 1, 2), ("a",), 7, None, ([1], 2)])
def test_records_that_fail_fail_as_in_the_dict_loop(bad):
    records = [(str(i % 9), i) for i in range(100)]
    for at in (0, 30, 64, 99):
        _, _, error = _assert_same(records[:at] + [bad] + records[at:])
        assert error is not None


def test_an_iterator_that_raises_keeps_the_records_before_it():
    pairs = [(str(i % 11), i) for i in range(150)]

    def records():
        yield from pairs
        raise KeyError("upstream")
    for chunks in ((64,), (1,), (1000,)):
        items, _, error = _assert_same(records, chunks)
        assert error == (KeyError, "'upstream'")
        assert sum(len(vs) for _, vs in items) == 150


def test_add_needs_a_dict_and_an_iterator():
    groups = _ember_fast.PairGroups()
    with pytest.raises(TypeError):
        groups.add([], iter([]), 10)
    with pytest.raises(TypeError):
        groups.add({}, [], 10)
    with pytest.raises(TypeError):
        groups.flush([])
    groups.add({}, iter([("a", 1)]), 10)
    with pytest.raises(RuntimeError, match="flush before"):   # its groups would be split
        groups.add({"b": [2]}, iter([("a", 2)]), 10)
    data = {}
    groups.flush(data)
    assert data == {"a": [1]} and len(groups) == 0
    with pytest.raises(TypeError):
        groups.flush({}, {})


def test_flush_into_a_dict_with_groups_raises_and_keeps_both():
    groups = _ember_fast.PairGroups()
    groups.add({}, iter([("a", 1), ("b", 2)]), 10)
    data = {"a": [0]}
    with pytest.raises(RuntimeError, match="must be empty"):
        groups.flush(data)                 # PyDict_Update used to replace data's "a"
    assert data == {"a": [0]} and len(groups) == 2
    assert groups.flush() == {"a": [1], "b": [2]} and len(groups) == 0
    data = {"c": [3]}
    groups.flush(data)                     # an empty table: nothing to move
    assert groups.flush() == {} and data == {"c": [3]}


def test_flush_returns_the_groups_as_a_new_dict_and_frees_the_table():
    records = [(str(i % 5000), i) for i in range(100_000)]
    groups = _ember_fast.PairGroups()
    result = groups.add({}, iter(records), len(records))
    assert result[6] > 100_000 * 12        # the table's bytes: ids and values per record, ...
    data = groups.flush()
    old = {}
    _ember_fast.group(old, iter(records), False, len(records))
    assert list(data.items()) == list(old.items())
    # the arrays were freed: the table holds only their first sizes again
    assert groups.add({}, iter([("a", 1)]), 10)[6] < 150_000
    assert groups.flush() == {"a": [1]}


def test_add_into_a_dict_with_groups_does_not_leak_none():
    groups = _ember_fast.PairGroups()
    groups.add({}, iter([("a", 1)]), 10)
    before = sys.getrefcount(None)
    for _ in range(1000):
        with pytest.raises(RuntimeError):
            groups.add({"b": [2]}, iter([("a", 2)]), 10)
    assert sys.getrefcount(None) - before < 100


@pytest.mark.parametrize("chunks", [(64,), (1,), (7, 1000)])
def test_a_full_table_moves_the_groups_into_the_dict(chunks):
    # The real cap is 2^32 - 2 records (uint32 ids); past it group()'s loop
    # goes on, which a lowered cap shows.
    old_cap = _ember_fast.PairGroups._set_records_cap(200)
    try:
        rng = random.Random(3)
        records = [(str(rng.randrange(80)), i) for i in range(2000)]
        items, _, error = _assert_same(records, chunks)
        assert error is None and sum(len(vs) for _, vs in items) == 2000
    finally:
        _ember_fast.PairGroups._set_records_cap(old_cap)


def _merged(records, memory_limit, pair_groups, monkeypatch):
    monkeypatch.setattr(shuffle, "_PAIR_GROUPS", pair_groups)
    merger = ExternalGroupBy(LIST_AGGREGATOR, memory_limit)
    spills = shuffle.task_spill_metrics()["spills"]
    merger.mergeValues(iter(records))
    items = [(k, list(vs)) for k, vs in merger.items_with(list)]
    return items, shuffle.task_spill_metrics()["spills"] - spills


@pytest.mark.parametrize("memory_limit", [1 << 30, 2_000_000, 300_000, 40_000])
def test_external_group_by_spills_no_later_with_the_same_groups(memory_limit, monkeypatch):
    # Mostly str keys (a full table at each spill), rarely an int (groups moved
    # into the dict mid-round). The table's bytes count too, so PairGroups may
    # spill earlier than the dict loop, never later; the groups are the same.
    rng = random.Random(memory_limit)
    records = [(rng.randrange(50) if rng.random() < 0.002 else str(rng.randrange(3000)),
                (i, "v")) for i in range(60_000)]
    old = _merged(records, memory_limit, False, monkeypatch)
    new = _merged(records, memory_limit, True, monkeypatch)
    assert new[1] >= old[1]                # spills
    assert (old[1] > 0) == (memory_limit < 1 << 30)
    assert len(new[0]) == len(old[0]) and dict(new[0]) == dict(old[0])   # values in order
    if old[1] == new[1] == 0:
        assert new[0] == old[0]            # and the keys' order
    assert sorted(map(repr, new[0])) == sorted(map(repr, old[0]))       # keys' types
