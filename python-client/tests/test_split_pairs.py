"""distinct's map side over split text lines written from the text frames in C
(_ember_fast.SplitPairsWriter, ember.shuffle.SplitTextTail) against the object path
it replaces: the same records per bucket (order and counts) as partition +
dump_records make of split_lines's records, and the same records before the
hand-over as the combine gives.

Like test_fused_text.py, _ember_fast is loaded from build/lib.
"""

import random
from itertools import chain

import pytest

from fast_extension import _ember_fast
from test_fused_text import _leaf

from ember import fused_text, shuffle  # noqa: E402
from ember.fused_text import text_lines  # noqa: E402
from ember.shuffle import SimpleAggregator, combine_locally, keep_first, portable_hash  # noqa: E402

DISTINCT = SimpleAggregator(keep_first)


@pytest.fixture(autouse=True)
def with_c_module(monkeypatch):
    """The C module in both modules whatever imported ember before the extension
    was on the path (they then hold None, as on the driver)."""
    monkeypatch.setattr(fused_text, "_ember_fast", _ember_fast)
    monkeypatch.setattr(shuffle, "_ember_fast", _ember_fast)
ALPHABET = ["1", "22", "abc", " ", " ", "\t", "\n", "\n", "\n", "\r\n", "\r", "\x0b", "\x1c",
            "\x1f", ",", ",", "", "\x00", "x" * 40]


def _frames(rng, count, size=300):
    return [("".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, size)))
             + rng.choice(["", "\n"])).encode() for _ in range(count)]


def _records_by_bucket(taken):
    """{reduce id: [records]} of the writer's frames, in their order."""
    out = {}
    for frame, n in taken:
        records = _ember_fast.load_records(frame[4:])
        assert len(records) == n
        out.setdefault(int.from_bytes(frame[:4], "big"), []).extend(records)
    return out


@pytest.mark.parametrize("sep", [None, ",", " ", "\t"])
def test_the_writer_writes_the_frames_dump_records_makes_of_the_split_records(sep):
    rng = random.Random(11)
    for trial in range(300):
        frames = _frames(rng, rng.randint(1, 3))
        reduce = rng.randint(1, 5)
        frame_bytes = rng.choice([1, 50, 1 << 20])
        writer = _ember_fast.SplitPairsWriter(reduce, sep, frame_bytes)
        tuples, taken = [], []
        for frame in frames:
            assert writer.feed(frame) == len(text_lines(frame))
            tuples += _ember_fast.split_lines(frame, sep)
            taken += writer.frames()
        taken += writer.flush()
        assert writer.flush() == [] and writer.frames() == []
        assert tuples == [tuple(line.split(sep)) for frame in frames for line in text_lines(frame)]
        buckets = {}
        for t in tuples:
            buckets.setdefault(portable_hash(t) % reduce, []).append((t, None))
        assert _records_by_bucket(taken) == buckets
        for frame, n in taken:     # each frame is what dump_records makes of its records
            records = _ember_fast.load_records(frame[4:])
            assert frame == _ember_fast.dump_records(records, frame[:4])
            assert all(type(s) is str for t, _ in records for s in t)
            assert n == 1 or frame_bytes > 1
            assert len(frame) - 4 < frame_bytes + 40 + max(len(f) for f in frames) * 2


def test_a_frame_that_is_not_ascii_is_refused_whole():
    writer = _ember_fast.SplitPairsWriter(2, None, 1 << 20)
    assert writer.feed(b"a b\nc d\n") == 2
    assert writer.feed("x y\n\u00e9 z\n".encode()) == -1
    assert writer.feed(b"a b\xff\n") == -1
    assert writer.frames() == []
    frames = writer.flush()
    assert sum(n for _, n in frames) == 2
    assert sorted(r for rs in _records_by_bucket(frames).values() for r in rs) == \
        [(("a", "b"), None), (("c", "d"), None)]
    assert writer.feed(b"") == 1                      # "" is one empty line: ()
    (frame, n), = writer.flush()
    assert n == 1 and _ember_fast.load_records(frame[4:]) == [((), None)]
    with pytest.raises(TypeError):
        _ember_fast.SplitPairsWriter(2, "ab", 10)
    with pytest.raises(ValueError):
        _ember_fast.SplitPairsWriter(0, None, 10)
    with pytest.raises(ValueError):
        _ember_fast.SplitPairsWriter(2, None, 0)
    with pytest.raises(TypeError):
        writer.feed("text")


