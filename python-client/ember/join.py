"""cogroup and the joins, as PySpark's ``pyspark.join``.

Each input's values are tagged with its position, the inputs are unioned and
grouped by key. The values of one key are split by tag into lists that spill
to local disk when the key's group did. Joins of two inputs that share the
partitioner run instead as a hash join inside each partition, reading both
inputs untagged through a "sides" union (left side, SIDE_BOUNDARY, right side).
"""

from __future__ import annotations


from itertools import chain
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence

from ember import lineage, shuffle
from ember.resultiterable import ResultIterable
from ember.shuffle import (LIST_AGGREGATOR, ExternalGroupBy, ExternalList, MemoryBudget,
                           Partitioner, _Sizer, portable_hash, task_memory_limit)

if TYPE_CHECKING:
    from ember.rdd import RDD


def _union(rdds: Sequence["RDD"]) -> "RDD":
    """The union of all rdds, keeping a partitioner they all share (as PySpark's unions)."""
    union = lineage.union(rdds[0].ctx, list(rdds))
    first = rdds[0].partitioner
    if all(r.partitioner == first for r in rdds) \
            and rdds[0].getNumPartitions() == union.getNumPartitions():
        union.partitioner = first
    return union


def _buffers(values: ResultIterable, count: int) -> list[Any]:
    """Lists for the values of one key, on disk-backed lists when the group spilled."""
    if isinstance(getattr(values, "data", None), ExternalList):
        budget = MemoryBudget(task_memory_limit())
        return [ExternalList(budget=budget) for _ in range(count)]
    return [[] for _ in range(count)]


def _tagger(tag: int) -> Callable[[Any], tuple]:
    """(k, v) -> (k, (tag, v)) in one call per record (mapValues would make two)."""
    def tag_pair(kv: Any) -> tuple:
        return kv[0], (tag, kv[1])
    return tag_pair


def _tagged(rdd: "RDD", tag: int) -> "RDD":
    return rdd.map(_tagger(tag), preservesPartitioning=True)


def python_cogroup(rdds: Sequence["RDD"], numPartitions: Optional[int]) -> "RDD":
    """(key, (ResultIterable of each input's values)) for every key of any input."""
    tagged = [_tagged(rdd, i) for i, rdd in enumerate(rdds)]
    count = len(tagged)

    def dispatch(values: ResultIterable) -> tuple:
        bufs = _buffers(values, count)
        for n, v in values:
            bufs[n].append(v)
        return tuple(ResultIterable(vs) for vs in bufs)
    return _union(tagged).groupByKey(numPartitions).mapValues(dispatch)


def _split(values: ResultIterable) -> tuple[Any, Any]:
    vbuf, wbuf = _buffers(values, 2)
    for n, v in values:
        if n == 1:
            vbuf.append(v)
        elif n == 2:
            wbuf.append(v)
    return vbuf, wbuf


def _do_python_join(rdd: "RDD", other: "RDD", numPartitions: Optional[int],
                    dispatch: Callable[[ResultIterable], Iterable[Any]],
                    outer_left: bool = False, outer_right: bool = False) -> "RDD":
    n = numPartitions if numPartitions is not None else rdd._defaultReducePartitions()
    partitioner = Partitioner(n, portable_hash)
    if (rdd.partitioner == partitioner and other.partitioner == partitioner
            and rdd.getNumPartitions() == other.getNumPartitions() == n):
        # Co-partitioned (e.g. PageRank's cached links and its ranks): each
        # partition holds all values of its keys, so a hash join needs neither
        # a shuffle nor tags nor a full grouping of both sides.
        def hash_join(iterator: Iterable[Any]) -> Iterator[Any]:
            take = getattr(iterator, "take_cached_left", None)
            if take is not None:       # the left side is a cached partition kept as objects
                entry, right = take()
                index = entry.derive("hash_join_left", _left_index)
                return _probe(index, right, outer_left, outer_right)
            return _hash_join(iter(iterator), dispatch, outer_left, outer_right)
        both = lineage.sides(rdd.ctx, [rdd, other])
        both.partitioner = partitioner
        return both.mapPartitions(hash_join, preservesPartitioning=True)
    union = _union([_tagged(rdd, 1), _tagged(other, 2)])
    return union.groupByKey(numPartitions).flatMapValues(dispatch)


