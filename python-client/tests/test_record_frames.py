"""Shuffle frames without pickle (_ember_fast.dump_records / load_records,
services/pyexec/pyexec_records.c): what comes back equals what pickle gives back,
type for type (floats bit for bit); anything else is left to pickle.

Like test_fast_loops.py, _ember_fast is loaded from build/lib.
"""

import math
import pickle
import random
import struct
from collections import namedtuple

import pytest

from fast_extension import _ember_fast


def _shape(x):
    """Types and values all the way down; floats by their bits (nan, -0.0)."""
    if type(x) is float:
        return ("float", struct.pack("<d", x))
    if type(x) in (tuple, list):
        return (type(x).__name__, [_shape(i) for i in x])
    return (type(x).__name__, x)


def _random_value(rng, depth=0):
    makers = [
        lambda: None, lambda: True, lambda: False, lambda: rng.randint(-2**63, 2**63 - 1),
        lambda: rng.randint(-300, 300),
        lambda: rng.choice([0.0, -0.0, math.inf, -math.inf, math.nan, rng.random() * 1e300,
                            5e-324, rng.uniform(-1, 1)]),
        lambda: rng.choice(["", "a", "é", "日本", "\x00", "w" * 300, "\U0001f600"]),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(5))),
        lambda: (rng.choice("abc"), rng.random()),
        lambda: (str(rng.random()), [str(rng.random()) for _ in range(3)]),
        lambda: tuple(_random_value(rng, depth + 1) for _ in range(rng.randrange(4))),
        lambda: [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))],
    ]
    return makers[rng.randrange(len(makers) if depth < 3 else len(makers) - 2)]()


def test_round_trip_equals_pickles():
    rng = random.Random(4)
    records = [_random_value(rng) for _ in range(20_000)]
    frame = _ember_fast.dump_records(records, b"\x00\x00\x00\x07")
    assert frame[:4] == b"\x00\x00\x00\x07" and frame[4] == _ember_fast.RECORDS_MAGIC
    back = _ember_fast.load_records(frame[4:])
    assert _shape(back) == _shape(pickle.loads(pickle.dumps(records, 5)))
    assert frame[4] != pickle.dumps(records, 5)[0]        # a reader tells them apart


Point = namedtuple("Point", "x y")


class Key(str):
    pass


@pytest.mark.parametrize("record", [
    2**63, -2**63 - 1, Point(1, 2), Key("k"), "\ud800", {"a": 1}, {1}, bytearray(b"x"),
    1 + 2j, object(), (1, [2, {3}]),
])
def test_anything_else_is_left_to_pickle(record):
    assert _ember_fast.dump_records([("k", 1), record], b"") is None


def test_a_list_seen_twice_is_left_to_pickle():
    shared = [1, 2]
    assert _ember_fast.dump_records([("a", shared), ("b", shared)], b"") is None
    looped = [1]
    looped.append(looped)
    assert _ember_fast.dump_records([looped], b"") is None
    deep = None
    for _ in range(200):
        deep = (deep,)
    assert _ember_fast.dump_records([deep], b"") is None


def test_corrupt_frames_raise_value_error():
    frame = _ember_fast.dump_records([("word", 1), ("other", 2.5)], b"")
    for bad in (frame[:-1], frame + b"x", frame[:2], b"\xe5\x02\x00", frame[:5] + b"?" + frame[6:]):
        with pytest.raises(ValueError, match="corrupt record frame"):
            _ember_fast.load_records(bad)
    assert _ember_fast.load_records(_ember_fast.dump_records([], b"")) == []


# Cache blocks: groupByKey's (key, ResultIterable) records (tag 'R').
from ember.resultiterable import ResultIterable  # noqa: E402
from ember.shuffle import ExternalList  # noqa: E402


def _shape_ri(x):
    """_shape, with a ResultIterable as its type, its data's shape and its attributes."""
    if type(x) is ResultIterable:
        return ("ResultIterable", _shape_ri(x.data), x.index, x.maxindex,
                sorted(vars(x)))
    if type(x) in (tuple, list):
        return (type(x).__name__, [_shape_ri(i) for i in x])
    return _shape(x)


def test_result_iterables_round_trip_as_pickle_gives_them():
    _ember_fast.set_result_iterable(ResultIterable)
    rng = random.Random(9)
    records = [(str(rng.randrange(1000)),
                ResultIterable([_random_value(rng) for _ in range(rng.randrange(6))]))
               for _ in range(5_000)]
    records.append(("empty", ResultIterable([])))
    records.append((("nested", 1), (ResultIterable([1.5, None]), ResultIterable(["x"]))))
    odd = ResultIterable([1, 2])
    odd.index = 5                      # pickle's __reduce__ drops it: so must the frame
    records.append(("odd", odd))
    frame = _ember_fast.dump_records(records, b"")
    assert frame is not None and frame[0] == _ember_fast.RECORDS_MAGIC
    back = _ember_fast.load_records(frame)
    assert _shape_ri(back) == _shape_ri(pickle.loads(pickle.dumps(records, 5)))
    assert list(back[0][1]) == list(records[0][1])


class MyValues(ResultIterable):
    pass


def test_other_result_iterables_are_left_to_pickle(tmp_path):
    _ember_fast.set_result_iterable(ResultIterable)
    shared = [1, 2]
    for record in [("k", MyValues([1])), ("k", ResultIterable((1, 2))),
                   ("k", (ResultIterable(shared), shared)),
                   ("k", ResultIterable([1, {2}]))]:
        assert _ember_fast.dump_records([record], b"") is None, record
    spilled = ExternalList([1, 2], memory_limit=1 << 20, spill_dir=str(tmp_path))
    assert _ember_fast.dump_records([("k", ResultIterable(spilled))], b"") is None


def test_a_result_iterable_tag_needs_a_list():
    _ember_fast.set_result_iterable(ResultIterable)
    frame = _ember_fast.dump_records([ResultIterable([1])], b"")
    assert frame[3:4] == b"R"
    with pytest.raises(ValueError, match="corrupt record frame"):
        _ember_fast.load_records(frame[:3] + b"R(" + frame[5:])
    with pytest.raises(TypeError):
        _ember_fast.set_result_iterable("not a class")