def _map_side(frames, wanted):
    """distinct's map side as RDD.map(lambda line: tuple(line.split())).distinct()
    builds it; with wanted, as _write_shuffle reads it: the records, then
    those of the frames it takes over (tail.rest), split the object way."""
    split = fused_text.split_tuples(_leaf(frames), str.split, None)
    assert type(split) is fused_text.SplitTuples
    records = combine_locally(fused_text.paired_with(split, None), DISTINCT, 1 << 30)
    assert type(records) is shuffle.CombinedRecords
    records.split_text_tail.wanted = wanted
    out = list(records)
    rest = records.split_text_tail.rest
    if rest is not None:
        frames_left, lines_of, splitter, sep = rest
        out += [(t, None) for frame in frames_left
                for t in fused_text.split_frame(frame, lines_of, splitter, sep)]
    return out, rest is not None


def _plain(frames):
    lines = chain.from_iterable(text_lines(frame) for frame in frames)
    return list(combine_locally(((tuple(line.split()), None) for line in lines), DISTINCT,
                                1 << 30))


def _whole_frames(text, cut):
    """text cut into frames of whole lines of about cut bytes, as the worker cuts them."""
    frames, start = [], 0
    while start < len(text):
        end = text.rfind(b"\n", start, start + cut) + 1
        end = end if end > start else min(len(text), start + cut)
        frames.append(text[start:end])
        start = end
    return frames


def test_the_map_side_hands_over_the_frames_after_the_one_it_stopped_combining_in():
    rng = random.Random(5)
    # mostly new edges, some repeated within the first records and later
    edges = [f"{i * 7919 % 1000003} {rng.randint(0, 99)}" for i in range(60_000)]
    edges[100:200] = edges[:100]
    edges[40_000:40_100] = edges[:100]
    text = ("\n".join(edges) + "\n").encode()
    for cut in (7_000, 65_536, 150_000):
        whole = _whole_frames(text, cut)
        old, _ = _map_side(whole, wanted=False)
        new, handed = _map_side(whole, wanted=True)
        assert handed
        assert new == old == _plain(whole)
        assert len(new) == len(edges) - 100          # the first repeats are combined away


def test_a_map_side_that_keeps_combining_hands_nothing_over():
    rng = random.Random(6)
    lines = [f"{rng.randint(0, 500)} 1" for _ in range(60_000)]     # mostly repeats
    text = ("\n".join(lines) + "\n").encode()
    frames = _whole_frames(text, 65_536)
    new, handed = _map_side(frames, wanted=True)
    assert not handed
    assert new == _plain(frames)


def test_the_object_path_is_taken_without_the_c_module(monkeypatch):
    monkeypatch.setattr(fused_text, "_ember_fast", None)
    split = fused_text.split_tuples(_leaf([b"a b\n"]), str.split, None)
    assert type(split) is not fused_text.SplitTuples
    assert list(split) == [("a", "b")]


# The whole map side as the worker writes it: worker_runtime._write_shuffle with
# _ember_io.write_frame caught (the C host provides _ember_io; a stub here).

def _worker_runtime(monkeypatch, written):
    import sys
    import types
    stub = types.ModuleType("_ember_io")
    stub.write_frame = lambda data, prefix=b"": written.append(bytes(prefix) + bytes(data))
    monkeypatch.setitem(sys.modules, "_ember_io", stub)
    from ember import worker_runtime
    monkeypatch.setattr(worker_runtime, "io", stub)
    monkeypatch.setattr(worker_runtime, "_ember_fast", _ember_fast)
    return worker_runtime