def _hash_join(records: Iterator[Any], dispatch: Callable[[ResultIterable], Iterable[Any]],
               outer_left: bool, outer_right: bool) -> Iterator[Any]:
    """Joins one co-partitioned partition: the left side's records, up to
    SIDE_BOUNDARY, in a dict; the right side's streamed past it.

    When the left side outgrows the task's memory limit, the partition is
    grouped the general way instead (ExternalGroupBy spills), so the result is
    the same either way."""
    return chain.from_iterable(_hash_join_parts(records, dispatch, outer_left, outer_right))


def _hash_join_parts(records: Iterator[Any],
                     dispatch: Callable[[ResultIterable], Iterable[Any]],
                     outer_left: bool, outer_right: bool) -> Iterator[Iterable[Any]]:
    """_hash_join's records in parts, for chain.from_iterable: batches of the
    C probe loop are lists, so the consumer's steps through them are C calls."""
    limit = task_memory_limit()
    sizer = _Sizer()
    left: dict[Any, list] = {}
    used = 0
    n = 0
    for record in records:
        if record is lineage.SIDE_BOUNDARY:
            break
        k, v = record
        values = left.get(k)
        if values is None:
            left[k] = [v]
            used += 200
        else:
            values.append(v)
        n += 1
        if not n & 31:                 # sizes sampled: measuring each value costs more
            used += 32 * sizer.size(v)
        if used > limit:
            yield _grouped_join(left, records, dispatch)
            return
    matched: Optional[set] = set() if outer_left else None
    if shuffle._ember_fast is not None:
        yield from _fast_probe(left, list, records, matched, outer_right)
    else:
        yield _python_probe(left, records, matched, outer_right)
    if matched is not None:
        yield _unmatched_lists(left, matched)


def _python_probe(left: dict[Any, list], records: Iterator[Any], matched: Optional[set],
                  outer_right: bool) -> Iterator[Any]:
    for k, w in records:
        values = left.get(k)
        if values is None:
            if outer_right:
                yield k, (None, w)
            continue
        if matched is not None:
            matched.add(k)
        for v in values:
            yield k, (v, w)


def _unmatched_lists(left: dict[Any, list], matched: set) -> Iterator[Any]:
    for k, values in left.items():
        if k not in matched:
            for v in values:
                yield k, (v, None)


class _Several(list):
    """The left values of a key that has more than one, in _left_index."""


def _left_index(records: list) -> tuple[dict, int]:
    """The hash join's left side built once from a cached partition kept as
    objects (ember.worker_runtime.CachedPartition.derive): key -> its value,
    or a _Several list of its values in order. Returns it with its size as the
    object cache counts it: a pointer per key, since its keys and values are
    the records' own, already counted (the cache's budget is in pickled bytes;
    a larger proxy could evict the very partition the index serves)."""
    index: dict[Any, Any] = {}
    several = 0
    for k, v in records:
        if k in index:
            values = index[k]
            if type(values) is _Several:
                values.append(v)
            else:
                index[k] = _Several((values, v))
                several += 1
        else:
            index[k] = v
    return index, 8 * len(index) + 8 * several


def _probe(index: dict, right: Iterator[Any], outer_left: bool,
           outer_right: bool) -> Iterator[Any]:
    """_hash_join's second half over an index from _left_index: the same
    records in the same order."""
    matched: Optional[set] = set() if outer_left else None
    if shuffle._ember_fast is not None:
        return chain(chain.from_iterable(_fast_probe(index, _Several, right, matched,
                                                     outer_right)),
                     _unmatched_index(index, matched))
    return _python_probe_index(index, right, matched, outer_right)


def _python_probe_index(index: dict, right: Iterator[Any], matched: Optional[set],
                        outer_right: bool) -> Iterator[Any]:
    missing = _MISSING
    for k, w in right:
        v = index.get(k, missing)
        if v is missing:
            if outer_right:
                yield k, (None, w)
            continue
        if matched is not None:
            matched.add(k)
        if type(v) is _Several:
            for one in v:
                yield k, (one, w)
        else:
            yield k, (v, w)
    yield from _unmatched_index(index, matched)


