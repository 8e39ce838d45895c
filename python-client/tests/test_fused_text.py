"""Word count counted from the text frames in C (ember.fused_text, _ember_fast.WordCounts)
against the loops it replaces: the same records in the same order, with the same
types, flushed at the same points, and the same line counts.

Like test_fast_loops.py, _ember_fast is loaded from build/lib.
"""

import operator
import random
from itertools import chain, repeat

import pytest

from fast_extension import _ember_fast

from ember import fused_text, shuffle, simple_functions  # noqa: E402
from ember.fused_text import TextLines, line_count, text_lines  # noqa: E402
from ember.shuffle import Aggregator, combine_locally, identity  # noqa: E402

REDUCE_BY_ADD = Aggregator(identity, operator.add, operator.add)   # reduceByKey(add)


def _leaf(frames):
    """A text input as worker_runtime._Inputs.leaf makes it, over these frames."""
    def batches(raw=False):
        for frame in frames:
            yield frame if raw else text_lines(frame)
    first = batches()
    lines = TextLines.from_iterable(first)
    lines.batches, lines.source, lines.lines_of = first, batches, text_lines
    return lines


def _recognised(frames, f, constant):
    """What RDD.flatMap(f).map(lambda w: (w, constant)) hands the map-side combine."""
    sep = simple_functions.split_call(f)
    assert sep is not None
    split = fused_text.split_each(_leaf(frames), simple_functions.as_callable(f), sep[0])
    return fused_text.paired_with(split, constant)


def _plain(frames, f, constant):
    """The same records through plain chain and zip (nothing recognised)."""
    lines = chain.from_iterable(text_lines(frame) for frame in frames)
    return zip(chain.from_iterable(map(f, lines)), repeat(constant))


def _typed(records):
    return [(type(k), k, type(v), v) for k, v in records]


def _combine(records, limit, fast):
    saved = shuffle._ember_fast
    shuffle._ember_fast = fast
    try:
        return _typed(combine_locally(records, REDUCE_BY_ADD, limit))
    finally:
        shuffle._ember_fast = saved


def _random_frames(rng, count):
    alphabet = ["a", "b", "c", "ab", "ba", "abc", " ", " ", " ", "\t", "\n", "\n", "\r\n",
                "\r", "\x0b", "\x0c", "\x1c", "\x1f", ",", "", "\x00", "x\x85y", "é", "\u3000"]
    frames = []
    for _ in range(count):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        data = text.encode("utf-8")
        if rng.random() < 0.1:
            data += b"\xff\xfe"           # invalid UTF-8: decoded with replacement
        if rng.random() < 0.7:
            data += b"\n"
        frames.append(data)
    return frames


SPLITS = [lambda line: line.split(), lambda line: line.split(" "),
          lambda line: line.split("\t"), lambda line: line.split(",")]


@pytest.mark.parametrize("f", SPLITS)
@pytest.mark.parametrize("constant", [1, 3, -2, 2 ** 70])
def test_counts_equal_the_loops_they_replace(f, constant):
    rng = random.Random(5)
    frames = _random_frames(rng, 200)
    fast = _combine(_recognised(frames, f, constant), 1 << 30, _ember_fast)
    assert fast == _combine(_plain(frames, f, constant), 1 << 30, _ember_fast)
    assert fast == _combine(_plain(frames, f, constant), 1 << 30, None)
    assert len(fast) > 10


