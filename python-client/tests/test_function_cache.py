"""ember.function_cache: which unpickled task functions a Python subprocess
keeps, held against unpickling them for every task (the path it replaces)."""

from __future__ import annotations

import functools
import math
import operator
import os
import pickle
import re
import sys
from typing import Any, Callable

import cloudpickle
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ember import function_cache  # noqa: E402
from ember.broadcast import Broadcast  # noqa: E402
from ember.function_cache import FunctionCache, is_stateless  # noqa: E402
from ember.shuffle import Aggregator, portable_hash  # noqa: E402

COUNTER = 0
SEEN: list[int] = []
LIMIT = 10


# ---- functions that keep state between calls: every task must get its own copy -----

def appends_to_captured_list() -> Callable:
    seen: list[int] = []

    def f(x: int) -> int:
        seen.append(x)
        return len(seen)
    return f


def rebinds_nonlocal() -> Callable:
    count = 0

    def f(x: int) -> int:
        nonlocal count
        count += 1
        return count
    return f


def rebinds_global() -> Callable:
    def f(x: int) -> int:
        global COUNTER
        COUNTER += 1
        return COUNTER
    return f


def appends_to_global_list() -> Callable:
    def f(x: int) -> int:
        SEEN.append(x)
        return len(SEEN)
    return f


def mutable_default() -> Callable:
    def f(x: int, acc: list = []) -> int:   # noqa: B006 - the point of the case
        acc.append(x)
        return len(acc)
    return f


def attribute_on_itself() -> Callable:
    def f(x: int) -> int:
        f.calls = getattr(f, "calls", 0) + 1
        return f.calls
    return f


def attribute_set_on_driver() -> Callable:
    def f(x: int) -> int:
        return len(f.seen) + x
    f.seen = ()
    return f


def captured_dict() -> Callable:
    table: dict[int, int] = {}

    def f(x: int) -> int:
        table[x] = table.get(x, 0) + 1
        return table[x]
    return f


def captured_instance() -> Callable:
    class Box:
        def __init__(self) -> None:
            self.n = 0

    box = Box()

    def f(x: int) -> int:
        box.n += 1
        return box.n
    return f


def captured_bound_list_method() -> Callable:
    seen: list[int] = []
    add = seen.append

    def f(x: int) -> int:
        add(x)
        return len(seen)
    return f


def partial_of_list() -> Callable:
    def add_to(acc: list, x: int) -> int:
        acc.append(x)
        return len(acc)
    return functools.partial(add_to, [])


def through_globals() -> Callable:
    def f(x: int) -> int:
        g = globals()
        g["calls"] = g.get("calls", 0) + 1
        return g["calls"]
    return f


def inner_rebinds_outer_cell() -> Callable:
    count = 0

    def f(x: int) -> int:
        def bump() -> int:
            nonlocal count
            count += 1
            return count
        return bump()
    return f


def dynamic_class_attribute() -> Callable:
    class Tally:
        total = 0

    def f(x: int) -> int:
        Tally.total += 1
        return Tally.total
    return f


STATEFUL = [appends_to_captured_list, rebinds_nonlocal, rebinds_global, appends_to_global_list,
            mutable_default, attribute_on_itself, attribute_set_on_driver, captured_dict,
            captured_instance, captured_bound_list_method, partial_of_list, through_globals,
            inner_rebinds_outer_cell, dynamic_class_attribute]


# ---- functions without state of their own: kept -----------------------------------

def plain_lambda() -> Callable:
    return lambda x: x + 1


def closure_of_immutables() -> Callable:
    offset, name, pair, keys = 3, "n", (1, (2.5, b"x")), frozenset({1, 2})

    def f(x: int) -> Any:
        return (x + offset, name, pair, x in keys, LIMIT)
    return f


def closure_of_closures() -> Callable:
    inner = closure_of_immutables()
    twice = plain_lambda()

    def f(x: int) -> Any:
        return inner(twice(x))
    return f


def local_cell_rebound_per_call() -> Callable:
    def f(x: int) -> int:
        count = 0

        def bump() -> None:
            nonlocal count
            count += 1
        bump()
        bump()
        return count + x
    return f


def library_objects() -> Callable:
    first = operator.itemgetter(0)
    add_one = functools.partial(operator.add, 1)
    word = re.compile(r"\w+")
    agg = Aggregator(lambda v: v, operator.add, operator.add)

    def f(x: int) -> Any:
        return (first((x,)), add_one(x), word.findall(f"a{x} b"), math.floor(x / 2),
                agg.mergeValue(agg.createCombiner(x), 1), portable_hash(x))
    return f


def generator_function() -> Callable:
    def f(x: int) -> Any:
        def gen() -> Any:
            yield from range(x)
        return sum(gen())
    return f