def _unmatched_index(index: dict, matched: Optional[set]) -> Iterator[Any]:
    """(k, (v, None)) for each left value of a key no right record had (left outer joins)."""
    if matched is not None:
        for k, v in index.items():
            if k not in matched:
                if type(v) is _Several:
                    for one in v:
                        yield k, (one, None)
                else:
                    yield k, (v, None)


_MISSING = object()

_PROBE_BATCH = 64        # right records per call into C: a generator step per batch, not per key


def _fast_probe(index: dict, several: type, right: Iterator[Any], matched: Optional[set],
                outer_right: bool) -> Iterator[list]:
    """The probe loops of _hash_join (several: list) and _probe (_Several) in
    _ember_fast, as lists of joined records to chain: the same records in the
    same order, and the records before an exception still come out before it.
    It reads up to _PROBE_BATCH right records ahead of what was consumed."""
    probe = shuffle._ember_fast.probe
    exhausted = False
    while not exhausted:
        out: list = []
        try:
            exhausted = probe(index, several, right, out, matched, outer_right, _PROBE_BATCH)
        except BaseException:
            yield out
            raise
        yield out


def _tag_sides(rest: Iterator[Any]) -> Iterator[tuple]:
    """The rest of a sides partition as tagged records: 1 up to the boundary, then 2."""
    tag = 1
    for record in rest:
        if record is lineage.SIDE_BOUNDARY:
            tag = 2
            continue
        k, v = record
        yield k, (tag, v)


def _grouped_join(left: dict[Any, list], rest: Iterator[Any],
                  dispatch: Callable[[ResultIterable], Iterable[Any]]) -> Iterator[Any]:
    merger = ExternalGroupBy(LIST_AGGREGATOR, task_memory_limit())
    merger.mergeCombiners((k, [(1, v) for v in values]) for k, values in left.items())
    left.clear()
    merger.mergeValues(_tag_sides(rest))
    for k, values in merger.items():
        for x in dispatch(ResultIterable(values)):
            yield k, x


def _pairs(vbuf: Iterable[Any], wbuf: Iterable[Any]) -> Iterator[tuple]:
    for v in vbuf:
        for w in wbuf:
            yield v, w


def python_join(rdd: "RDD", other: "RDD", numPartitions: Optional[int]) -> "RDD":
    """Inner join: (k, (v, w)) for every v of rdd and w of other with key k."""
    def dispatch(values: ResultIterable) -> Iterator[tuple]:
        return _pairs(*_split(values))
    return _do_python_join(rdd, other, numPartitions, dispatch)


def python_left_outer_join(rdd: "RDD", other: "RDD", numPartitions: Optional[int]) -> "RDD":
    """Left outer join: (k, (v, None)) when other has no value for k."""
    def dispatch(values: ResultIterable) -> Iterator[tuple]:
        vbuf, wbuf = _split(values)
        return _pairs(vbuf, wbuf if len(wbuf) else [None])
    return _do_python_join(rdd, other, numPartitions, dispatch, outer_left=True)


def python_right_outer_join(rdd: "RDD", other: "RDD", numPartitions: Optional[int]) -> "RDD":
    """Right outer join: (k, (None, w)) when rdd has no value for k."""
    def dispatch(values: ResultIterable) -> Iterator[tuple]:
        vbuf, wbuf = _split(values)
        return _pairs(vbuf if len(vbuf) else [None], wbuf)
    return _do_python_join(rdd, other, numPartitions, dispatch, outer_right=True)


def python_full_outer_join(rdd: "RDD", other: "RDD", numPartitions: Optional[int]) -> "RDD":
    """Full outer join: None on the side that has no value for k."""
    def dispatch(values: ResultIterable) -> Iterator[tuple]:
        vbuf, wbuf = _split(values)
        return _pairs(vbuf if len(vbuf) else [None], wbuf if len(wbuf) else [None])
    return _do_python_join(rdd, other, numPartitions, dispatch, outer_left=True,
                           outer_right=True)
