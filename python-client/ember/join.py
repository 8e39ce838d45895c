"""cogroup and the joins, as PySpark's ``pyspark.join``.

Each input's values are tagged with its position, the inputs are unioned and
grouped by key; a union of inputs that share a partitioner keeps it, so
``groupByKey`` then needs no new shuffle. The values of one key are split by
tag into lists that spill to local disk when the key's group did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence

from ember import lineage
from ember.resultiterable import ResultIterable
from ember.shuffle import ExternalList, MemoryBudget, task_memory_limit

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
    return lambda v: (tag, v)


def python_cogroup(rdds: Sequence["RDD"], numPartitions: Optional[int]) -> "RDD":
    """(key, (ResultIterable of each input's values)) for every key of any input."""
    tagged = [rdd.mapValues(_tagger(i)) for i, rdd in enumerate(rdds)]
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
                    dispatch: Callable[[ResultIterable], Iterable[Any]]) -> "RDD":
    vs = rdd.mapValues(_tagger(1))
    ws = other.mapValues(_tagger(2))
    return _union([vs, ws]).groupByKey(numPartitions).flatMapValues(dispatch)


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
    return _do_python_join(rdd, other, numPartitions, dispatch)


def python_right_outer_join(rdd: "RDD", other: "RDD", numPartitions: Optional[int]) -> "RDD":
    """Right outer join: (k, (None, w)) when rdd has no value for k."""
    def dispatch(values: ResultIterable) -> Iterator[tuple]:
        vbuf, wbuf = _split(values)
        return _pairs(vbuf if len(vbuf) else [None], wbuf)
    return _do_python_join(rdd, other, numPartitions, dispatch)


def python_full_outer_join(rdd: "RDD", other: "RDD", numPartitions: Optional[int]) -> "RDD":
    """Full outer join: None on the side that has no value for k."""
    def dispatch(values: ResultIterable) -> Iterator[tuple]:
        vbuf, wbuf = _split(values)
        return _pairs(vbuf if len(vbuf) else [None], wbuf if len(wbuf) else [None])
    return _do_python_join(rdd, other, numPartitions, dispatch)