STATELESS = [plain_lambda, closure_of_immutables, closure_of_closures,
             local_cell_rebound_per_call, library_objects, generator_function]


def roundtrip(obj: Any) -> Any:
    return pickle.loads(cloudpickle.dumps(obj, 5))


@pytest.mark.parametrize("factory", STATEFUL, ids=lambda f: f.__name__)
def test_functions_with_state_are_refused(factory: Callable) -> None:
    assert not is_stateless(roundtrip(factory()))


@pytest.mark.parametrize("factory", STATELESS, ids=lambda f: f.__name__)
def test_functions_without_state_are_accepted(factory: Callable) -> None:
    assert is_stateless(roundtrip(factory()))


def test_broadcast_handle_in_a_task_is_accepted_and_a_driver_one_refused() -> None:
    handle = Broadcast(None, None, 7)
    assert is_stateless(roundtrip(lambda x: handle.bid + x))
    assert not is_stateless(Broadcast.__new__(Broadcast))   # no fields: not a task's handle


def run_tasks(data: bytes, load: Callable[[bytes], Any], tasks: int = 4) -> list[list[Any]]:
    """Each task loads the function and calls it on three records."""
    results = []
    for _ in range(tasks):
        func = load(data)
        results.append([func(x) for x in (1, 2, 3)])
    return results


@pytest.mark.parametrize("factory", STATEFUL + STATELESS, ids=lambda f: f.__name__)
def test_cached_loads_give_what_unpickling_every_task_gives(factory: Callable) -> None:
    global COUNTER, LIMIT
    data = cloudpickle.dumps(factory(), 5)
    saved = (COUNTER, LIMIT, list(SEEN))
    cache = FunctionCache()
    cache.begin_task("app-1", {})
    cached = run_tasks(data, cache.load)
    assert (COUNTER, LIMIT, SEEN) == saved      # by-value globals never touch the driver's
    uncached = run_tasks(data, pickle.loads)
    assert cached == uncached
    kept = is_stateless(pickle.loads(data))
    assert kept == (factory in STATELESS)
    assert cache.hits == (2 if kept else 0)     # kept when seen again: the 3rd and 4th task


def test_keyed_on_exact_bytes_and_dropped_with_the_application() -> None:
    cache = FunctionCache()
    cache.begin_task("app-1", {})
    one, two = cloudpickle.dumps(lambda x: x + 1, 5), cloudpickle.dumps(lambda x: x + 2, 5)
    cache.load(one)
    f = cache.load(one)                         # seen again: kept
    assert cache.load(bytes(one)) is f          # equal bytes, another object
    assert cache.load(two) is not f and cache.load(two)(1) == 3
    cache.begin_task("app-1", {})
    assert cache.load(one) is f and cache.hits == 1
    cache.begin_task("app-2", {})
    assert cache.load(one) is not f and cache.load(one) is not f and cache.hits == 0


def test_turned_off_by_the_property() -> None:
    cache = FunctionCache()
    data = cloudpickle.dumps(lambda x: x, 5)
    cache.begin_task("app-1", {function_cache.PROPERTY: "false"})
    loaded = [cache.load(data) for _ in range(3)]
    assert len({id(func) for func in loaded}) == 3
    assert cache.hits == 0 and not cache.entries


def test_bounded_in_entries_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(function_cache, "MAX_ENTRIES", 3)
    cache = FunctionCache()
    cache.begin_task("app-1", {})
    pickles = [cloudpickle.dumps((lambda n: lambda x: x + n)(n), 5) for n in range(5)]
    for data in pickles:
        cache.load(data)
        cache.load(data)
    assert list(cache.entries) == pickles[2:]
    assert cache.bytes == sum(map(len, pickles[2:]))
    monkeypatch.setattr(function_cache, "MAX_BYTES", len(pickles[0]) + 1)
    cache.load(pickles[0])
    assert list(cache.entries) == [pickles[0]]
    big = cloudpickle.dumps((lambda blob: lambda x: len(blob))(b"x" * 100), 5)
    cache.load(big)                             # over the whole budget: not kept
    assert big not in cache.entries


def test_refused_pickles_are_remembered_as_refused() -> None:
    cache = FunctionCache()
    cache.begin_task("app-1", {})
    data = cloudpickle.dumps(appends_to_captured_list(), 5)
    first = cache.load(data)
    assert cache.entries[data] is function_cache._SEEN_ONCE
    second, third = cache.load(data), cache.load(data)
    assert cache.entries[data] is function_cache._REFUSED
    assert len({id(first), id(second), id(third)}) == 3
    assert [first(1), second(1), third(1)] == [1, 1, 1]
