"""Partitioning of (key, value) records, and the memory-bounded shuffle reduce side.

A reduce task merges what the map tasks sent it: per-key combiners
(``reduceByKey``, ``combineByKey``), per-key value lists (``groupByKey``, joins)
or one sorted sequence (``sortByKey``). Those structures stay within the task's
memory limit, ``spark.python.worker.memory`` (PySpark's name and format, default
``512m``), which the driver puts into every job's properties:

* :class:`ExternalMerger` keeps a dict of combiners; when its estimated size
  passes the limit it partitions the dict by key hash into 59 spill files in a
  temporary folder (``tempfile.mkdtemp`` under ``spark.local.dir`` or the
  worker's temporary folder), then merges the files one by one. A file that is
  itself too big is merged by a second merger with another hash, recursively.
* :class:`ExternalGroupBy` does the same for value lists, written in chunks; a
  spill file too big to group in memory is sorted by key hash on disk and
  grouped in one pass, and a key whose values pass the limit keeps them in an
  :class:`ExternalList` on disk.
* :class:`ExternalSorter` sorts with sorted runs on disk merged lazily.

Sizes are estimates: ``sys.getsizeof`` of sampled records, extrapolated (as
Spark's SizeTracker does), so the limit holds within a small factor, not to
the byte.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import operator
import os
import pickle
import shutil
import struct
import sys
import tempfile
from collections import deque
from typing import IO, Any, Callable, Iterable, Iterator, Optional

from ember import fused_text

try:        # inside ember-pyexec: the per-record loops in C (services/pyexec/pyexec_fast.c)
    import _ember_fast
except ImportError:  # on the driver
    _ember_fast = None

PICKLE_PROTOCOL = 5
DEFAULT_WORKER_MEMORY = "512m"
SPILL_PARTITIONS = 59            # as PySpark's ExternalMerger
# groupByKey's reduce side groups str and bytes keys in _ember_fast.PairGroups
# (tests turn it off to hold it against _ember_fast.group's dict loop).
_PAIR_GROUPS = True
_MAX_MERGE_DEPTH = 4             # recursive re-partitioning of an oversized spill file
_CHUNK_BYTES = 256 * 1024        # values of one key are spilled in chunks of this size
_FRAME_RECORDS = 1024
_CHECK_MASK = 63                 # dict sizes are checked every 64 updates
_HEADER = struct.Struct(">i")


# ---- partitioning --------------------------------------------------------------------

def portable_hash(x: Any) -> int:
    """PySpark's ``portable_hash``: ``hash()`` with a fixed rule for None and tuples.

    Workers run with hash seed 0, so str keys land in the same partition on
    every worker. The driver's interpreter has a random hash seed: never
    partition on the driver with this.

    Examples
    --------
    >>> portable_hash(None)
    0
    >>> portable_hash((None, 1)) & 0xffffffff
    219750521
    """
    if x is None:
        return 0
    if isinstance(x, tuple):
        h = 0x345678
        for i in x:
            h ^= portable_hash(i)
            h *= 1000003
            h &= sys.maxsize
        h ^= len(x)
        if h == -1:
            h = -2
        return int(h)
    return hash(x)


class Partitioner:
    """Sends key k to partition ``partitionFunc(k) % numPartitions``.

    Two partitioners are equal when they have the same number of partitions
    and the same function object, as in PySpark: then ``partitionBy`` is a
    no-op and co-partitioned RDDs are joined without a new shuffle.

    Examples
    --------
    >>> Partitioner(4, portable_hash) == Partitioner(4, portable_hash)
    True
    >>> Partitioner(4, portable_hash)(6)
    2
    """

    def __init__(self, numPartitions: int, partitionFunc: Callable[[Any], int]) -> None:
        if numPartitions < 1:
            raise ValueError(f"numPartitions must be at least 1, got {numPartitions}")
        self.numPartitions = numPartitions
        self.partitionFunc = partitionFunc

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Partitioner) and other.numPartitions == self.numPartitions
                and other.partitionFunc == self.partitionFunc)

    def __hash__(self) -> int:
        return hash((self.numPartitions, id(self.partitionFunc)))

    def __call__(self, k: Any) -> int:
        return self.partitionFunc(k) % self.numPartitions

    def __repr__(self) -> str:
        name = getattr(self.partitionFunc, "__name__", type(self.partitionFunc).__name__)
        return f"Partitioner({self.numPartitions}, {name})"


class Aggregator:
    """The three functions of ``combineByKey``, as PySpark's ``shuffle.Aggregator``.

    Never changed once made: tasks keep one holding stateless functions
    across tasks (ember.function_cache).

    Examples
    --------
    >>> agg = Aggregator(lambda v: [v], lambda c, v: c + [v], lambda a, b: a + b)
    >>> agg.mergeValue(agg.createCombiner(1), 2)
    [1, 2]
    """

    def __init__(self, createCombiner: Callable[[Any], Any], mergeValue: Callable[[Any, Any], Any],
                 mergeCombiners: Callable[[Any, Any], Any]) -> None:
        self.createCombiner = createCombiner
        self.mergeValue = mergeValue
        self.mergeCombiners = mergeCombiners


class RangePartitioner:
    """sortByKey's partition function: where keyfunc(key) falls among the sorted
    bounds (bisect_left), counted from the last partition when descending.

    Never changed once made. Inside ember-pyexec, ``_ember_fast.partition``
    computes exactly this class in C (services/pyexec/pyexec_sort.c: the same
    comparisons, in the same order, as bisect); keyfunc None is the key itself.

    Examples
    --------
    >>> part = RangePartitioner((10, 20), True, 3)
    >>> [part(k) for k in (5, 10, 15, 25)]
    [0, 0, 1, 2]
    >>> [RangePartitioner((10, 20), False, 3)(k) for k in (5, 25)]
    [2, 0]
    """

    __slots__ = ("bounds", "ascending", "numPartitions", "keyfunc")

    def __init__(self, bounds: tuple, ascending: bool, numPartitions: int,
                 keyfunc: Optional[Callable[[Any], Any]] = None) -> None:
        self.bounds = bounds
        self.ascending = ascending
        self.numPartitions = numPartitions
        self.keyfunc = keyfunc

    def __call__(self, k: Any) -> int:
        p = bisect.bisect_left(self.bounds, k if self.keyfunc is None else self.keyfunc(k))
        return p if self.ascending else self.numPartitions - 1 - p


def first_item(record: Any) -> Any:
    """record[0]: sortByKey's sort key without a keyfunc. ExternalSorter sorts
    with itemgetter(0) in its place (a call in C), and radix sorts in C a run
    of tuples whose first items are all ints in 64 bits (the same order)."""
    return record[0]


_ITEM_0 = operator.itemgetter(0)


def identity(x: Any) -> Any:
    """The combiner of a value that is its own combiner (``reduceByKey``): the
    C loops recognise this function and skip calling it."""
    return x


def keep_first(x: Any, _: Any) -> Any:
    """distinct's merge: the value kept first (the C loops keep it without a call)."""
    return x