def _decoded(frames):
    """{reduce id: records in order} of shuffle frames (record frames or pickles)."""
    import pickle
    out = {}
    for frame in frames:
        body = frame[4:]
        records = (_ember_fast.load_records(body) if body[0] == _ember_fast.RECORDS_MAGIC
                   else pickle.loads(body))
        out.setdefault(int.from_bytes(frame[:4], "big"), []).extend(records)
    return out


def _write_map_side(wr, written, frames, reduce, fused):
    """(records counted, frames written, whether the text was handed over) of
    distinct's map side over frames, fused (split_tuples) or the object way."""
    written.clear()
    if fused:
        split = fused_text.split_tuples(_leaf(frames), str.split, None)
        assert type(split) is fused_text.SplitTuples
    else:
        split = (tuple(line.split()) for frame in frames for line in text_lines(frame))
    records = combine_locally(fused_text.paired_with(split, None), DISTINCT, 1 << 30)
    count = wr._write_shuffle(records, portable_hash, reduce)
    tail = getattr(records, "split_text_tail", None)
    return count, list(written), tail is not None and tail.rest is not None


@pytest.mark.parametrize("non_ascii_every", [None, 5_000, 3])
def test_the_written_map_side_has_the_object_paths_records_in_each_bucket(
        monkeypatch, non_ascii_every):
    written = []
    wr = _worker_runtime(monkeypatch, written)
    rng = random.Random(11)
    edges = [f"{i * 7919 % 1000003} {rng.randint(0, 99)}" for i in range(60_000)]
    if non_ascii_every:
        for i in range(0, len(edges), non_ascii_every):
            edges[i] = f"\u00e9{i} x"
    edges[100:200] = edges[:100]
    text = ("\n".join(edges) + "\n").encode()
    for cut, reduce in ((7_000, 3), (65_536, 7), (150_000, 1)):
        frames = _whole_frames(text, cut)
        count, fused, handed = _write_map_side(wr, written, frames, reduce, True)
        plain_count, plain, _ = _write_map_side(wr, written, frames, reduce, False)
        assert handed                      # the C writer (or its refusal) did run
        assert count == plain_count == len(edges) - 100
        assert _decoded(fused) == _decoded(plain)


def test_text_that_is_not_ascii_is_written_in_frames_as_large_as_the_object_paths(
        monkeypatch):
    """Frames refused by the writer go through one shuffle writer, not one each
    (which wrote every bucket's few records out per text frame)."""
    written = []
    wr = _worker_runtime(monkeypatch, written)
    edges = [f"{i * 7919 % 1000003} {i % 977}" for i in range(200_000)]
    for i in range(0, len(edges), 500):
        edges[i] = f"\u00e9 {i}"
    text = ("\n".join(edges) + "\n").encode()
    frames = _whole_frames(text, 20_000)
    reduce = 50
    _, fused, handed = _write_map_side(wr, written, frames, reduce, True)
    _, plain, _ = _write_map_side(wr, written, frames, reduce, False)
    assert handed
    assert _decoded(fused) == _decoded(plain)
    assert len(fused) <= 1.5 * len(plain), (len(fused), len(plain))


def test_a_writer_not_initialised_raises():
    writer = _ember_fast.SplitPairsWriter.__new__(_ember_fast.SplitPairsWriter)
    for call in (lambda: writer.feed(b"a b\n"), writer.frames, writer.flush):
        with pytest.raises(RuntimeError, match="not initialised"):
            call()


def test_a_writer_whose_second_init_failed_is_not_initialised():
    writer = _ember_fast.SplitPairsWriter(2, None, 10)
    assert writer.feed(b"a b\n") == 1
    with pytest.raises(MemoryError):
        writer.__init__(1 << 60, None, 10)          # more buckets than memory
    for call in (lambda: writer.feed(b"a b\n"), writer.frames, writer.flush):
        with pytest.raises(RuntimeError, match="not initialised"):
            call()
    writer.__init__(3, None, 10)                    # and can be made again
    assert writer.feed(b"a b\n") == 1 and len(writer.flush()) == 1
