"""_ember_fast.PairGroups (groupByKey's reduce side keyed on str and bytes keys' bytes)
against _ember_fast.group's dict loop, which it replaces in ExternalGroupBy.mergeValues:
after the same calls, the same dict (keys in the same order, the very key and value
objects), the same result tuple from every call (so the memory checks and spills
happen at the same records), and the same errors."""

import random

import pytest

from fast_extension import _ember_fast

from ember import shuffle  # noqa: E402
from ember.shuffle import LIST_AGGREGATOR, ExternalGroupBy  # noqa: E402


class Text(str):
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
        assert all(a is b for a, b in zip(nvs, ovs))
    assert len(new_results) == len(old_results)
    for n, o in zip(new_results, old_results):
        assert n[:4] == o[:4]              # consumed, exhausted, new keys, values added
        assert n[4] is o[4] and n[5] is o[5]   # the sampled key and value
    return old


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
    7, 7.0, True, None, ("7",), b"7" * 40,
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


def _merged(records, memory_limit, pair_groups, monkeypatch):
    monkeypatch.setattr(shuffle, "_PAIR_GROUPS", pair_groups)
    merger = ExternalGroupBy(LIST_AGGREGATOR, memory_limit)
    spills = shuffle.task_spill_metrics()["spills"]
    merger.mergeValues(iter(records))
    items = [(k, list(vs)) for k, vs in merger.items_with(list)]
    return items, shuffle.task_spill_metrics()["spills"] - spills


@pytest.mark.parametrize("memory_limit", [1 << 30, 300_000, 40_000])
def test_external_group_by_spills_at_the_same_records(memory_limit, monkeypatch):
    rng = random.Random(memory_limit)
    records = [(rng.choice([str(rng.randrange(3000)), rng.randrange(50)]), (i, "v"))
               for i in range(30_000)]
    old = _merged(records, memory_limit, False, monkeypatch)
    new = _merged(records, memory_limit, True, monkeypatch)
    assert new == old                      # groups, their order, values in order, spills
    assert (old[1] > 0) == (memory_limit < 1 << 30)
    assert [type(k) for k, _ in new[0]] == [type(k) for k, _ in old[0]]