def _c_merge(merge: Callable[[Any, Any], Any]) -> Any:
    """merge as the C loops take it: None for keep_first."""
    return None if merge is keep_first else merge


class SimpleAggregator(Aggregator):
    """An Aggregator whose combiner is the value itself (``reduceByKey``)."""

    def __init__(self, combiner: Callable[[Any, Any], Any]) -> None:
        super().__init__(identity, combiner, combiner)


# ---- task configuration --------------------------------------------------------------

def task_memory_limit() -> int:
    """Bytes the shuffle structures of the running task may hold.

    Read from the job property ``spark.python.worker.memory`` (the driver
    sends it from SparkConf); ``512m`` outside a task or when unset.

    Examples
    --------
    >>> task_memory_limit() == 512 * 1024 * 1024   # on the driver
    True
    """
    from ember.conf import parse_size
    from ember.taskcontext import TaskContext
    tc = TaskContext.get()
    value = tc.getLocalProperty("spark.python.worker.memory") if tc is not None else None
    return parse_size(value or DEFAULT_WORKER_MEMORY, default_unit="m")


def local_dir() -> str:
    """The folder for spill files: the first usable ``spark.local.dir`` entry, else TMPDIR."""
    from ember.taskcontext import TaskContext
    tc = TaskContext.get()
    value = tc.getLocalProperty("spark.local.dir") if tc is not None else None
    for entry in (value or "").split(","):
        entry = entry.strip()
        if entry and os.path.isdir(entry) and os.access(entry, os.W_OK):
            return entry
    return tempfile.gettempdir()


_metrics: dict[int, dict[str, int]] = {}


def _record_spill(nbytes: int) -> None:
    from ember.taskcontext import TaskContext
    tc = TaskContext.get()
    key = tc.taskAttemptId() if tc is not None else -1
    entry = _metrics.setdefault(key, {"spills": 0, "spilledBytes": 0})
    entry["spills"] += 1
    entry["spilledBytes"] += nbytes
    while len(_metrics) > 64:
        del _metrics[next(iter(_metrics))]


def task_spill_metrics() -> dict[str, int]:
    """``{"spills", "spilledBytes"}`` written so far by the running task (0 when none).

    Examples
    --------
    >>> sorted(task_spill_metrics())
    ['spilledBytes', 'spills']
    """
    from ember.taskcontext import TaskContext
    tc = TaskContext.get()
    key = tc.taskAttemptId() if tc is not None else -1
    return dict(_metrics.get(key, {"spills": 0, "spilledBytes": 0}))


# ---- size estimates --------------------------------------------------------------------

def _deep_size(obj: Any, depth: int = 0) -> int:
    """Approximate bytes held by obj and what it contains (containers are sampled)."""
    size = sys.getsizeof(obj, 64)
    if depth >= 4:
        return size
    if isinstance(obj, (tuple, list, set, frozenset)):
        n = len(obj)
        if n:
            sample = list(itertools.islice(obj, 16))
            size += sum(_deep_size(x, depth + 1) for x in sample) * n // len(sample)
    elif isinstance(obj, dict):
        n = len(obj)
        if n:
            sample = list(itertools.islice(obj.items(), 16))
            size += sum(_deep_size(k, depth + 1) + _deep_size(v, depth + 1)
                        for k, v in sample) * n // len(sample)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        size += _deep_size(vars(obj), depth + 1)
    return size


