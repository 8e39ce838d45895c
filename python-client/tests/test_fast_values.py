"""_ember_fast's per-key steps (services/pyexec/pyexec_values.c) and reduceByKey's
in-place float sums (pyexec_fast.c) against the Python code they replace:
ResultIterable's slots, mapValues' map_values, count, and combine with operator.add.

The module is loaded from ``build/lib`` (next to ``EMBER_BIN_DIR``); a sanitized
build has no loadable copy (``/usr/bin/python3`` cannot load an ASan module).
"""

import importlib.util
import math
import operator
import pickle
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from fast_extension import _ember_fast

from ember import per_record  # noqa: E402
from ember.shuffle import ExternalList, MemoryBudget  # noqa: E402

_SOURCE = Path(per_record.__file__).with_name("resultiterable.py")


def _load_resultiterable(with_c: bool):
    """A fresh copy of ember.resultiterable, built with the C slots or without."""
    name = f"resultiterable_{'c' if with_c else 'python'}"
    saved = sys.modules.get("_ember_fast")
    sys.modules["_ember_fast"] = _ember_fast if with_c else None   # None: ImportError
    try:
        spec = importlib.util.spec_from_file_location(name, _SOURCE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module        # pickle finds the class by its module
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["_ember_fast"]
        else:
            sys.modules["_ember_fast"] = saved
    return module.ResultIterable


FAST = _load_resultiterable(True)
SLOW = _load_resultiterable(False)


def test_the_fast_class_has_the_c_slots_and_the_slow_one_has_not():
    assert FAST.__mro__[1] is _ember_fast.ResultIterableBase
    assert _ember_fast.ResultIterableBase not in SLOW.__mro__


def _observe(cls, data):
    values = cls(data)
    seen = [type(values).__name__, isinstance(values, Iterable), dict(vars(values)),
            len(values), bool(values), list(values), list(values), repr(values)]
    copy = pickle.loads(pickle.dumps(values))
    seen += [vars(copy), list(copy)]
    values.data = data + [99] if isinstance(data, list) else [99]   # reads follow the attribute
    seen += [len(values), list(values), values.index, values.maxindex]
    return seen


@pytest.mark.parametrize("data", [[], [1], ["a", "b", "a"], [None, 2.5, (1, 2)]])
def test_result_iterable_behaves_as_the_python_class(data):
    assert _observe(FAST, list(data)) == _observe(SLOW, list(data))


def test_result_iterable_over_an_external_list():
    def make():
        values = ExternalList(budget=MemoryBudget(1 << 20))
        for i in range(5):
            values.append(i)
        return values
    fast, slow = FAST(make()), SLOW(make())
    assert (len(fast), list(fast), fast.maxindex) == (len(slow), list(slow), slow.maxindex)


def _error(call):
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


def test_result_iterable_raises_what_the_python_class_raises():
    for cls_call in [lambda cls: cls(5), lambda cls: cls(iter([1])),
                     lambda cls: cls([1], 2)]:
        assert _error(lambda: cls_call(FAST))[0] is _error(lambda: cls_call(SLOW))[0]
    assert _error(lambda: FAST(5)) == _error(lambda: SLOW(5))

    for cls in (FAST, SLOW):
        values = cls([1])
        del values.data
        with pytest.raises(AttributeError):
            iter(values)
        with pytest.raises(AttributeError):
            len(values)
    assert FAST(data=[1, 2]).maxindex == SLOW(data=[1, 2]).maxindex == 2


def test_a_subclass_may_override_the_slots():
    class Reversed(FAST):
        def __iter__(self):
            return reversed(self.data)

        def __len__(self):
            return 7
    values = Reversed([1, 2, 3])
    assert (list(values), len(values), values.maxindex) == ([3, 2, 1], 7, 3)


def _map_values_both(f, records):
    """(fast result or error, slow result or error) of map_values over records."""
    def run(fast):
        saved = per_record._ember_fast
        per_record._ember_fast = _ember_fast if fast else None
        out = []
        try:
            for x in per_record.map_values(f, iter(records)):
                out.append(x)
        except Exception as e:  # noqa: BLE001 - compared below
            out.append((type(e), str(e)))
        finally:
            per_record._ember_fast = saved
        return out
    return run(True), run(False)


@pytest.mark.parametrize("records", [
    [("a", 1), ("b", 2)],
    [["a", 1], ("b", 2, 3), "xy"],       # any subscriptable record, as kv[0] and kv[1]
    [("a", 1), ("b",)],                   # IndexError after the first record
    [("a", 1), 5],                        # not subscriptable
    [("a", 1), {0: "k", 1: 4}],           # a dict record: kv[0], kv[1] are lookups
    [("a", 1), {0: "k"}],                 # KeyError(1)
    [("a", 1), ("b", "text")],           # f raises on the second record
])
def test_map_values_matches_python(records):
    fast, slow = _map_values_both(lambda v: v * 2 if isinstance(v, int) else v + 1, records)
    assert fast == slow


def test_map_values_is_lazy_and_calls_f_once_per_record_in_order():
    calls = []

    def f(v):
        calls.append(v)
        return -v
    it = _ember_fast.map_values(f, [("a", 1), ("b", 2), ("c", 3)])
    assert calls == []
    assert next(it) == ("a", -1) and calls == [1]
    assert list(it) == [("b", -2), ("c", -3)] and calls == [1, 2, 3]


def test_map_values_passes_an_error_of_the_records_iterator():
    def records():
        yield ("a", 1)
        raise RuntimeError("source broke")
    it = _ember_fast.map_values(str, records())
    assert next(it) == ("a", "1")
    with pytest.raises(RuntimeError, match="source broke"):
        next(it)


def test_count_matches_python():
    for make in (list, lambda: range(5), lambda: (x for x in "abc"), lambda: {"a": 1, "b": 2},
                 lambda: iter([None] * 300)):
        saved = per_record._ember_fast
        try:
            per_record._ember_fast = _ember_fast
            fast = per_record.count(make())
            per_record._ember_fast = None
            slow = per_record.count(make())
        finally:
            per_record._ember_fast = saved
        assert fast == slow and type(fast) is int

    def broken():
        yield 1
        raise ValueError("mid-partition")
    with pytest.raises(ValueError, match="mid-partition"):
        _ember_fast.count(broken())
    with pytest.raises(TypeError, match="not iterable"):
        _ember_fast.count(5)


def _bits(x):
    return struct.pack("<d", x) if isinstance(x, float) else x


def _python_combine(records):
    data = {}
    for k, v in records:
        data[k] = data[k] + v if k in data else v
    return data


def _fast_combine(records):
    data = {}
    it = iter(records)
    while not _ember_fast.combine(data, it, None, operator.add, 3)[1]:
        pass
    return data


class Real(float):
    """A float subclass: its + must stay its own."""

    def __add__(self, other):
        return Real(float(self) + float(other) + 1)


def test_float_sums_in_place_are_bit_identical_to_python():
    import random
    rng = random.Random(11)
    specials = [math.inf, -math.inf, math.nan, -0.0, 0.0, 1e308, 5e-324, 0.1]
    def value():
        roll = rng.random()
        if roll < 0.9:
            return rng.random() / 7
        return rng.choice(specials + [rng.randint(-3, 3), Real(0.5), True])
    records = [(rng.randint(0, 200), value()) for _ in range(20000)]
    fast, slow = _fast_combine(records), _python_combine(records)
    assert list(fast) == list(slow)
    assert [(type(v), _bits(v)) for v in fast.values()] == \
        [(type(v), _bits(v)) for v in slow.values()]


def test_a_float_held_elsewhere_is_never_changed():
    first = 0.25
    shared = {"a": first}                 # the combiner's first value is also held here
    records = [("a", first), ("a", 0.5), ("a", 1.0), ("b", 2.0)]
    fast = _fast_combine(records)
    assert (first, records[0][1], shared["a"]) == (0.25, 0.25, 0.25)
    assert fast == {"a": 1.75, "b": 2.0}

    held = []

    def keep(records):                    # a value taken out between two calls
        data = {}
        it = iter(records)
        _ember_fast.combine(data, it, None, operator.add, 2)
        held.append(data["a"])
        before = held[0]
        _ember_fast.combine(data, it, None, operator.add, 10)
        return data, before
    data, before = keep([("a", 1.0), ("a", 2.0), ("a", 4.0)])
    assert held[0] == before == 3.0 and data["a"] == 7.0
