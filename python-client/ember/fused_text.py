"""Word count's map side counted in C, straight from the text frames (and text
lines split into tuples in C: split_tuples).

``textFile(...).flatMap(lambda l: l.split()).map(lambda w: (w, c)).reduceByKey(add)``
(``split(sep)`` with a one-character separator too) builds, per word, a str, a
list per line, a tuple per word and a dict update with an int addition.
Here the pieces of that chain are iterators of marker types (made by
``_Inputs.leaf``, ``RDD.flatMap`` and ``RDD.map``; they iterate exactly as the
plain ``chain`` and ``zip`` they subclass), and ``combine_locally`` hands an
untouched chain of them to :func:`count_words`, which feeds the raw frames to
``_ember_fast.WordCounts``.

The result is the one the Python loop gives, in the same order: the same keys
in first-seen order with the same values (``c`` for a word seen once, then
``c + c + ...``, which for an int ``c`` is ``c * n``), flushed at the same points
(the size tracker is asked at the same record counts, about a table that
reports the same length, ``sys.getsizeof`` and sampled items as the dict), and
the input metrics count the same lines. Frames with non-ASCII bytes are split
by Python (``_text_lines`` then ``str.split``) and only counted in C.
"""

from __future__ import annotations

import inspect
from itertools import chain, repeat
from typing import Any, Callable, Iterator, Optional

try:        # inside ember-pyexec (services/pyexec/pyexec_lines.c)
    import _ember_fast
except ImportError:  # on the driver
    _ember_fast = None


def text_lines(frame: bytes) -> list[str]:
    """Splits whole lines (Hadoop semantics: \\n, \\r\\n) into str records."""
    text = frame.decode("utf-8", "replace")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


def line_count(frame: bytes) -> int:
    """len(text_lines(frame)) without making the lines (a \\n byte is always a
    newline in UTF-8, also where decoding replaces invalid bytes)."""
    return frame.count(b"\n") + (not frame.endswith(b"\n"))


class TextLines(chain):
    """The lines of a text input (``chain.from_iterable`` of its decoded frames).

    ``source(raw=True)`` makes a generator of the input's raw frames that keeps
    the input's bookkeeping (END, record counts) as the line reader would."""

    batches: Iterator[list]
    source: Callable[..., Iterator[Any]]
    lines_of: Callable[[bytes], list]       # a frame's lines, as the line reader makes them

    def raw_frames(self) -> Optional[Iterator[bytes]]:
        """The frames undecoded, when no line was read yet (None otherwise)."""
        if inspect.getgeneratorstate(self.batches) != inspect.GEN_CREATED:
            return None
        self.batches.close()
        return self.source(raw=True)


class SplitEach(chain):
    """``chain.from_iterable(map(methodcaller("split"[, sep]), lines))``."""

    lines: Any
    sep: Optional[str]
    splitter: Callable[[str], list]


class PairedWith(zip):
    """``zip(records, repeat(constant))``: ``map(lambda w: (w, constant))``."""

    records: Any
    constant: Any


def split_each(lines: Any, splitter: Callable[[str], list], sep: Optional[str]) -> SplitEach:
    result = SplitEach.from_iterable(map(splitter, lines))
    result.lines, result.sep, result.splitter = lines, sep, splitter
    return result


def _countable_sep(sep: Any) -> bool:
    return sep is None or (type(sep) is str and len(sep) == 1 and sep < "\x80"
                           and sep not in "\r\n")


def word_count_source(iterator: Any) -> Optional[tuple]:
    """(frames, lines_of, sep, splitter, constant) when iterator is an untouched
    text -> split -> (w, constant) chain that WordCounts can count; else None."""
    if type(iterator) is not PairedWith or type(iterator.constant) is not int:
        return None
    words = iterator.records
    if type(words) is not SplitEach or not _countable_sep(words.sep):
        return None
    lines = words.lines
    if type(lines) is not TextLines:
        return None
    frames = lines.raw_frames()
    if frames is None:
        return None
    return frames, lines.lines_of, words.sep, words.splitter, iterator.constant


