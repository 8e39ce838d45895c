"""The Python side of ember-pyexec: runs tasks sent by a worker.

The C host (services/pyexec) starts the interpreter and calls :func:`main`,
which serves tasks until the worker closes the pipe. The frame protocol is
described in docs/ARCHITECTURE.md ("Worker <-> pyexec protocol").
"""

from __future__ import annotations

import gc
import json
import os
import pickle
from collections import OrderedDict
from itertools import chain, islice
import struct
import time
import traceback
from typing import Any, Callable, Iterable, Iterator, Optional

import _ember_io as io  # provided by the C host

from ember import accumulators, broadcast, compat, fused_text, pyfiles
from ember.function_cache import FunctionCache
from ember.fused_text import TextLines, line_count, text_lines as _text_lines
from ember.lineage import SIDE_BOUNDARY
from ember.replay_frames import ReplayFrames
from ember.resultiterable import ResultIterable
from ember.shuffle import (CombinedRecords, PairRecords, RangePartitioner, RecordBatches,
                           _ember_fast, local_dir, portable_hash, task_memory_limit)
from ember.taskcontext import TaskContext

PICKLE_PROTOCOL = 5
_MIN_BATCH, _MAX_BATCH = 16, 100_000
_TARGET_LOW, _TARGET_HIGH = 64 * 1024, 1024 * 1024
# The collector's default third threshold (10) makes a full collection walk every live object
# each time their number grows by a quarter: building a shuffle's groups or a cached partition
# (millions of lists and tuples) then spends about as long in the collector as in the loop.
# At 100, a full collection waits for 100 young-generation passes (about 700,000 net new
# containers); young cycles are still found as often as before. PageRank's first iteration
# went from 65 to 53 s.
GC_THRESHOLDS = (700, 10, 100)


