"""reduceByKey(add)'s reduce side read from record frames (_ember_fast.merge_float_frame,
ExternalMerger._merge_frames) against the decoded path it replaces: the same dict, in the
same order, the same float bits, the same spills and errors, for frames of (str, float)
pairs mixed with other records, pickled frames and frames that do not parse."""
import contextlib
import math
import re
import operator
import pickle
import random
import struct

import pytest

from fast_extension import _ember_fast

from ember import shuffle  # noqa: E402
from ember.shuffle import Aggregator, ExternalMerger, RecordBatches, identity  # noqa: E402

ADD = Aggregator(identity, operator.add, operator.add)


def _frame(records):
    data = _ember_fast.dump_records(records, b"")
    return data if data is not None else pickle.dumps(records, 5)


def _decoded(frames):
    for f in frames:
        yield _ember_fast.load_records(f) if f[:1] == b"\xe5" else pickle.loads(f)


def _raw(frames):
    for f in frames:
        yield f if f[:1] == b"\xe5" else pickle.loads(f)


def _batches(frames):
    batches = _decoded(frames)
    records = RecordBatches.from_iterable(batches)
    records.batches = batches
    records.raw_source = lambda: _raw(frames)
    return records


def _merge(frames, fast, limit=512 << 20, agg=ADD):
    merger = ExternalMerger(agg, limit)
    if fast:
        merger.mergeCombiners(_batches(frames))
    else:
        from itertools import chain
        merger.mergeCombiners(chain.from_iterable(_decoded(frames)))
    return merger


def _items(merger):
    return [(k, v, struct.pack("<d", v) if type(v) is float else None)
            for k, v in merger.items()]


def _random_frames(rng, n_frames, odd=0.0):
    keys = [str(rng.randrange(3000)) for _ in range(2000)] + ["é" + str(i) for i in range(5)]
    frames = []
    for _ in range(n_frames):
        recs = []
        for _ in range(rng.randrange(0, 300)):
            k = rng.choice(keys)
            v = rng.choice([rng.random(), -0.0, 1e300, float("inf"), rng.random() * 1e-300])
            if rng.random() < odd:
                v = rng.choice([rng.randrange(10), True, 2 ** 70 + 1])
            if rng.random() < odd:
                k = rng.choice([rng.randrange(10), (1, 2), 1.0])
            recs.append((k, v))
        frames.append(_frame(recs))
    return frames


@pytest.mark.parametrize("seed", range(6))
def test_float_pairs_merge_as_the_decoded_records_do(seed):
    rng = random.Random(seed)
    frames = _random_frames(rng, 40)
    assert any(f[:1] == b"\xe5" for f in frames)
    with _counting_frame_merges() as merged:
        fast = _items(_merge(frames, True))
    assert merged[0] > 0
    assert fast == _items(_merge(frames, False))


@pytest.mark.parametrize("seed", range(6))
def test_other_records_and_pickled_frames_merge_the_old_way(seed):
    rng = random.Random(100 + seed)
    frames = _random_frames(rng, 40, odd=0.02)
    frames.insert(3, pickle.dumps([("1", 1.5), ("2", 2.5)], 5))
    with _counting_frame_merges() as merged:
        fast = _items(_merge(frames, True))
    assert merged[0] > 0             # the C path ran, and stopped at the odd records
    assert fast == _items(_merge(frames, False))


def test_a_value_that_cannot_be_added_raises_the_same_error():
    frames = [_frame([("a", 1.0), ("b", 2.0)]), _frame([("a", 3.0), ("b", None), ("a", 4.0)])]
    with pytest.raises(TypeError) as slow:
        _merge(frames, False)
    with pytest.raises(TypeError, match=re.escape(str(slow.value))):
        _merge(frames, True)


@contextlib.contextmanager
def _counting_frame_merges():
    """Counts the records _ember_fast.merge_float_frame merged while inside."""
    merged = [0]
    real = _ember_fast.merge_float_frame

    def counting(*args):
        result = real(*args)
        merged[0] += result[0]
        return result
    _ember_fast.merge_float_frame = counting
    try:
        yield merged
    finally:
        _ember_fast.merge_float_frame = real


def test_merge_float_frame_reports_where_it_stopped():
    frame = _frame([("a", 1.0), ("b", 2.0), ("c", 3), ("d", 4.0)])
    data = {}
    consumed, offset, remaining, stopped = _ember_fast.merge_float_frame(data, frame, 0, 0, 64)
    assert (consumed, remaining, stopped) == (2, 2, True)
    assert data == {"a": 1.0, "b": 2.0}
    assert _ember_fast.load_records(frame)[-remaining:] == [("c", 3), ("d", 4.0)]
    # out of room after one record, then resumed where it left off
    data = {"a": 0.5}
    first = _ember_fast.merge_float_frame(data, frame, 0, 0, 1)
    assert first[0] == 1 and first[2] == 3 and first[3] is False
    second = _ember_fast.merge_float_frame(data, frame, first[1], first[2], 64)
    assert (second[0], second[1], second[2], second[3]) == (1, offset, 2, True)
    assert data == {"a": 1.5, "b": 2.0}
    whole = _frame([("x", 1.0), ("y", 2.0)])
    assert _ember_fast.merge_float_frame({}, whole, 0, 0, 64) == (2, len(whole), 0, False)
    assert _ember_fast.merge_float_frame({}, b"\xe5", 0, 0, 64)[3] is True


def test_nan_sums_and_nonascii_keys():
    frames = [_frame([("a", math.nan), ("é", 1.0), ("a", 1.0), ("é", 2.0)]),
              _frame([("a", 3.0), ("b", -0.0), ("b", 0.0)])]
    fast, slow = _items(_merge(frames, True)), _items(_merge(frames, False))
    assert [(k, b) for k, _, b in fast] == [(k, b) for k, _, b in slow]


def test_spills_at_the_same_records():
    rng = random.Random(7)
    frames = _random_frames(rng, 60)
    with _counting_frame_merges() as merged:
        fast = _merge(frames, True, limit=20_000)
    slow = _merge(frames, False, limit=20_000)
    assert merged[0] > 0
    assert fast.spills == slow.spills > 0
    assert _items(fast) == _items(slow)


def test_a_bad_frame_raises_the_decoders_error():
    good = _frame([("a", 1.0), ("b", 2.0)])
    for bad in (good[:-3], good + b"x", b"\xe5\x01\xff"):
        with pytest.raises(ValueError, match="corrupt record frame"):
            _merge([good, bad], False)
        with pytest.raises(ValueError, match="corrupt record frame"):
            _merge([good, bad], True)


def test_a_started_input_is_merged_from_its_records():
    frames = [_frame([("a", 1.0), ("b", 2.0)]), _frame([("a", 3.0)])]
    records = _batches(frames)
    first = next(records)
    assert records.raw() is None
    merger = ExternalMerger(ADD)
    merger.mergeCombiners(records)
    assert first == ("a", 1.0) and list(merger.items()) == [("b", 2.0), ("a", 3.0)]


def test_other_merge_functions_take_the_decoded_path():
    calls = []

    def add(a, b):
        calls.append(1)
        return a + b
    frames = [_frame([("a", 1.0), ("a", 2.0)])]
    merger = _merge(frames, True, agg=Aggregator(identity, add, add))
    assert list(merger.items()) == [("a", 3.0)] and calls == [1]
    assert shuffle._float_sum_frames(_batches(frames), add) is None