@pytest.mark.parametrize("limit", [2048, 20_000, 300_000])
def test_flushes_at_the_same_records_as_the_loops(limit):
    rng = random.Random(9)
    vocabulary = [f"w{i}" for i in range(30_000)]
    frames = [(" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 3000))) + "\n").encode()
              for _ in range(60)]
    f = SPLITS[0]
    fast = _combine(_recognised(frames, f, 1), limit, _ember_fast)
    slow = _combine(_plain(frames, f, 1), limit, _ember_fast)
    assert fast == slow
    assert len(fast) > len({k for _, k, _, _ in fast})      # some words flushed twice


def test_the_fast_path_is_taken(monkeypatch):
    calls = []
    real = fused_text.count_words
    monkeypatch.setattr(fused_text, "count_words", lambda *a: calls.append(1) or real(*a))
    frames = [b"a b a\n"]
    assert _combine(_recognised(frames, SPLITS[0], 1), 1 << 30, _ember_fast) == _typed(
        [("a", 2), ("b", 1)])
    assert calls == [1]


def test_not_taken_when_lines_were_read_or_types_differ():
    frames = [b"a b a\n", b"c\n"]
    lines = _leaf(frames)
    next(lines)                                  # a line read: the frames are not untouched
    split = fused_text.split_each(lines, str.split, None)
    assert fused_text.word_count_source(fused_text.paired_with(split, 1)) is None
    split = fused_text.split_each(_leaf(frames), str.split, None)
    assert fused_text.word_count_source(fused_text.paired_with(split, True)) is None   # bool
    assert fused_text.word_count_source(fused_text.paired_with(split, 1.0)) is None    # float
    split = fused_text.split_each(_leaf(frames), str.split, "ab")       # not one character
    assert fused_text.word_count_source(fused_text.paired_with(split, 1)) is None


def test_bool_and_float_constants_take_the_general_loop_and_count_right():
    frames = [b"a b a\n"]
    for constant in (True, 1.5):
        fast = _combine(_recognised(frames, SPLITS[0], constant), 1 << 30, _ember_fast)
        assert fast == _combine(_plain(frames, SPLITS[0], constant), 1 << 30, None)
        assert fast[1][2] is type(constant)        # b, seen once, keeps the constant itself


def test_ascii_whitespace_is_str_split_whitespace():
    for code in range(128):
        frame = f"a{chr(code)}b".encode()
        counts = _ember_fast.WordCounts(None, 1)
        assert counts.feed(frame)
        counts.count(10)
        assert [k for k, _ in counts.items()] == frame.decode().split(), code


def test_line_count_is_the_number_of_lines():
    rng = random.Random(2)
    for frame in _random_frames(rng, 300) + [b"", b"\n", b"\r\n", b"a", b"a\n\n"]:
        assert line_count(frame) == len(text_lines(frame))


def test_word_counts_rejects_what_it_cannot_count():
    with pytest.raises(ValueError):
        _ember_fast.WordCounts("\n", 1)
    with pytest.raises(ValueError):
        _ember_fast.WordCounts("é", 1)
    with pytest.raises(TypeError):
        _ember_fast.WordCounts(None, 1.0)
    counts = _ember_fast.WordCounts(None, 1)
    assert counts.feed(b"caf\xc3\xa9") is False                # non-ASCII: split by Python
    counts.feed_words(["café", "x", "café"])
    assert counts.count(2) == 2 and counts.count(5) == 1
    assert counts.items() == [("café", 2), ("x", 1)]
    assert list(counts.keys) == ["café", "x"] and len(counts) == 2
    assert counts.sample(1, 1) == [("café", 2), ("x", 1)]
    counts.clear()
    assert counts.items() == [] and len(counts) == 0


TUPLE_SPLITS = [(lambda line: tuple(line.split()), None),
                (lambda line: tuple(line.split(" ")), " "),
                (lambda line: tuple(line.split("\t")), "\t"),
                (lambda line: tuple(line.split(",")), ",")]


def _typed_fields(records):
    return [(type(r), [(type(x), x) for x in r]) for r in records]


@pytest.mark.parametrize("f, sep", TUPLE_SPLITS)
def test_split_tuples_equal_the_lambda(f, sep, monkeypatch):
    """textFile(...).map(lambda line: tuple(line.split(sep))): ASCII frames split in C
    (_ember_fast.split_lines), others by Python; the records are the lambda's, with the
    same types."""
    rng = random.Random(11)
    frames = _random_frames(rng, 300) + [b"", b"\n", b"\r\n", b"a", b"a\n\n", b" a  b \r\n"]
    splitter, recognised_sep = simple_functions.tuple_split_call(f)
    assert recognised_sep == sep
    calls = []
    real = _ember_fast.split_lines
    monkeypatch.setattr(fused_text, "_ember_fast", type("Fast", (), {
        "split_lines": staticmethod(lambda *a: calls.append(1) or real(*a))}))
    leaf = _leaf(frames)
    got = list(fused_text.split_tuples(leaf, splitter, sep))
    want = [f(line) for line in chain.from_iterable(text_lines(frame) for frame in frames)]
    assert _typed_fields(got) == _typed_fields(want)
    assert len(calls) == len(frames) and len(want) > 300
    monkeypatch.setattr(fused_text, "_ember_fast", None)         # on the driver
    assert list(fused_text.split_tuples(_leaf(frames), splitter, sep)) == want


def test_split_tuples_of_read_lines_or_other_inputs_use_the_python_calls(monkeypatch):
    monkeypatch.setattr(fused_text, "_ember_fast", _ember_fast)
    splitter, sep = simple_functions.tuple_split_call(lambda line: tuple(line.split()))
    lines = _leaf([b"a b\n", b"c\n"])
    next(lines)                                  # a line read: the frames are not untouched
    assert list(fused_text.split_tuples(lines, splitter, sep)) == [("c",)]
    assert list(fused_text.split_tuples(iter(["x y"]), splitter, sep)) == [("x", "y")]
    with pytest.raises(AttributeError, match="split"):
        list(fused_text.split_tuples(iter([1]), splitter, sep))      # the lambda's error
    splitter, sep = simple_functions.tuple_split_call(lambda line: tuple(line.split("ab")))
    assert list(fused_text.split_tuples(_leaf([b"1ab2\n"]), splitter, sep)) == [("1", "2")]


def test_split_lines_is_text_lines_then_str_split():
    rng = random.Random(12)
    alphabet = ["a", "b", " ", "\t", "\r", "\n", ",", "\x1c", "\x0b", "\x0c", "\x00", "xyz",
                "\r\n", "  ", "\x85", "é"]
    for _ in range(20_000):
        frame = "".join(rng.choice(alphabet) for _ in range(rng.randrange(30))).encode()
        for sep in (None, ",", " ", "a", "\t"):
            got = _ember_fast.split_lines(frame, sep)
            if not frame.isascii():
                assert got is None
                continue
            want = [tuple(line.split(sep)) for line in text_lines(frame)]
            assert _typed_fields(got) == _typed_fields(want), (frame, sep)
    many = b"1 2 3 4 5 6 7 8 9 10 11\n"                      # more fields than kept inline
    assert _ember_fast.split_lines(many, None) == [tuple(many.decode().split())]
    for bad in ("\n", "\r", "ab", "é", 1):
        with pytest.raises(TypeError):
            _ember_fast.split_lines(b"a\n", bad)