class _Sizer:
    """Average size of the records it is shown, measured on a sample of them."""

    __slots__ = ("seen", "sampled", "total")
    SAMPLES_PER_BATCH = 8

    def __init__(self) -> None:
        self.seen = 0
        self.sampled = 0
        self.total = 0

    def size(self, obj: Any) -> int:
        """The estimated size of one more record like obj."""
        self.seen += 1
        if self.sampled < 16 or self.seen % 32 == 0:
            self.total += _deep_size(obj)
            self.sampled += 1
        return self.total // self.sampled

    def size_of_batch(self, records: list, start: int) -> int:
        """The estimated bytes of records[start:], a batch of records that
        follow those it was shown: the first 16 ever seen are measured, then
        about SAMPLES_PER_BATCH spread over each batch, so the records in
        between cost no Python call (size() per record cost ExternalSorter
        more than its sort)."""
        count = len(records) - start
        if count <= 0:
            return 0
        first = min(count, max(0, 16 - self.sampled))
        picks = list(range(start, start + first))
        rest = count - first
        if rest > 0:
            step = max(1, rest // self.SAMPLES_PER_BATCH)
            picks.extend(range(start + first, start + count, step))
        for i in picks:
            self.total += _deep_size(records[i])
        self.sampled += len(picks)
        self.seen += count
        return count * (self.total // self.sampled)

    @property
    def average(self) -> int:
        return self.total // self.sampled if self.sampled else 64


def _dict_size(d: Any) -> int:
    """Estimated bytes of dict d, or of the dict a _ember_fast.WordCounts
    stands for (its ``keys`` dict has the same keys, ``sample`` gives the same
    items as the slices below)."""
    plain = type(d) is dict
    n = len(d)
    base = sys.getsizeof(d if plain else d.keys)
    if n == 0:
        return base
    # The oldest and the newest entries: reaching evenly spaced ones would
    # walk the whole dict at every measurement.
    last = min(16, n - 16) if n > 16 else 0
    if plain:
        sample = list(itertools.islice(d.items(), 16))
        if last:
            sample += itertools.islice(reversed(d.items()), last)
    else:
        sample = d.sample(16, last)
    per_entry = sum(_deep_size(k) + _deep_size(v) for k, v in sample) // len(sample)
    return base + n * per_entry


class _DictSizeTracker:
    """Estimated size of a dict that is updated in place (Spark's SizeTracker).

    The dict is measured after geometrically spaced numbers of updates; in
    between, the size grows by the bytes-per-update rate of the last two
    measurements.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.updates = 0
        self.next_sample = 1
        self.samples: deque[tuple[int, int]] = deque(maxlen=2)
        self.rate = 0.0

    def update(self, d: dict, count: int = 1) -> float:
        """The estimated size after count more updates of d."""
        self.updates += count
        if self.updates >= self.next_sample or not self.samples:
            self.samples.append((self.updates, _dict_size(d)))
            if len(self.samples) == 2:
                (u0, b0), (u1, b1) = self.samples
                self.rate = max(0.0, (b1 - b0) / max(1, u1 - u0))
            self.next_sample = math.ceil(self.updates * 1.2) + 1
        last_updates, last_bytes = self.samples[-1]
        return last_bytes + self.rate * (self.updates - last_updates)

    def records_to_check(self, limit: int, step: int) -> int:
        """Updates (a multiple of step) until, when update(d, step) is called
        every step updates, one would next measure d or return more than
        limit. The calls in between would change nothing but the count, so
        update(d, that many) returns what that call would."""
        if not self.samples:
            return step
        last_updates, last_bytes = self.samples[-1]
        k = max(1, -(-(self.next_sample - self.updates) // step))

        def over(j: int) -> bool:      # the expression update() evaluates
            return last_bytes + self.rate * (self.updates + j * step - last_updates) > limit
        if self.rate > 0:
            guess = int((limit - last_bytes) / self.rate + last_updates - self.updates) // step
            j = min(k, max(1, guess))
            while j > 1 and over(j - 1):
                j -= 1
            while j < k and not over(j):
                j += 1
            k = j
        return k * step


# ---- spill files -----------------------------------------------------------------------

def _dump_frames(fh: IO[bytes], records: Iterable[Any], batch: int = _FRAME_RECORDS) -> int:
    """Writes records as length-prefixed pickled lists; returns the bytes written."""
    written = 0
    it = iter(records)
    while True:
        chunk = list(itertools.islice(it, batch))
        if not chunk:
            return written
        data = pickle.dumps(chunk, PICKLE_PROTOCOL)
        fh.write(_HEADER.pack(len(data)))
        fh.write(data)
        written += len(data) + 4


def _load_frames(path: str) -> Iterator[Any]:
    with open(path, "rb", 1 << 16) as fh:
        yield from _read_stream(fh)


def _read_stream(fh: IO[bytes]) -> Iterator[Any]:
    while True:
        header = fh.read(4)
        if len(header) < 4:
            return
        (length,) = _HEADER.unpack(header)
        yield from pickle.loads(fh.read(length))


def _pread_frames(fd: int, end: int) -> Iterator[Any]:
    """Records of frames [0, end) of an open file, without moving its position."""
    offset = 0
    while offset < end:
        (length,) = _HEADER.unpack(os.pread(fd, 4, offset))
        data = os.pread(fd, length, offset + 4)
        offset += 4 + length
        yield from pickle.loads(data)


# ---- spillable containers ---------------------------------------------------------------

class MemoryBudget:
    """Memory shared by several ExternalLists: past the limit, all of them spill.

    Examples
    --------
    >>> budget = MemoryBudget(1 << 20)
    >>> a, b = ExternalList(budget=budget), ExternalList(budget=budget)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._members: list["ExternalList"] = []

    def join(self, member: "ExternalList") -> None:
        self._members.append(member)

    def charge(self, nbytes: int) -> None:
        self.used += nbytes
        if self.used > self.limit:
            for member in self._members:
                member._spill()
            self.used = 0


class ExternalList:
    """An append-only list that keeps at most its memory budget in memory.

    Past the budget the records move to an unlinked temporary file; iterating
    reads the file, then the records still in memory. It can be iterated many
    times and pickles as a plain list.

    Parameters
    ----------
    memory_limit : int, optional
        Bytes kept in memory (default: the task's ``spark.python.worker.memory``).
    budget : MemoryBudget, optional
        A budget shared with other lists instead of a limit of its own.

    Examples
    --------
    >>> values = ExternalList(memory_limit=1024)
    >>> values.extend(range(10_000))
    >>> len(values), sum(values)
    (10000, 49995000)
    """

    def __init__(self, values: Iterable[Any] = (), memory_limit: Optional[int] = None,
                 budget: Optional[MemoryBudget] = None, spill_dir: Optional[str] = None) -> None:
        self._memory: list[Any] = []
        self._used = 0
        self._sizer = _Sizer()
        self._file: Optional[IO[bytes]] = None
        self._disk_bytes = 0
        self._disk_count = 0
        self._dir = spill_dir
        self._budget = budget
        self._limit = memory_limit if memory_limit is not None else task_memory_limit()
        if budget is not None:
            budget.join(self)
        self.extend(values)

    def append(self, value: Any) -> None:
        self._memory.append(value)
        size = self._sizer.size(value)
        if self._budget is not None:
            self._budget.charge(size)
            return
        self._used += size
        if self._used > self._limit:
            self._spill()

    def extend(self, values: Iterable[Any]) -> None:
        for value in values:
            self.append(value)

    def _spill(self) -> None:
        if not self._memory:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="ember-list-", dir=self._dir or local_dir())
        self._file.seek(0, os.SEEK_END)
        batch = max(1, min(_FRAME_RECORDS, _CHUNK_BYTES // max(1, self._sizer.average)))
        written = _dump_frames(self._file, self._memory, batch)
        self._file.flush()
        self._disk_bytes += written
        self._disk_count += len(self._memory)
        self._memory = []
        self._used = 0
        _record_spill(written)

    @property
    def spilled(self) -> bool:
        """True once some records live on disk."""
        return self._file is not None

    def __len__(self) -> int:
        return self._disk_count + len(self._memory)

    def __iter__(self) -> Iterator[Any]:
        if self._file is not None:
            yield from _pread_frames(self._file.fileno(), self._disk_bytes)
        yield from self._memory

    def __reduce__(self) -> tuple:
        return (list, (list(self),))

    def __repr__(self) -> str:
        return f"ExternalList({len(self)} records, {self._disk_count} on disk)"


class ExternalSorter:
    """Sorts more records than fit in memory.

    Records are sorted in memory up to the limit, written as sorted runs to
    temporary files, and merged lazily (stable, like ``sorted``).

    Examples
    --------
    >>> sorter = ExternalSorter(memory_limit=4096)
    >>> out = list(sorter.sorted(iter(range(20000, 0, -1))))
    >>> out[:3], len(out)
    ([1, 2, 3], 20000)
    """

    MAX_OPEN_RUNS = 32

    def __init__(self, memory_limit: Optional[int] = None, spill_dir: Optional[str] = None) -> None:
        self.memory_limit = int(memory_limit if memory_limit is not None else task_memory_limit())
        self._dir = spill_dir

    BATCH = 4096                     # records read (by islice, in C) between memory checks

    def sorted(self, iterator: Iterable[Any], key: Optional[Callable[[Any], Any]] = None,
               reverse: bool = False, compact: bool = False) -> Iterator[Any]:
        """Reads all of iterator now; returns an iterator over its records in order.

        Records are read a batch at a time, and batches are smaller near the
        limit, so a run ends within about a record of where the limit is
        passed. Where runs end never changes the order: each run is sorted
        stably and the merge takes equal keys from earlier runs first.

        compact (for records nobody else holds, as a shuffle's): when all fit
        in memory with room for a copy, radix-sorted records are replaced by
        equal copies laid out in memory in their sorted order, which the
        reader then reads in order (_ember_fast.sort_by_int_key)."""
        radix = key is first_item
        if radix:
            key = _ITEM_0              # record[0] too, with the same errors
        chunk: list[Any] = []
        runs: list[IO[bytes]] = []
        sizer = _Sizer()
        used = 0
        limit = self.memory_limit
        records = iter(iterator)
        while True:
            if sizer.sampled:
                room = (limit - used) // max(1, sizer.average) + 1
                batch = max(1, min(self.BATCH, room))
            else:
                batch = 16
            start = len(chunk)
            chunk.extend(itertools.islice(records, batch))
            if len(chunk) == start:
                break
            used += sizer.size_of_batch(chunk, start)
            if used > limit:
                _sort_records(chunk, key, reverse, radix)
                runs.append(self._write_run(chunk, sizer.average))
                chunk, used = [], 0
        _sort_records(chunk, key, reverse, radix, compact and not runs and used * 2 <= limit)
        if not runs:
            return iter(chunk)
        while len(runs) > self.MAX_OPEN_RUNS:
            head = heapq.merge(*(_run_records(r) for r in runs[:self.MAX_OPEN_RUNS]),
                               key=key, reverse=reverse)
            runs = [self._write_run(head, sizer.average)] + runs[self.MAX_OPEN_RUNS:]
        return heapq.merge(*(_run_records(r) for r in runs), iter(chunk), key=key,
                           reverse=reverse)

    def _write_run(self, records: Iterable[Any], average: int) -> IO[bytes]:
        run = tempfile.TemporaryFile(prefix="ember-sort-", dir=self._dir or local_dir())
        batch = max(1, min(_FRAME_RECORDS, 64 * 1024 // max(1, average)))
        _record_spill(_dump_frames(run, records, batch))
        run.flush()
        return run


def _sort_records(records: list, key: Optional[Callable[[Any], Any]], reverse: bool,
                  radix: bool, compact: bool = False) -> None:
    """records.sort(key=key, reverse=reverse); with radix (key is record[0]), a
    radix sort in C when every record is a tuple with an int key in 64 bits
    (the same order: both are stable), the records made anew in that order
    with compact."""
    if (radix and _ember_fast is not None
            and _ember_fast.sort_by_int_key(records, reverse, compact)):
        return
    records.sort(key=key, reverse=reverse)


def _run_records(run: IO[bytes]) -> Iterator[Any]:
    run.seek(0)
    try:
        yield from _read_stream(run)
    finally:
        run.close()


# ---- mergers ------------------------------------------------------------------------------

class ExternalMerger:
    """Merges values or combiners per key within a memory limit (PySpark's ExternalMerger).

    Parameters
    ----------
    agg : Aggregator
    memory_limit : int
        Bytes; past it the dict is partitioned into spill files by key hash.
    partitions : int
        Number of spill files.

    Examples
    --------
    >>> merger = ExternalMerger(SimpleAggregator(lambda a, b: a + b), memory_limit=2048)
    >>> merger.mergeValues((i % 100, 1) for i in range(10_000))
    >>> sorted(merger.items())[:2]
    [(0, 100), (1, 100)]
    """

    def __init__(self, agg: Aggregator, memory_limit: Optional[int] = None,
                 partitions: int = SPILL_PARTITIONS, spill_dir: Optional[str] = None,
                 scale: int = 1) -> None:
        self.agg = agg
        self.memory_limit = int(memory_limit if memory_limit is not None else task_memory_limit())
        self.partitions = partitions
        self.scale = scale
        self.data: dict[Any, Any] = {}
        self.spills = 0
        self._spill_root = spill_dir
        self._dir: Optional[str] = None
        self._tracker = _DictSizeTracker()

    def _bucket(self, key: Any) -> int:
        # A hash that differs from the shuffle partitioner's and between levels.
        return hash((key, self.scale)) % self.partitions

    def mergeValues(self, iterator: Iterable[tuple[Any, Any]]) -> None:
        """Adds (key, value) records."""
        create, merge = self.agg.createCombiner, self.agg.mergeValue
        if _ember_fast is not None:
            self._merge_fast(iter(iterator), None if create is identity else create, merge)
            return
        data, limit, tracker = self.data, self.memory_limit, self._tracker
        for n, (k, v) in enumerate(iterator, 1):
            data[k] = merge(data[k], v) if k in data else create(v)
            if not n & _CHECK_MASK and tracker.update(data, _CHECK_MASK + 1) > limit:
                self._spill()
                data = self.data

    def mergeCombiners(self, iterator: Iterable[tuple[Any, Any]]) -> None:
        """Adds (key, combiner) records."""
        merge = self.agg.mergeCombiners
        if _ember_fast is not None:
            frames = _float_sum_frames(iterator, merge)
            if frames is not None:
                self._merge_frames(frames, merge)
                return
            self._merge_fast(iter(iterator), None, merge)
            return
        data, limit, tracker = self.data, self.memory_limit, self._tracker
        for n, (k, c) in enumerate(iterator, 1):
            data[k] = merge(data[k], c) if k in data else c
            if not n & _CHECK_MASK and tracker.update(data, _CHECK_MASK + 1) > limit:
                self._spill()
                data = self.data

    def _merge_fast(self, records: Iterator[tuple[Any, Any]],
                    create: Optional[Callable[[Any], Any]],
                    merge: Callable[[Any, Any], Any]) -> None:
        """The merge loops in C, a memory check every 64 records (create None:
        a record's value is its own combiner). The C loop runs on through the
        checks that could neither measure the dict nor pass the limit
        (records_to_check): they would change nothing but the count, so one
        update for all of them returns what the last would (a Python step per
        64 records cost distinct's reduce side a tenth of its time)."""
        merge = _c_merge(merge)
        tracker, limit = self._tracker, self.memory_limit
        while True:
            consumed, exhausted = _ember_fast.combine(
                self.data, records, create, merge,
                tracker.records_to_check(limit, _CHECK_MASK + 1))
            if tracker.update(self.data, consumed) > limit:
                self._spill()
            if exhausted:
                return

    def _merge_frames(self, frames: Iterator[Any], merge: Callable[[Any, Any], Any]) -> None:
        """mergeCombiners of a block input read as frames (RecordBatches.raw):
        records that are (ASCII str, float) pairs are merged straight from their
        record frame in C (_ember_fast.merge_float_frame), any other record, and
        what follows it in its frame, as _merge_fast merges them; the memory
        checks come after the same numbers of records (every 64, across frames)
        as _merge_fast's, so the dict, its spills and the order of items() are
        the same. A corrupt frame raises load_records's error as before, but
        after the records before the bad one were merged (the task fails
        either way)."""
        window = _CHECK_MASK + 1
        room = window
        merge_frame = _ember_fast.merge_float_frame
        for item in frames:
            if type(item) is bytes:
                offset = remaining = 0
                while True:
                    consumed, offset, remaining, stopped = merge_frame(self.data, item, offset,
                                                                       remaining, room)
                    room -= consumed
                    if not room:
                        self._checked(window)
                        room = window
                    if stopped:         # the rest of the frame the Python way
                        records = _ember_fast.load_records(item)   # raises for a bad frame
                        item = (records if remaining == len(records)
                                else records[len(records) - remaining:] if remaining > 0 else [])
                        break
                    if not remaining:
                        item = None
                        break
            if item is not None:
                records = iter(item)
                while True:
                    consumed, exhausted = _ember_fast.combine(self.data, records, None,
                                                              _c_merge(merge), room)
                    room -= consumed
                    if not room:
                        self._checked(window)
                        room = window
                    if exhausted:
                        break
        self._checked(window - room)

    def _checked(self, consumed: int) -> None:
        if self._tracker.update(self.data, consumed) > self.memory_limit:
            self._spill()

    def _path(self, bucket: int) -> str:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="ember-merge-", dir=self._spill_root or local_dir())
        return os.path.join(self._dir, str(bucket))

    def _spill(self) -> None:
        buckets: list[list[tuple[Any, Any]]] = [[] for _ in range(self.partitions)]
        for item in self.data.items():
            buckets[self._bucket(item[0])].append(item)
        self._write_buckets(buckets)
        self.data = {}
        self._tracker.reset()

    def _write_buckets(self, buckets: list[list[tuple[Any, Any]]]) -> None:
        written = 0
        for i, items in enumerate(buckets):
            if items:
                with open(self._path(i), "ab") as fh:
                    written += _dump_frames(fh, items)
        self.spills += 1
        _record_spill(written)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """The merged (key, combiner) records; call once, after merging."""
        if not self.spills:
            return iter(self.data.items())
        return self._external_items()

    def items_with(self, wrap: Callable[[Any], Any]) -> Iterator[tuple[Any, Any]]:
        """(key, wrap(combiner)) for items(): zipped in C when nothing spilled
        (groupByKey's millions of keys then take no Python step each)."""
        if not self.spills:
            return zip(self.data.keys(), map(wrap, self.data.values()))
        return ((k, wrap(c)) for k, c in self._external_items())

    def _external_items(self) -> Iterator[tuple[Any, Any]]:
        try:
            if self.data:
                self._spill()
            for i in range(self.partitions):
                path = self._path(i)
                if os.path.exists(path):
                    yield from self._merged_bucket(i, path)
        finally:
            self.cleanup()

    def _merged_bucket(self, index: int, path: str) -> Iterator[tuple[Any, Any]]:
        merge = self.agg.mergeCombiners
        data: dict[Any, Any] = {}
        tracker = _DictSizeTracker()
        records = _load_frames(path)
        for n, (k, c) in enumerate(records, 1):
            data[k] = merge(data[k], c) if k in data else c
            if (not n & _CHECK_MASK and self.scale < _MAX_MERGE_DEPTH
                    and tracker.update(data, _CHECK_MASK + 1) > self.memory_limit):
                deeper = type(self)(self.agg, self.memory_limit, self.partitions,
                                    self._spill_root, self.scale + 1)
                deeper.data = data
                deeper._spill()
                del data
                deeper.mergeCombiners(records)
                os.remove(path)
                yield from deeper.items()
                return
        os.remove(path)
        yield from data.items()

    def cleanup(self) -> None:
        """Removes the spill files (also done when items() is exhausted or closed)."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class ExternalGroupBy(ExternalMerger):
    """Groups values per key within a memory limit (``groupByKey``'s reduce side).

    Combiners are lists. Spilled lists are written in chunks; a spill file too
    big to group in memory is sorted on disk by key hash and grouped in one
    pass, and a key whose values exceed the limit yields an
    :class:`ExternalList` whose records stay on disk.

    Examples
    --------
    >>> merger = ExternalGroupBy(memory_limit=4096)
    >>> merger.mergeValues((i % 3, i) for i in range(9))
    >>> sorted((k, list(vs)) for k, vs in merger.items())
    [(0, [0, 3, 6]), (1, [1, 4, 7]), (2, [2, 5, 8])]
    """

    def __init__(self, agg: Optional[Aggregator] = None, memory_limit: Optional[int] = None,
                 partitions: int = SPILL_PARTITIONS, spill_dir: Optional[str] = None,
                 scale: int = 1) -> None:
        super().__init__(agg or LIST_AGGREGATOR, memory_limit, partitions, spill_dir, scale)
        self._used = 0
        self._value_sizer = _Sizer()
        self._key_sizer = _Sizer()       # keys are sampled too: measuring each one costs more than grouping it
        self._bucket_bytes = [0] * partitions

    def mergeValues(self, iterator: Iterable[tuple[Any, Any]]) -> None:
        if _ember_fast is not None:
            self._group_fast(iter(iterator), extend=False)
            return
        data, value_size, key_size = self.data, self._value_sizer.size, self._key_sizer.size
        for k, v in iterator:
            values = data.get(k)
            if values is None:
                data[k] = [v]
                self._used += 120 + key_size(k)
            else:
                values.append(v)
            self._used += value_size(v)
            if self._used > self.memory_limit:
                self._spill()
                data = self.data

    def mergeCombiners(self, iterator: Iterable[tuple[Any, Any]]) -> None:
        if _ember_fast is not None:
            self._group_fast(iter(iterator), extend=True)
            return
        data, sizer, key_size = self.data, self._value_sizer, self._key_sizer.size
        for k, vs in iterator:
            if type(vs) is not list:
                vs = list(vs)
            if not vs:
                data.setdefault(k, [])
                continue
            values = data.get(k)
            if values is None:
                data[k] = vs
                self._used += 120 + key_size(k)
            else:
                values.extend(vs)
            self._used += sizer.size(vs[0]) * len(vs)
            if self._used > self.memory_limit:
                self._spill()
                data = self.data

    def _group_fast(self, records: Iterator[tuple[Any, Any]], extend: bool) -> None:
        """mergeValues/mergeCombiners with the loop in C, a chunk of records at
        a time, the memory estimate updated and checked after each chunk."""
        value_size, key_size = self._value_sizer.size, self._key_sizer.size
        # Appending, the groups of str and bytes keys are built keyed on the
        # keys' bytes (PairGroups: the same dict, filled when data is read).
        # Its table's own bytes (table) count against the limit while it holds
        # records: a flush makes the lists while the table still exists.
        groups = _ember_fast.PairGroups() if _PAIR_GROUPS and not extend else None
        table = 0
        try:
            while True:
                chunk = _records_until(self.memory_limit - self._used - table,
                                       self._value_sizer.average)
                if groups is not None:
                    _, exhausted, new_keys, added, key, value, table = groups.add(
                        self.data, records, chunk)
                else:
                    _, exhausted, new_keys, added, key, value = _ember_fast.group(
                        self.data, records, extend, chunk)
                if added:
                    self._used += new_keys * (120 + key_size(key)) + added * value_size(value)
                else:
                    self._used += new_keys * 120
                if self._used + table > self.memory_limit:
                    if groups is not None:
                        self._flush_groups(groups)
                        table = 0
                    self._spill()
                if exhausted:
                    return
        finally:
            if groups is not None:
                self._flush_groups(groups)

    def _flush_groups(self, groups: Any) -> None:
        """Moves PairGroups' groups into data. The table holds groups only
        while data is empty, so they become data: one dict, made at its size."""
        if len(groups):
            if self.data:
                groups.flush(self.data)     # raises: the groups would replace data's lists
            self.data = groups.flush()

    def _spill(self) -> None:
        average = self._value_sizer.average
        chunk = max(1, _CHUNK_BYTES // max(1, average))
        buckets: list[list[tuple[Any, Any]]] = [[] for _ in range(self.partitions)]
        for k, values in self.data.items():
            b = self._bucket(k)
            self._bucket_bytes[b] += 120 + len(values) * average
            if len(values) <= chunk:
                buckets[b].append((k, values))
                continue
            for start in range(0, len(values), chunk):
                buckets[b].append((k, values[start:start + chunk]))
        self._write_buckets(buckets)
        self.data = {}
        self._used = 0

    def _merged_bucket(self, index: int, path: str) -> Iterator[tuple[Any, Any]]:
        if self._bucket_bytes[index] > self.memory_limit:
            yield from self._sorted_groups(path)
            return
        data: dict[Any, list] = {}
        for k, values in _load_frames(path):
            known = data.get(k)
            if known is None:
                data[k] = values
            else:
                known.extend(values)
        os.remove(path)
        yield from data.items()

    def _sorted_groups(self, path: str) -> Iterator[tuple[Any, Any]]:
        sorter = ExternalSorter(self.memory_limit // 2, self._spill_root)
        records = sorter.sorted(_load_frames(path), key=_key_hash)
        os.remove(path)
        current: Any = None
        groups: list[tuple[Any, ExternalList]] = []
        for k, chunk in records:
            h = hash(k)
            if h != current:
                yield from groups
                groups, current = [], h
            for known, values in groups:
                if known == k:
                    values.extend(chunk)
                    break
            else:
                groups.append((k, ExternalList(chunk, memory_limit=self.memory_limit // 2,
                                               spill_dir=self._spill_root)))
        yield from groups


def _key_hash(record: tuple[Any, Any]) -> int:
    return hash(record[0])


# distinct's map side (and combine_locally's grouping mode) stop combining when,
# after _GROUPING_SAMPLE records, more than _MOSTLY_NEW of them had a key not
# seen before (distinct of mostly distinct edges saves nothing). groupByKey no
# longer groups on the map side at all (pair_records); the grouping mode is the
# path it replaced, which python-client/tests/test_group_pairs.py holds it against.
_GROUPING_SAMPLE = 20_000
_MOSTLY_NEW = 0.75


def _one_value_lists(records: Iterator[tuple[Any, Any]]) -> Iterator[tuple[Any, list]]:
    return ((k, [v]) for k, v in records)


class PairRecords(itertools.chain):
    """groupByKey's map side with the default hash: the records as (k, v)
    tuples, unpacked as ``for k, v in records`` unpacks them (with its errors),
    not combined (as Scala Spark's groupByKey; the reduce side appends the
    values in the order the combined lists would have brought them).

    ``records`` is the input: the shuffle writer hands it to
    ``_ember_fast.partition`` with its positional ``pairs`` flag set, which unpacks in C, so a
    record that is a 2-tuple already goes out as it is, with no Python step."""

    records: Iterator[Any]


class RecordBatches(itertools.chain):
    """A block input's records: ``chain.from_iterable`` of its frames decoded
    (``batches``, a generator). ``raw()`` gives the same input as its record
    frames undecoded (bytes) and its other frames decoded (lists), counted as
    read the same way, as long as nothing was read yet (else None); the chain
    must not be read after that."""

    batches: Iterator[list]
    raw_source: Callable[[], Iterator[Any]]

    def raw(self) -> Optional[Iterator[Any]]:
        import inspect
        if inspect.getgeneratorstate(self.batches) != inspect.GEN_CREATED:
            return None
        self.batches.close()
        return self.raw_source()


def _float_sum_frames(iterator: Iterable[Any], merge: Callable[[Any, Any], Any]) -> Any:
    """The raw frames of reduceByKey(add)'s reduce-side input when it is an
    untouched block input (RecordBatches), else None."""
    if (merge is operator.add and type(iterator) is RecordBatches
            and hasattr(_ember_fast, "merge_float_frame")):
        return iterator.raw()
    return None


def pair_records(records: Iterable[Any]) -> PairRecords:
    """The records as (k, v) tuples (PairRecords)."""
    records = iter(records)
    result = PairRecords((k, v) for k, v in records)
    result.records = records
    return result


def _records_until(room: int, average: int) -> int:
    """Records to hand a C loop before the next memory check: 64, or fewer when
    that many records of the average size would pass the limit."""
    return max(1, min(_CHECK_MASK + 1, room // max(1, average)))


def _list_create(v: Any) -> list:
    return [v]


def _list_append(values: list, v: Any) -> list:
    values.append(v)
    return values


def _list_extend(a: list, b: list) -> list:
    a.extend(b)
    return a


LIST_AGGREGATOR = Aggregator(_list_create, _list_append, _list_extend)


def combine_locally(iterator: Iterable[tuple[Any, Any]], agg: Aggregator,
                    memory_limit: Optional[int] = None,
                    grouping: bool = False) -> Iterator[tuple[Any, Any]]:
    """Map-side combine: (key, combiner) records, flushed whenever the dict passes the limit.

    A key may come out more than once (once per flush); the reduce side merges
    combiners anyway, so the map side never needs the disk.

    Examples
    --------
    >>> agg = SimpleAggregator(lambda a, b: a + b)
    >>> sorted(combine_locally([("a", 1), ("b", 2), ("a", 3)], agg))
    [('a', 4), ('b', 2)]
    """
    limit = memory_limit if memory_limit is not None else task_memory_limit()
    # textFile -> split -> (w, c) -> reduceByKey(add) is counted from the frames in C.
    words = (fused_text.word_count_source(iterator)
             if (not grouping and _ember_fast is not None and agg.createCombiner is identity
                 and agg.mergeValue is operator.add) else None)
    if words is not None:
        return itertools.chain.from_iterable(fused_text.count_words(
            _ember_fast, words, limit, _DictSizeTracker(), _CHECK_MASK + 1))
    tail = SplitTextTail()
    combined = CombinedRecords.from_iterable(_combined(iterator, agg, limit, grouping, tail))
    combined.split_text_tail = tail
    return combined


class SplitTextTail:
    """distinct's map side over split text lines, once it stopped combining:
    the shuffle writer sets ``wanted`` before reading, and then, instead of
    the records of the frames not split yet, finds here (``rest``: frames,
    lines_of, splitter, sep) what it writes itself as (tuple(line.split(sep)),
    None) records (worker_runtime._write_split_pairs)."""

    __slots__ = ("wanted", "rest")

    def __init__(self) -> None:
        self.wanted = False
        self.rest: Optional[tuple] = None


class CombinedRecords(itertools.chain):
    """combine_locally's records (a chain of its flushes)."""

    split_text_tail: SplitTextTail


def _combined(iterator: Iterable[tuple[Any, Any]], agg: Aggregator, limit: int,
              grouping: bool, tail: Optional[SplitTextTail] = None
              ) -> Iterator[Iterable[tuple[Any, Any]]]:
    """combine_locally's loops; they yield each flush's items whole (chained by
    the caller), so no Python frame is resumed per record."""
    create, merge = agg.createCombiner, agg.mergeValue
    data: dict[Any, Any] = {}
    # Compared by function: a task gets its own (unpickled) copy of the aggregator.
    if (grouping and _ember_fast is not None and agg.createCombiner is _list_create
            and agg.mergeValue is _list_append):
        sizer, used, seen, keys = _Sizer(), 0, 0, 0
        records = iter(iterator)
        while True:
            consumed, exhausted, new_keys, added, _, value = _ember_fast.group(
                data, records, False, _records_until(limit - used, sizer.average))
            used += new_keys * 120 + (added * sizer.size(value) if added else 0)
            if used > limit:
                yield data.items()
                data, used = {}, 0
            if exhausted:
                break
            seen, keys = seen + consumed, keys + new_keys
            if seen >= _GROUPING_SAMPLE and keys > seen * _MOSTLY_NEW:
                # Grouping saves nothing here (most keys come once); the reduce
                # side extends by the one-value lists in the same order.
                yield data.items()
                yield _one_value_lists(records)
                return
    elif grouping:
        sizer, used = _Sizer(), 0
        for k, v in iterator:
            values = data.get(k)
            if values is None:
                data[k] = create(v)
                used += 120
            else:
                data[k] = merge(values, v)
            used += sizer.size(v)
            if used > limit:
                yield data.items()
                data, used = {}, 0
    elif _ember_fast is not None:
        tracker = _DictSizeTracker()
        records = iter(iterator)
        create = None if agg.createCombiner is identity else agg.createCombiner
        merge = _c_merge(merge)
        first_only, seen = create is None and merge is None, 0     # distinct's map side
        while True:
            consumed, exhausted = _ember_fast.combine(data, records, create, merge,
                                                      _CHECK_MASK + 1)
            if exhausted:
                break
            if tracker.update(data, consumed) > limit:
                yield data.items()
                data = {}
                tracker.reset()
                first_only = False
            seen += consumed
            if first_only and seen >= _GROUPING_SAMPLE and len(data) > seen * _MOSTLY_NEW:
                # Mostly distinct records: the reduce side keeps the first
                # record of each key just the same (in fetch order).
                yield data.items()
                if (tail is not None and tail.wanted and type(records) is fused_text.PairedWith
                        and records.constant is None
                        and type(records.records) is fused_text.SplitTuples):
                    # The rest of the current frame as records; the frames
                    # after it the shuffle writer splits and writes itself.
                    current, *tail.rest = records.records.take_rest()
                    yield fused_text.paired_with(current, None)
                    return
                # distinct's (x, None) records are exact pairs already (made in C)
                yield (records if type(records) is fused_text.PairedWith
                       else ((k, v) for k, v in records))
                return
    else:
        tracker = _DictSizeTracker()
        for n, (k, v) in enumerate(iterator, 1):
            data[k] = merge(data[k], v) if k in data else create(v)
            if not n & _CHECK_MASK and tracker.update(data, _CHECK_MASK + 1) > limit:
                yield data.items()
                data = {}
                tracker.reset()
    yield data.items()