class _AdaptiveBatch:
    """Grows or shrinks the records per frame to aim at 64 KiB-1 MiB frames."""

    def __init__(self) -> None:
        self.size = 256

    def observe(self, nbytes: int) -> None:
        if nbytes < _TARGET_LOW:
            self.size = min(self.size * 2, _MAX_BATCH)
        elif nbytes > _TARGET_HIGH:
            self.size = max(self.size // 2, _MIN_BATCH)


class CachedPartition:
    """One cached partition kept as Python objects: its records, and structures
    derived from them once (the hash join's index of the left side) that later
    tasks reuse instead of rebuilding."""

    __slots__ = ("records", "size", "derived", "put")

    def __init__(self, records: list, size: int, put: int) -> None:
        self.records = records
        self.size = size
        self.derived: dict[str, Any] = {}
        self.put = put                 # _ObjectCache.puts when it was stored

    def derive(self, name: str, build: Callable[[list], tuple[Any, int]]) -> Any:
        """build(records) -> (value, approximate bytes), once; counted in the budget."""
        if name not in self.derived:
            value, size = build(self.records)
            self.derived[name] = value
            _objects.grew(self, size)
        return self.derived[name]


class _ObjectCache:
    """Cached partitions this process keeps as Python objects, least recently
    used first out, within a budget counted in pickled bytes (Spark keeps
    deserialized MEMORY_ONLY blocks the same way). A partition is kept by the
    task that computed it (its cache tee) or that read its block. The worker
    learns which it holds from each task's metrics and sends no bytes for them
    while its block manager still holds the same block (docs/ARCHITECTURE.md,
    "Persistence and locality"). Entries belong to one application."""

    def __init__(self) -> None:
        self.entries: "OrderedDict[str, CachedPartition]" = OrderedDict()
        self.size = 0
        self.puts = 0
        self.changes = 0               # puts, growths and drops: the frozen set is stale
        self.budget = _OBJECT_BUDGET_DEFAULT
        self.app = ""
        self.pinned: set[str] = set()

    def begin_task(self, app: str, budget: int, drop: Iterable[str], using: Iterable[str]) -> None:
        """Forgets every entry of another application, and those the worker
        found changed or gone in its block manager; the entries the task reads
        (`using`) stay until it ends, whatever it stores meanwhile."""
        self.budget = budget
        if app != self.app:
            self.app = app
            self.clear()
        for block_id in drop:
            self.drop(block_id)
        self.pinned = set(using)
        missing = [block_id for block_id in self.pinned if block_id not in self.entries]
        if missing:                    # the worker and this process disagree: a bug
            raise RuntimeError(f"cached partitions {missing} are not kept as objects here")
        self._shrink()                 # the budget may be smaller for this job

    def end_task(self) -> None:
        self.pinned = set()
        self._shrink()

    def get(self, block_id: str) -> CachedPartition:
        entry = self.entries.pop(block_id)
        self.entries[block_id] = entry
        return entry

    def put(self, block_id: str, records: list, size: int) -> None:
        self.drop(block_id)
        if size > self.budget:
            return
        self.puts += 1
        self.changes += 1
        self.entries[block_id] = CachedPartition(records, size, self.puts)
        self.size += size
        self._shrink()

    def drop_since(self, puts: int) -> None:
        """Drops the entries stored after self.puts was `puts`."""
        for block_id, entry in list(self.entries.items()):
            if entry.put > puts:
                self.drop(block_id)

    def grew(self, entry: CachedPartition, size: int) -> None:
        entry.size += size
        self.size += size
        self.changes += 1              # new long-lived objects: freeze them after the task
        self._shrink()

    def drop(self, block_id: str) -> None:
        entry = self.entries.pop(block_id, None)
        if entry is not None:
            self.size -= entry.size
            self.changes += 1
            gc.unfreeze()    # what the dropped records held in cycles may be collected again

    def clear(self) -> None:
        for block_id in list(self.entries):
            self.drop(block_id)

    def _shrink(self) -> None:
        if self.size <= self.budget:
            return
        for block_id in list(self.entries):     # least recently used first
            if self.size <= self.budget:
                break
            if block_id not in self.pinned:
                self.drop(block_id)

    def over_memory(self, limit: int) -> None:
        """Past half of limit (the worker's budget for one subprocess), the
        freed pymalloc arenas and the free heap memory the host keeps for
        reuse go back to the kernel: the next task's memory from outside
        pymalloc (numpy arrays, large strings) cannot come from the arenas, and
        must not meet the hard budget with them still held. Past limit itself
        every entry is dropped too: the copy in the block manager stays, so only
        the time to read it again is lost."""
        if limit <= 0:
            return
        # The heap's free top stays under its keep, at most a quarter of limit
        # (pyexec_heap.c): it alone is no reason to read statm after every task
        # (30 us of a tiny task's 110), nor to count the heap's free memory
        # (mallinfo2 walks every free chunk). It goes back with the arenas.
        pooled = io.arena_pool()["held"] >= _ARENA_POOL_CHECKED
        if not (pooled or self.entries):
            return
        resident = _resident()
        if pooled and resident > limit // 2:
            io.release_arenas()
            io.release_heap()
            resident = _resident()
        if self.entries and resident > limit:
            self.clear()
            gc.collect()

    def held(self) -> list[str]:
        return list(self.entries)


_OBJECT_BUDGET_DEFAULT = 128 << 20
# Below this, arenas and heap memory the host keeps for reuse are not worth a look at statm.
_ARENA_POOL_CHECKED = 64 << 20


def _resident() -> int:
    """This process's resident memory in bytes (0 when it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
_objects = _ObjectCache()


class _LongLivedData:
    """Keeps the cyclic garbage collector off long-lived data.

    Cached partitions kept as objects and broadcast values can be millions of
    objects; every full collection would walk them all, and a task that
    allocates a lot (a join's hash table) triggers several. After a task that
    added such data, the young generations are collected and everything
    tracked is frozen (the collector ignores it from then on; refcounting
    still frees it). Not a full collection: on PageRank's cached links it took
    0.3-0.5 s per task of 300k keys to find 2 unreachable objects. Cyclic
    garbage already in the old generation stays frozen until the next
    unfreeze (an entry dropped, a broadcast value replaced)."""

    def __init__(self) -> None:
        self.seen = (0, 0)

    def keep_new(self) -> None:
        """Freezes what the task made so far, as after_task does, while a cache
        tee keeps a partition's records: otherwise each full collection of
        the task walks every record kept so far, and as the old generation
        grows by a quarter between them, that is about five walks of the
        partition (most of the GC time of PageRank's first iteration)."""
        gc.collect(1)
        gc.freeze()

    def gave_up(self) -> None:
        """A tee stopped keeping its records: what keep_new froze may be
        garbage now, so the collector sees all again (after_task freezes anew)."""
        gc.unfreeze()
        self.seen = (-1, -1)

    def after_task(self) -> None:
        now = (_objects.changes, broadcast.unpickled_values)
        if now != self.seen:
            self.seen = now
            gc.collect(1)
            gc.freeze()


_long_lived = _LongLivedData()
_functions = FunctionCache()


def _object_budget(header: dict) -> int:
    text = header.get("properties", {}).get("spark.ember.pyexec.objectCache")
    if not text:
        return _OBJECT_BUDGET_DEFAULT
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower()
    if text[-1:] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class _Inputs:
    """The task's input frames: one stream per plan leaf, each ended by END.

    from_objects: {input index: block id} of cached inputs this process keeps
    as objects (the worker sends END alone for them); keep: those of the other
    cached inputs, kept as objects once read whole."""

    def __init__(self, count: int, from_objects: dict[str, str], keep: dict[str, str]) -> None:
        self.count = count
        self.ended = 0
        self.records = 0
        self.started = 0
        self.from_objects = from_objects
        self.keep = keep
        self.served = 0                # inputs served from the object cache

    def leaf(self, kind: str) -> Iterator[Any]:
        """The records of the next input, read lazily a frame at a time (the
        records of a frame are iterated in C, not by a Python generator).
        Text lines come as a TextLines, which word count may read as raw
        frames instead (ember.fused_text)."""
        if kind != "text":
            batches = self._batches(kind)
            records = RecordBatches.from_iterable(batches)
            records.batches = batches
            records.raw_source = lambda: self._batches(kind, raw=True)
            return records
        batches = self._batches(kind)
        lines = TextLines.from_iterable(batches)
        lines.batches = batches
        lines.source = lambda raw=False: self._batches(kind, raw)
        lines.lines_of = _text_lines
        return lines

    def next_object_entry(self) -> "CachedPartition | None":
        """The next input as its object cache entry when it is served from
        there (its END is read now), else None and nothing is read."""
        block_id = self.from_objects.get(str(self.started))
        if block_id is None or self.started >= self.count:
            return None
        entry = self._take_entry(block_id)
        self._expect_end()
        return entry

    def _take_entry(self, block_id: str) -> CachedPartition:
        self.started += 1
        entry = _objects.get(block_id)
        self.records += len(entry.records)
        self.served += 1
        return entry

    def _batches(self, kind: str, raw: bool = False) -> Iterator[Any]:
        """Lists of records, one per frame; with raw, text frames undecoded
        (records still counted as their lines)."""
        index = self.started
        if index >= self.count:
            # Reading on would wait forever for frames the worker never sends.
            raise RuntimeError(f"the task's plan reads input {index + 1} but the task has "
                               f"{self.count}")
        block_id = self.from_objects.get(str(index))
        if block_id is not None:
            if raw and kind == "text":     # only cached inputs are kept as objects, never text
                raise RuntimeError(f"input {index + 1} is kept as objects, not text frames")
            entry = self._take_entry(block_id)
            yield entry.records
            self._expect_end()
            return
        self.started += 1
        keep_as = self.keep.get(str(index))
        if keep_as is not None and keep_as not in _objects.pinned:
            _objects.drop(keep_as)     # what it kept of an older block must not outlive this read
        kept: list[Any] | None = [] if keep_as is not None and _objects.budget > 0 else None
        size = 0
        while True:
            frame = io.read_frame()
            if isinstance(frame, int):
                if frame != io.END:
                    raise RuntimeError(f"unexpected marker {frame} in task input")
                self.ended += 1
                if kept is not None:
                    _objects.put(keep_as, kept, size)
                return
            if raw and kind == "text":
                self.records += line_count(frame)
                yield frame
                continue
            if raw and kept is None and frame[:1] == _RECORDS_MAGIC:
                count = _record_count(frame)
                if count >= 0:         # else decoded below, which raises its error
                    self.records += count
                    yield frame
                    continue
            batch = _text_lines(frame) if kind == "text" else _loads(frame)
            self.records += len(batch)
            if kept is not None:
                size += len(frame)
                if size > _objects.budget:
                    kept = None        # too big to keep as objects
                else:
                    kept.extend(batch)
            yield batch

    def _expect_end(self) -> None:
        frame = io.read_frame()
        if frame != io.END:
            raise RuntimeError("an input kept as objects came with data")
        self.ended += 1

    def skip_to(self, end: int) -> None:
        """Reads and drops what is left of the inputs before input `end` (a
        combine node's child that was not read to its end)."""
        while self.ended < end:
            frame = io.read_frame()
            if isinstance(frame, int):
                if frame != io.END:
                    raise RuntimeError(f"unexpected marker {frame} in task input")
                self.ended += 1
        self.started = max(self.started, end)

    def drain(self) -> None:
        """Reads what no iterator consumed, so the pipe stays in step."""
        while self.ended < self.count:
            frame = io.read_frame()
            if isinstance(frame, int):
                self.ended += 1


def _record_count(frame: bytes) -> int:
    """The record count in a record frame's header (-1 when it does not parse:
    the frame is decoded then, which raises its error before anything is counted)."""
    if frame[1:2] != _RECORDS_VERSION:
        return -1
    count = shift = 0
    for byte in frame[2:12]:
        count |= (byte & 0x7F) << shift
        if byte < 0x80:
            return count
        shift += 7
    return -1


def _loads(frame: bytes) -> list:
    """A frame's records: pickled, or (shuffle blocks) written by _ember_fast.dump_records."""
    if frame[:1] == _RECORDS_MAGIC:
        return _ember_fast.load_records(frame)
    return pickle.loads(frame)


_RECORDS_MAGIC = bytes([_ember_fast.RECORDS_MAGIC]) if _ember_fast is not None else b""
_RECORDS_VERSION = bytes([_ember_fast.RECORDS_VERSION]) if _ember_fast is not None else b""
if _ember_fast is not None:
    _ember_fast.set_result_iterable(ResultIterable)   # record frames carry groupByKey's values
    _ember_fast.set_range_partitioner(RangePartitioner)   # sortByKey's bisect, in C


def _write_results(records: Iterable[Any]) -> int:
    batch: list[Any] = []
    sizer = _AdaptiveBatch()
    count = 0
    for record in records:
        batch.append(record)
        if len(batch) >= sizer.size:
            count += _flush(batch, sizer)
    return count + _flush(batch, sizer)


def _encode_batch(batch: list[Any], prefix: bytes, records: bool) -> tuple[bytes, int]:
    """One frame's bytes for batch and where its payload starts: a record frame
    (when records and every record is made of its simple types) with prefix in
    front, else a pickle without it (start 0), which _write_encoded sends after
    prefix from write_frame's own buffer instead of copying a large pickle."""
    data = (_ember_fast.dump_records(batch, prefix)
            if records and _ember_fast is not None else None)
    if data is None:
        return pickle.dumps(batch, PICKLE_PROTOCOL), 0
    return data, len(prefix)


def _write_encoded(data: bytes, start: int, prefix: bytes) -> None:
    if start:
        io.write_frame(data)          # the prefix is in data already
    else:
        io.write_frame(data, prefix)


def _flush(batch: list[Any], sizer: _AdaptiveBatch, prefix: bytes = b"",
           records: bool = False) -> int:
    """Writes batch as one frame (after prefix): pickled, or with records
    (shuffle output, read only by pyexec) by _ember_fast.dump_records when
    every record is made of its simple types."""
    if not batch:
        return 0
    data, start = _encode_batch(batch, prefix, records)
    sizer.observe(len(data) - start)
    _write_encoded(data, start, prefix)
    n = len(batch)
    batch.clear()
    return n


def _write_shuffle(records: Iterable[Any], partitioner: Callable[[Any], int], num_reduce: int) -> int:
    """Buckets records by partitioner(key) % num_reduce with the loop in C (the
    module is always there in ember-pyexec, like _ember_io): a frame goes out
    whenever a bucket reaches the batch size, the rest at the end."""
    records = iter(records)
    pairs = type(records) is PairRecords       # groupByKey's map side: unpacked in C
    if pairs:
        records = records.records
    buckets: list[list[Any]] = [[] for _ in range(num_reduce)]
    sizer = _AdaptiveBatch()
    portable = partitioner is portable_hash
    # distinct over split text lines: the frames it no longer combines are
    # written from the text by _write_split_pairs (with the default hash only,
    # which it computes itself)
    tail = records.split_text_tail if type(records) is CombinedRecords and portable else None
    if tail is not None:
        tail.wanted = True
    count = _partition_all(records, partitioner, portable, buckets, sizer, pairs)
    if tail is not None and tail.rest is not None:
        written, records = _write_split_pairs(*tail.rest, buckets, sizer)
        count += written
        if records is not None:
            count += _partition_all(records, portable_hash, True, buckets, sizer, False)
    for reduce_id, bucket in enumerate(buckets):
        count += _flush(bucket, sizer, struct.pack(">i", reduce_id), records=True)
    return count


def _partition_all(records: Iterator[Any], partitioner: Callable[[Any], int], portable: bool,
                   buckets: list[list[Any]], sizer: _AdaptiveBatch, pairs: bool) -> int:
    """Buckets records in C, writing out a bucket whenever it is full; the
    records left in buckets are the caller's to write."""
    count = 0
    while True:
        full = _ember_fast.partition(records, partitioner, portable, buckets, sizer.size, pairs)
        if full < 0:
            return count
        count += _flush(buckets[full], sizer, struct.pack(">i", full), records=True)


_SPLIT_PAIRS_FRAME_BYTES = 64 * 1024     # about what _AdaptiveBatch settles at for edges


def _write_split_pairs(frames: Iterable[bytes], lines_of: Callable[[bytes], list],
                       splitter: Callable[[str], list], sep: Optional[str],
                       buckets: list[list[Any]], sizer: _AdaptiveBatch
                       ) -> tuple[int, Optional[Iterator[Any]]]:
    """The shuffle output of (tuple(line.split(sep)), None) for every line of
    the text frames, bucketed by portable_hash: the records partition and
    dump_records make of what split_lines gives, per bucket in the same order,
    written by _ember_fast.SplitPairsWriter without making them (its frames
    are cut at _SPLIT_PAIRS_FRAME_BYTES). buckets hold _write_shuffle's
    records so far, written out before the writer's first frame so that each
    bucket keeps the input's order. At the first frame that is not ASCII
    (refused by the writer) what the writer holds is written and that frame's
    and all later frames' records are given back (with the records written)
    for _write_shuffle to bucket into the same buckets: one shuffle writer
    per refused frame would write every bucket's few records out per 512 KiB
    text frame, and real UTF-8 text has a non-ASCII byte in nearly every
    frame."""
    frames = iter(frames)
    writer = _ember_fast.SplitPairsWriter(len(buckets), sep, _SPLIT_PAIRS_FRAME_BYTES)
    count = 0
    buckets_written = False

    def write(done: list) -> int:
        for frame, _ in done:
            io.write_frame(frame)
        return sum(n for _, n in done)

    for frame in frames:
        if writer.feed(frame) < 0:
            count += write(writer.flush())      # empty unless a frame was fed
            tuples = chain.from_iterable(
                fused_text.split_frame(f, lines_of, splitter, sep)
                for f in chain((frame,), frames))
            return count, iter(fused_text.paired_with(tuples, None))
        if not buckets_written:
            for reduce_id, bucket in enumerate(buckets):
                count += _flush(bucket, sizer, struct.pack(">i", reduce_id), records=True)
            buckets_written = True
        count += write(writer.frames())
    return count + write(writer.flush()), None


class _CacheTee:
    """Passes records through while copying them to cache block `slot`.

    Records are drawn from upstream a batch at a time and handed on by
    chain.from_iterable, so there is no Python step per record; a batch is
    written as a record frame when _ember_fast.dump_records can (groupByKey's
    ResultIterables included), else pickled.

    With replay (the plan reads the partition again: a "repeat" leaf), the
    records stay available to replay() until the task ends: the objects it
    keeps for the object cache, else the frames it wrote (ReplayFrames)."""

    def __init__(self, records: Iterable[Any], slot: int, block_id: str, budget: int,
                 replay: bool = False) -> None:
        self.records = iter(records)
        self.prefix = struct.pack(">i", slot)
        self.sizer = _AdaptiveBatch()
        self.done = False
        self.block_id = block_id
        self.budget = budget
        self.kept: list[Any] | None = [] if budget > 0 else None
        self.bytes = 0
        self._iterator: Iterator[Any] | None = None
        # A quarter of the task's limit: the shuffle structures the same task builds (a join's
        # dict, the groups) count against the whole of it already.
        self.frames = (ReplayFrames(task_memory_limit() // 4, local_dir(), _loads)
                       if replay else None)
        self.path: tuple[int, ...] = ()    # where in the plan (_Plan.build), for _repeat
        self.position = 0
        self.frames_on = replay and self.kept is None   # frames kept as they are written

    def __iter__(self) -> Iterator[Any]:
        if self._iterator is None:
            self._iterator = chain.from_iterable(self._batches())
        return self._iterator

    def _batches(self) -> Iterator[list[Any]]:
        records = self.records
        while True:
            batch = list(islice(records, self.sizer.size))
            if not batch:
                break
            self._flush(batch)
            yield batch
        self.done = True
        if self.kept is not None:
            _objects.put(self.block_id, self.kept, self.bytes)

    def _flush(self, batch: list[Any]) -> None:
        if self.kept is not None:
            self.kept.extend(batch)
            _long_lived.keep_new()
        io.write_marker(io.CACHE)
        data, start = _encode_batch(batch, self.prefix, True)
        _write_encoded(data, start, self.prefix)
        size = len(data) - start
        self.sizer.observe(size)
        self.bytes += size
        if self.frames_on:
            self.frames.add(data, start)
        if self.kept is not None and self.bytes > self.budget:
            if self.frames is not None:    # what it kept so far, to replay as frames
                self._frames_from(self.kept)
            self.kept = None           # too big to keep as objects
            _long_lived.gave_up()

    def _frames_from(self, records: list[Any]) -> None:
        """Keeps records (the ones kept as objects so far) as frames for replay."""
        for start in range(0, len(records), self.sizer.size):
            self.frames.add(*_encode_batch(records[start:start + self.sizer.size], b"", True))
        self.frames_on = True

    def replay(self) -> Iterator[Any]:
        """The partition's records again, once the tee has them all (finish first)."""
        if self.frames is None or not self.done:
            raise RuntimeError(f"cache write {self.block_id} cannot be replayed")
        if self.kept is not None:
            return iter(self.kept)
        return self.frames.records()

    def close(self) -> None:
        if self.frames is not None:
            self.frames.close()

    def finish(self) -> None:
        """A cached partition must be whole even when the task stopped early (take)."""
        if not self.done:
            for _ in self:
                pass


class CachedLeftSides:
    """A "sides" partition whose left side is a cached partition this process
    keeps as objects. Iterated, it is the usual stream (left records,
    SIDE_BOUNDARY, right records); the co-partitioned hash join instead takes
    the entry, to reuse the index it built from it in an earlier task, and the
    right side alone (ember.join)."""

    def __init__(self, records: Iterator[Any], entry: CachedPartition,
                 right: Callable[[], Iterator[Any]]) -> None:
        self._records = records
        self._entry = entry
        self._right = right
        self._taken = False
        self._iterating = False

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if not self._iterating:        # read one way or the other, not both
            if self._taken:
                raise RuntimeError("the sides of this partition were taken apart already")
            self._taken = self._iterating = True
        return next(self._records)

    def take_cached_left(self) -> tuple[CachedPartition, Iterator[Any]]:
        """(the left side's cache entry, an iterator of the right side's records)."""
        if self._taken:
            raise RuntimeError("the sides of this partition were read already")
        self._taken = True
        return self._entry, iter(self._right())


class _Plan:
    """Builds the iterator of a task's plan (see docs/ARCHITECTURE.md "Task plans").

    Children of a combine node are built only when reached, so they read the
    input pipe in the order the worker writes it.
    """

    def __init__(self, header: dict, funcs: list[bytes], inputs: _Inputs, budget: int) -> None:
        self.funcs = funcs
        self.loaded: dict[int, Any] = {}
        self.inputs = inputs
        self.tees: list[_CacheTee] = []
        self.tee_of_write: dict[int, _CacheTee] = {}
        self.split = header["partition"]
        self.cache_blocks = header.get("cacheBlocks", [])
        self.budget = budget
        self.repeated = _repeated_writes(header["plan"])

    def build(self, node: dict, split: int, path: tuple[int, ...] = ()) -> Iterator[Any]:
        """The node's records; path: the child indexes leading to it from the root."""
        split = node.get("split", split)
        combine = node.get("combine")
        if node.get("input") == "repeat":
            records: Iterator[Any] = self._repeat(node["of"])
        elif combine is None:
            records = self.inputs.leaf(node["input"])
        elif combine == "concat":
            records = self._concat(node["children"], split, path)
        elif combine == "sides":
            records = self._sides(node["children"], split, path)
        elif combine == "zip":
            records = self._zip(node["children"], split, path)
        else:
            records = self._cartesian(node["children"], split, path)
        return self._apply(node, records, split, path)

    def _repeat(self, write: int) -> Iterator[Any]:
        """The records of cache write `write` again, computed once: children
        are built in the order the master walked them, so its tee came first,
        in a child finished before this one was built (_child_done)."""
        tee = self.tee_of_write.get(write)
        if tee is None or not tee.done:
            raise RuntimeError(f"the task's plan repeats cache write {write} before computing it")
        return tee.replay()

    def _child(self, child: dict, split: int, path: tuple[int, ...]) -> Iterator[Any]:
        """A combine node's child (built when its turn comes: its first input is
        the next one), whose tees are finished and inputs read to their end
        once it is exhausted (chained in C: no Python step per record)."""
        end = self.inputs.started + _input_leaves(child)
        return chain(self.build(child, split, path), self._after_child(path, end))

    def _after_child(self, path: tuple[int, ...], inputs_end: int) -> Iterator[Any]:
        self._child_done(path, inputs_end)
        yield from ()

    def _child_done(self, path: tuple[int, ...], inputs_end: int) -> None:
        """A reader that stopped early (take, islice) leaves the child's cache
        tees partial and its inputs unread, and the next child reads the pipe
        after them: the tees are finished, the outermost first (each drives
        those inside it), then what is left of the child's inputs is skipped."""
        inside = [t for t in self.tees if t.path[:len(path)] == path and not t.done]
        for tee in sorted(inside, key=lambda t: (len(t.path), -t.position)):
            tee.finish()
        self.inputs.skip_to(inputs_end)

    def _concat(self, children: list[dict], split: int, path: tuple[int, ...]) -> Iterator[Any]:
        # Each child is built when the one before is exhausted (the pipe's order).
        return chain.from_iterable(self._child(child, split, path + (i,))
                                   for i, child in enumerate(children))

    def _sides(self, children: list[dict], split: int, path: tuple[int, ...]) -> Iterator[Any]:
        first = children[0]
        entry = None
        if (len(children) == 2 and first.get("input") == "pickle" and not first.get("funcs")
                and not first.get("cacheAt")):
            entry = self.inputs.next_object_entry()

        def parts() -> Iterator[Iterable[Any]]:
            for i, child in enumerate(children):
                if i:
                    yield (SIDE_BOUNDARY,)
                yield (entry.records if i == 0 and entry is not None
                       else self._child(child, split, path + (i,)))
        records = chain.from_iterable(parts())
        if entry is None:
            return records
        return CachedLeftSides(records, entry, lambda: self.build(children[1], split, path + (1,)))

    def _zip(self, children: list[dict], split: int, path: tuple[int, ...]) -> Iterator[Any]:
        first = list(self._child(children[0], split, path + (0,)))
        count = 0
        for count, second in enumerate(self.build(children[1], split, path + (1,)), 1):
            if count > len(first):
                break
            yield first[count - 1], second
        if count != len(first):
            raise ValueError("Can only zip RDDs with same number of elements in each partition")

    def _cartesian(self, children: list[dict], split: int,
                   path: tuple[int, ...]) -> Iterator[Any]:
        first = list(self._child(children[0], split, path + (0,)))
        second = list(self.build(children[1], split, path + (1,)))
        for a in first:
            for b in second:
                yield a, b

    def _func(self, index: int) -> Any:
        if index not in self.loaded:
            self.loaded[index] = _functions.load(self.funcs[index])
        return self.loaded[index]

    def _apply(self, node: dict, records: Iterable[Any], split: int,
               path: tuple[int, ...]) -> Iterator[Any]:
        funcs = node.get("funcs", [])
        tees_at = node.get("cacheAt", [])
        iterator: Iterable[Any] = records
        for position in range(len(funcs) + 1):
            for at, slot in tees_at:
                if at == position:
                    tee = _CacheTee(iterator, slot, self.cache_blocks[slot], self.budget,
                                    replay=slot in self.repeated)
                    tee.path, tee.position = path, at
                    self.tees.append(tee)
                    self.tee_of_write[slot] = tee
                    iterator = iter(tee)
            if position < len(funcs):
                iterator = self._func(funcs[position])(split, iterator)
        return iter(iterator)


def _input_leaves(node: dict) -> int:
    """The inputs the plan node reads (a "repeat" leaf reads none)."""
    if "combine" in node:
        return sum(_input_leaves(child) for child in node["children"])
    return 0 if node.get("input") == "repeat" else 1


def _repeated_writes(node: dict) -> set[int]:
    """The cache writes a "repeat" leaf of the plan reads again."""
    if node.get("input") == "repeat":
        return {node["of"]}
    found: set[int] = set()
    for child in node.get("children", ()):
        found |= _repeated_writes(child)
    return found


def _run(header: dict, funcs: list[bytes], partitioner_frame: bytes | None,
         inputs: _Inputs, budget: int) -> int:
    plan = _Plan(header, funcs, inputs, budget)
    try:
        iterator = plan.build(header["plan"], header["partition"])
        if header["numReduce"]:
            partitioner = _functions.load(partitioner_frame)
            written = _write_shuffle(iterator, partitioner, header["numReduce"])
        else:
            written = _write_results(iterator)
        for tee in reversed(plan.tees):   # the outermost drives the ones inside it
            tee.finish()
    finally:
        for tee in plan.tees:
            tee.close()
    return written


def _metrics_json(source: _Inputs, written: int, python_ms: int, updates: str | None) -> bytes:
    """The metrics frame; formatted by hand, as json.dumps of the dict cost
    a tiny task more than its function call."""
    held = _objects.held()
    text = (f'{{"recordsIn":{int(source.records)},"recordsOut":{int(written)},'
            f'"pythonMs":{python_ms},"objectInputs":{int(source.served)},'
            f'"functionCacheHits":{int(_functions.hits)},'
            f'"objects":{json.dumps(held) if held else "[]"}')
    if updates:
        text += f',"accumulators":{json.dumps(updates)}'
    return (text + "}").encode()


def run_task(header_frame: bytes) -> None:
    header = json.loads(header_frame.decode())
    memory_limit = header.get("objectMemoryLimit", 0)
    io.bound_heap(memory_limit)
    funcs = [io.read_frame() for _ in range(header["numFuncs"])]
    partitioner_frame = io.read_frame() if header["numReduce"] else None
    for bid in header.get("broadcasts", []):
        broadcast.register_worker_value(bid, io.read_frame())
    source = _Inputs(header["numInputs"], header.get("objectInputs", {}),
                     header.get("keepInputs", {}))
    started = time.monotonic()
    TaskContext._set(header)
    accumulators.reset_task()
    puts_before = _objects.puts
    failure = None
    try:
        budget = _object_budget(header)
        _objects.begin_task(header.get("appId", ""), budget,
                            header.get("dropObjects", []), source.from_objects.values())
        _functions.begin_task(header.get("appId", ""), header.get("properties", {}))
        compat.check_driver(header.get("properties", {}))
        pyfiles.install(header.get("properties", {}))
        written = _run(header, funcs, partitioner_frame, source, budget)
        source.drain()
    except BaseException:  # noqa: BLE001 - everything a user function raises is reported
        failure = traceback.format_exc()
        source.drain()
        if _objects.puts != puts_before:
            # The worker stores nothing of a failed task: what it kept would
            # not match the blocks the worker knows of.
            _objects.drop_since(puts_before)
    finally:
        TaskContext._set(None)
        _objects.end_task()
    if failure is not None:
        # What the failed task freed goes back past half the budget too: the
        # process stays for the next task.
        _objects.over_memory(memory_limit)
        io.write_marker(io.ERROR)
        io.write_frame(failure.encode("utf-8", "replace"))
        io.flush()
        return
    python_ms = int((time.monotonic() - started) * 1000)
    updates = accumulators.task_updates()
    _objects.over_memory(memory_limit)
    io.write_marker(io.END)
    io.write_frame(_metrics_json(source, written, python_ms, updates))
    io.flush()                  # the task is done: the worker may report it now
    _long_lived.after_task()


def _profiled(run: Callable[[bytes], None], directory: str) -> Callable[[bytes], None]:
    """run_task under cProfile, one stats file per task in directory
    (EMBER_PYEXEC_PROFILE: where the time of user code and of the runtime goes).
    Timed in this process's CPU time: on a busy machine wall time counts the
    time other processes had the core."""
    import cProfile
    os.makedirs(directory, exist_ok=True)

    def profiled(header_frame: bytes) -> None:
        header = json.loads(header_frame)
        profile = cProfile.Profile(time.process_time)
        profile.runcall(run, header_frame)
        name = f"stage{header.get('stageId', 0)}-part{header.get('partition', 0)}-{os.getpid()}"
        profile.dump_stats(os.path.join(directory, f"{name}-{time.monotonic_ns()}.prof"))
    return profiled


def main() -> int:
    """Serves tasks until the worker closes the pipe; returns the exit code."""
    serve = run_task
    gc.set_threshold(*GC_THRESHOLDS)
    if os.environ.get("EMBER_PYEXEC_PROFILE"):
        serve = _profiled(run_task, os.environ["EMBER_PYEXEC_PROFILE"])
    while True:
        try:
            frame = io.read_frame()
        except EOFError:
            return 0
        if isinstance(frame, int):
            continue  # a stray marker between tasks carries nothing
        serve(frame)