def paired_with(records: Any, constant: Any) -> PairedWith:
    result = PairedWith(records, repeat(constant))
    result.records, result.constant = records, constant
    return result


def count_words(fast: Any, source: tuple, limit: int, tracker: Any,
                check_every: int) -> Iterator[list]:
    """combine_locally's loop for the recognised chain: lists of (word, count)
    records, one whenever the size estimate passes limit at a check (one every
    check_every words, as the C combine loop returns) and one at the end."""
    frames, lines_of, sep, splitter, constant = source
    counts = fast.WordCounts(sep, constant)
    room = tracker.records_to_check(limit, check_every)
    batch = room
    for frame in frames:
        if not counts.feed(frame):
            counts.feed_words(list(chain.from_iterable(map(splitter, lines_of(frame)))))
        while True:
            room -= counts.count(room)
            if room:
                break                    # this frame is used up before the next check
            if tracker.update(counts, batch) > limit:
                yield counts.items()
                counts.clear()
                tracker.reset()
            room = batch = tracker.records_to_check(limit, check_every)
    yield counts.items()


class SplitTuples(chain):
    """``map(lambda line: tuple(line.split(sep)), lines)`` of an untouched text input,
    split a frame at a time by ``_ember_fast.split_lines``; ``state`` knows the
    frame being read, so that a consumer may take the rest of the input as it is
    (take_rest)."""

    state: "_SplitState"

    def take_rest(self) -> tuple[Iterator[tuple], Iterator[bytes], Callable[[bytes], list],
                                 Callable[[str], list], Optional[str]]:
        """(the tuples of the current frame not read yet, the raw frames after
        it, lines_of, splitter, sep). Reading this chain any further after
        this would skip those frames: the caller reads them instead."""
        state = self.state
        return state.current, state.frames, state.lines_of, state.splitter, state.sep


class _SplitState:
    __slots__ = ("frames", "current", "lines_of", "splitter", "sep")

    def __init__(self, frames: Iterator[bytes], lines_of: Callable[[bytes], list],
                 splitter: Callable[[str], list], sep: Optional[str]) -> None:
        self.frames, self.lines_of, self.splitter, self.sep = frames, lines_of, splitter, sep
        self.current: Iterator[tuple] = iter(())


def split_tuples(lines: Any, splitter: Callable[[str], list],
                 sep: Optional[str]) -> Iterator[tuple]:
    """``map(lambda line: tuple(line.split(sep)), lines)`` (splitter: the C callable of the
    split call). An untouched text input's ASCII frames are cut into lines and fields in C
    (``_ember_fast.split_lines``), the same tuples of the same strs without a str per
    line, a list per line or a Python call; other frames and inputs go through
    ``map(tuple, map(splitter, ...))``. The input counts the same lines either way."""
    if _ember_fast is not None and type(lines) is TextLines and _countable_sep(sep):
        frames = lines.raw_frames()
        if frames is not None:
            state = _SplitState(frames, lines.lines_of, splitter, sep)
            result = SplitTuples.from_iterable(_split_frames(state))
            result.state = state
            return result
    return map(tuple, map(splitter, lines))


def split_frame(frame: bytes, lines_of: Callable[[bytes], list], splitter: Callable[[str], list],
                sep: Optional[str]) -> list:
    """A frame's tuples: split in C when it is ASCII, else by Python."""
    tuples = _ember_fast.split_lines(frame, sep)
    return tuples if tuples is not None else list(map(tuple, map(splitter, lines_of(frame))))


def _split_frames(state: _SplitState) -> Iterator[Iterator[tuple]]:
    # Iterators of the frames' lists, held by state: chain reads one to its
    # end before it asks for the next frame, so state.frames is never ahead.
    for frame in state.frames:
        state.current = iter(split_frame(frame, state.lines_of, state.splitter, state.sep))
        yield state.current
