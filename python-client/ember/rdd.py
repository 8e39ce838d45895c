"""RDDs: lazily built lineage, run as jobs on the cluster by actions.

Method names and semantics follow PySpark's ``pyspark.rdd.RDD``.
"""

from __future__ import annotations

import heapq
import operator
import os
import shutil
from collections import defaultdict
from functools import reduce as _reduce
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Iterator, Optional

from ember.errors import EmberError
from ember.broadcast import collect_broadcasts
from ember.serializers import dumps_batch, dumps_function
from ember.shuffle import Partitioner, portable_hash
from ember.storagelevel import StorageLevel
from ember.taskcontext import TaskContext

if TYPE_CHECKING:
    from ember.context import SparkContext


class RDD:
    """A resilient distributed dataset: partitions computed on the cluster.

    Created by a SparkContext (``parallelize``, ``textFile``) or by a
    transformation of another RDD.
    """

    def __init__(self, ctx: "SparkContext", num_partitions: int) -> None:
        self.ctx = ctx
        self._id = ctx._new_rdd_id()
        self._num_partitions = num_partitions
        self._name: Optional[str] = None
        self.partitioner: Optional[Partitioner] = None
        self.is_cached = False
        self._storage_level = StorageLevel.NONE
        self._broadcast_ids: set[int] = set()   # broadcasts its functions use
        self._checkpoint_wanted = False
        self._checkpoint_files: Optional[list[str]] = None
        self._locally_checkpointed = False

    # ---- lineage ---------------------------------------------------------
    def _dependencies(self) -> list["RDD"]:
        return []

    def _node(self) -> dict:
        raise NotImplementedError

    def _base_node(self, kind: str) -> dict:
        return {"id": self._id, "kind": kind, "numPartitions": self._num_partitions,
                "name": self._name or type(self).__name__}

    # ---- metadata ----------------------------------------------------------
    @property
    def context(self) -> "SparkContext":
        return self.ctx

    @property
    def id(self) -> int:
        return self._id

    def name(self) -> Optional[str]:
        return self._name

    def setName(self, name: str) -> "RDD":
        self._name = name
        return self

    def getNumPartitions(self) -> int:
        return self._num_partitions

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{self._id}] {self._name or ''}".rstrip()

    # ---- persistence -------------------------------------------------------
    def persist(self, storageLevel: StorageLevel = StorageLevel.MEMORY_ONLY) -> "RDD":
        """Keeps the partitions in the block managers once computed.

        Later jobs read them instead of recomputing the lineage; a partition
        that was evicted or lost is recomputed transparently.

        Examples
        --------
        >>> rdd = sc.parallelize(range(4)).persist(StorageLevel.MEMORY_AND_DISK)  # doctest: +SKIP
        >>> rdd.getStorageLevel() == StorageLevel.MEMORY_AND_DISK  # doctest: +SKIP
        True
        """
        self.is_cached = True
        self._storage_level = storageLevel
        return self

    def cache(self) -> "RDD":
        """``persist(StorageLevel.MEMORY_ONLY)``."""
        return self.persist(StorageLevel.MEMORY_ONLY)

    def unpersist(self, blocking: bool = False) -> "RDD":
        """Drops the cached partitions from every block manager."""
        if self.is_cached:
            self.is_cached = False
            self._storage_level = StorageLevel.NONE
            self.ctx._jobs.unpersist(self)
        return self

    def getStorageLevel(self) -> StorageLevel:
        return self._storage_level

    # ---- checkpoints -------------------------------------------------------
    def checkpoint(self) -> None:
        """Writes the RDD to the checkpoint directory after its next action;
        from then on jobs read those files and its lineage stops there."""
        if self.ctx._checkpoint_dir is None:
            raise EmberError("Checkpoint directory has not been set in the SparkContext: call "
                             "sc.setCheckpointDir(dir) first")
        self._checkpoint_wanted = True

    def localCheckpoint(self) -> None:
        """Marks the RDD checkpointed in the block managers (``MEMORY_AND_DISK``).

        Unlike Spark, a lost block is still recomputed from lineage.
        """
        self.persist(StorageLevel.MEMORY_AND_DISK)
        self._locally_checkpointed = True

    def isCheckpointed(self) -> bool:
        return self._checkpoint_files is not None or self._locally_checkpointed

    def isLocallyCheckpointed(self) -> bool:
        return self._locally_checkpointed

    def getCheckpointFile(self) -> Optional[str]:
        if self._checkpoint_files is None:
            return None
        return os.path.dirname(self._checkpoint_files[0]) if self._checkpoint_files else None

    def _is_pipelinable(self) -> bool:
        """Whether a narrow child may fold its function into ours: not when we
        must exist as ourselves on the cluster (cached or checkpointed)."""
        return not (self.is_cached or self._checkpoint_wanted
                    or self._checkpoint_files is not None)

    def _lineage_parents(self) -> list["RDD"]:
        """The parents jobs depend on: none once the RDD is checkpointed to files."""
        return [] if self._checkpoint_files is not None else self._dependencies()

    # ---- narrow transformations ----------------------------------------
    def mapPartitionsWithIndex(self, f: Callable[[int, Iterator[Any]], Iterable[Any]],
                               preservesPartitioning: bool = False) -> "RDD":
        """Applies f(partition_index, iterator) to every partition.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4], 2).mapPartitionsWithIndex(
        ...     lambda i, it: [(i, sum(it))]).collect()  # doctest: +SKIP
        [(0, 3), (1, 7)]
        """
        return PipelinedRDD(self, f, preservesPartitioning)

    def mapPartitions(self, f: Callable[[Iterator[Any]], Iterable[Any]],
                      preservesPartitioning: bool = False) -> "RDD":
        """Applies f to the iterator of every partition."""
        return self.mapPartitionsWithIndex(lambda _, it: f(it), preservesPartitioning)

    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> "RDD":
        """Applies f to every element.

        Examples
        --------
        >>> sc.parallelize([1, 2]).map(lambda x: x * 10).collect()  # doctest: +SKIP
        [10, 20]
        """
        return self.mapPartitionsWithIndex(lambda _, it: map(f, it), preservesPartitioning)

    def flatMap(self, f: Callable[[Any], Iterable[Any]],
                preservesPartitioning: bool = False) -> "RDD":
        """Applies f to every element and flattens the results."""
        def flat(_: int, iterator: Iterator[Any]) -> Iterator[Any]:
            for x in iterator:
                yield from f(x)
        return self.mapPartitionsWithIndex(flat, preservesPartitioning)

    def filter(self, f: Callable[[Any], bool]) -> "RDD":
        """Keeps the elements for which f is true."""
        return self.mapPartitionsWithIndex(lambda _, it: filter(f, it), True)

    def glom(self) -> "RDD":
        """One list per partition."""
        return self.mapPartitionsWithIndex(lambda _, it: [list(it)])

    def keyBy(self, f: Callable[[Any], Any]) -> "RDD":
        return self.map(lambda x: (f(x), x))

    def mapValues(self, f: Callable[[Any], Any]) -> "RDD":
        return self.map(lambda kv: (kv[0], f(kv[1])), preservesPartitioning=True)

    def flatMapValues(self, f: Callable[[Any], Iterable[Any]]) -> "RDD":
        return self.flatMap(lambda kv: ((kv[0], v) for v in f(kv[1])),
                            preservesPartitioning=True)

    def keys(self) -> "RDD":
        return self.map(lambda kv: kv[0])

    def values(self) -> "RDD":
        return self.map(lambda kv: kv[1])

    def union(self, other: "RDD") -> "RDD":
        """The elements of both RDDs. RDDs sharing a partitioner are united
        partition by partition (keeping it), so a later groupByKey or join on
        them needs no shuffle, as in Spark.

        Examples
        --------
        >>> sc.parallelize([1, 2], 2).union(sc.parallelize([3], 1)).collect()  # doctest: +SKIP
        [1, 2, 3]
        """
        return union_of(self.ctx, [self, other])

    def __add__(self, other: "RDD") -> "RDD":
        return self.union(other)

    # ---- shuffles --------------------------------------------------------
    def _default_reduce_partitions(self) -> int:
        if self.ctx.getConf().contains("spark.default.parallelism"):
            return self.ctx.defaultParallelism
        return max(self.getNumPartitions(), 1)

    def partitionBy(self, numPartitions: Optional[int],
                    partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Repartitions (key, value) pairs by partitionFunc(key) % numPartitions."""
        if numPartitions is None:
            numPartitions = self._default_reduce_partitions()
        partitioner = Partitioner(numPartitions, partitionFunc)
        if self.partitioner == partitioner:
            return self
        return ShuffledRDD(self, partitioner)

    def combineByKey(self, createCombiner: Callable[[Any], Any],
                     mergeValue: Callable[[Any, Any], Any],
                     mergeCombiners: Callable[[Any, Any], Any],
                     numPartitions: Optional[int] = None,
                     partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Generic per-key aggregation with a map-side combine."""
        if numPartitions is None:
            numPartitions = self._default_reduce_partitions()

        def combine_locally(iterator: Iterator[Any]) -> Iterable[Any]:
            combined: dict[Any, Any] = {}
            for k, v in iterator:
                combined[k] = mergeValue(combined[k], v) if k in combined else createCombiner(v)
            return combined.items()

        def merge_combiners(iterator: Iterator[Any]) -> Iterable[Any]:
            merged: dict[Any, Any] = {}
            for k, c in iterator:
                merged[k] = mergeCombiners(merged[k], c) if k in merged else c
            return merged.items()

        local = self.mapPartitions(combine_locally, preservesPartitioning=True)
        shuffled = local.partitionBy(numPartitions, partitionFunc)
        return shuffled.mapPartitions(merge_combiners, preservesPartitioning=True)

    def reduceByKey(self, func: Callable[[Any, Any], Any], numPartitions: Optional[int] = None,
                    partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Merges the values of each key with func.

        Examples
        --------
        >>> sc.parallelize([("a", 1), ("b", 1), ("a", 1)]).reduceByKey(
        ...     lambda a, b: a + b).collect()  # doctest: +SKIP
        [('a', 2), ('b', 1)]
        """
        return self.combineByKey(lambda x: x, func, func, numPartitions, partitionFunc)

    def foldByKey(self, zeroValue: Any, func: Callable[[Any, Any], Any],
                  numPartitions: Optional[int] = None,
                  partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        import copy
        return self.combineByKey(lambda v: func(copy.deepcopy(zeroValue), v), func, func,
                                 numPartitions, partitionFunc)

    def aggregateByKey(self, zeroValue: Any, seqFunc: Callable[[Any, Any], Any],
                       combFunc: Callable[[Any, Any], Any], numPartitions: Optional[int] = None,
                       partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        import copy
        return self.combineByKey(lambda v: seqFunc(copy.deepcopy(zeroValue), v), seqFunc,
                                 combFunc, numPartitions, partitionFunc)

    def groupByKey(self, numPartitions: Optional[int] = None,
                   partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Groups the values of each key into a list."""
        def append(acc: list, v: Any) -> list:
            acc.append(v)
            return acc

        def extend(a: list, b: list) -> list:
            a.extend(b)
            return a
        return self.combineByKey(lambda v: [v], append, extend, numPartitions, partitionFunc)

    def groupBy(self, f: Callable[[Any], Hashable], numPartitions: Optional[int] = None,
                partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        return self.map(lambda x: (f(x), x)).groupByKey(numPartitions, partitionFunc)

    def distinct(self, numPartitions: Optional[int] = None) -> "RDD":
        return (self.map(lambda x: (x, None))
                .reduceByKey(lambda x, _: x, numPartitions)
                .map(lambda kv: kv[0]))

    def cogroup(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """(key, (values in self, values in other)) for every key of either."""
        return _cogroup([self, other], numPartitions)

    def groupWith(self, other: "RDD", *others: "RDD") -> "RDD":
        return _cogroup([self, other, *others], None)

    def join(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """Inner join of two pair RDDs: (k, (v, w)) for every matching pair."""
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in vw[0] for w in vw[1]])

    def leftOuterJoin(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in vw[0] for w in (vw[1] or [None])])

    def rightOuterJoin(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in (vw[0] or [None]) for w in vw[1]])

    def fullOuterJoin(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        return self.cogroup(other, numPartitions).flatMapValues(
            lambda vw: [(v, w) for v in (vw[0] or [None]) for w in (vw[1] or [None])])

    # ---- actions -----------------------------------------------------------
    def _run(self, partitions: Optional[Iterable[int]] = None) -> list[Any]:
        return self.ctx._jobs.run(self, partitions)

    def collect(self) -> list[Any]:
        """All elements, partition by partition, in order."""
        return self._run()

    def count(self) -> int:
        """Number of elements."""
        return sum(self.mapPartitions(lambda it: [sum(1 for _ in it)])._run())

    def reduce(self, f: Callable[[Any, Any], Any]) -> Any:
        """Reduces the elements with a commutative, associative f."""
        def reduce_partition(iterator: Iterator[Any]) -> Iterable[Any]:
            iterator = iter(iterator)
            try:
                initial = next(iterator)
            except StopIteration:
                return []
            return [_reduce(f, iterator, initial)]
        values = self.mapPartitions(reduce_partition)._run()
        if not values:
            raise ValueError("Can not reduce() empty RDD")
        return _reduce(f, values)

    def fold(self, zeroValue: Any, op: Callable[[Any, Any], Any]) -> Any:
        def fold_partition(iterator: Iterator[Any]) -> Iterable[Any]:
            acc = zeroValue
            for x in iterator:
                acc = op(acc, x)
            return [acc]
        return _reduce(op, self.mapPartitions(fold_partition)._run(), zeroValue)

    def aggregate(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any],
                  combOp: Callable[[Any, Any], Any]) -> Any:
        def aggregate_partition(iterator: Iterator[Any]) -> Iterable[Any]:
            acc = zeroValue
            for x in iterator:
                acc = seqOp(acc, x)
            return [acc]
        return _reduce(combOp, self.mapPartitions(aggregate_partition)._run(), zeroValue)

    def sum(self) -> Any:
        return self.mapPartitions(lambda it: [sum(it)]).fold(0, operator.add)

    def max(self, key: Optional[Callable[[Any], Any]] = None) -> Any:
        return self.reduce(lambda a, b: max(a, b, key=key) if key else max(a, b))

    def min(self, key: Optional[Callable[[Any], Any]] = None) -> Any:
        return self.reduce(lambda a, b: min(a, b, key=key) if key else min(a, b))

    def mean(self) -> float:
        total, n = self.mapPartitions(lambda it: [_sum_count(it)]).fold(
            (0, 0), lambda a, b: (a[0] + b[0], a[1] + b[1]))
        return float("nan") if n == 0 else total / n

    def isEmpty(self) -> bool:
        return self.getNumPartitions() == 0 or len(self.take(1)) == 0

    def foreach(self, f: Callable[[Any], None]) -> None:
        def run(iterator: Iterator[Any]) -> Iterable[Any]:
            for x in iterator:
                f(x)
            return []
        self.mapPartitions(run)._run()

    def foreachPartition(self, f: Callable[[Iterator[Any]], None]) -> None:
        def run(iterator: Iterator[Any]) -> Iterable[Any]:
            f(iterator)
            return []
        self.mapPartitions(run)._run()

    def take(self, num: int) -> list[Any]:
        """The first num elements, scanning as few partitions as it can (as PySpark)."""
        items: list[Any] = []
        total = self.getNumPartitions()
        scanned = 0
        while len(items) < num and scanned < total:
            to_try = 1
            if scanned > 0:
                if not items:
                    to_try = scanned * 4
                else:
                    to_try = int(1.5 * num * scanned / len(items)) - scanned
                    to_try = min(max(to_try, 1), scanned * 4)
            left = num - len(items)

            def take_up_to(iterator: Iterator[Any], left: int = left) -> Iterator[Any]:
                for i, x in enumerate(iterator):
                    if i >= left:
                        return
                    yield x
            parts = range(scanned, min(scanned + to_try, total))
            items += self.mapPartitions(take_up_to)._run(parts)
            scanned += to_try
        return items[:num]

    def first(self) -> Any:
        rs = self.take(1)
        if rs:
            return rs[0]
        raise ValueError("RDD is empty")

    def top(self, num: int, key: Optional[Callable[[Any], Any]] = None) -> list[Any]:
        parts = self.mapPartitions(lambda it: [heapq.nlargest(num, it, key=key)])._run()
        return heapq.nlargest(num, (x for p in parts for x in p), key=key)

    def takeOrdered(self, num: int, key: Optional[Callable[[Any], Any]] = None) -> list[Any]:
        parts = self.mapPartitions(lambda it: [heapq.nsmallest(num, it, key=key)])._run()
        return heapq.nsmallest(num, (x for p in parts for x in p), key=key)

    def countByValue(self) -> dict[Any, int]:
        def count_partition(iterator: Iterator[Any]) -> Iterable[Any]:
            counts: dict[Any, int] = defaultdict(int)
            for x in iterator:
                counts[x] += 1
            return [counts]

        def merge(a: dict, b: dict) -> dict:
            for k, v in b.items():
                a[k] += v
            return a
        return self.mapPartitions(count_partition).reduce(merge) if self.getNumPartitions() \
            else defaultdict(int)

    def countByKey(self) -> dict[Any, int]:
        return self.map(lambda kv: kv[0]).countByValue()

    def collectAsMap(self) -> dict[Any, Any]:
        return dict(self.collect())

    def lookup(self, key: Any) -> list[Any]:
        return self.filter(lambda kv: kv[0] == key).values().collect()

    def saveAsTextFile(self, path: str, compressionCodecClass: Optional[str] = None) -> None:
        """Writes one ``part-NNNNN`` per partition and ``_SUCCESS``.

        Each part appears through an atomic rename when its task succeeds, so
        a failed or retried attempt never leaves a partial or duplicate file.
        An existing output directory is an error, as in PySpark.
        """
        if compressionCodecClass:
            raise EmberError("compressed text output is not supported yet")
        out = os.path.abspath(path)
        if os.path.exists(out):
            raise EmberError(f"Output directory file:{out} already exists")
        staging = os.path.join(out, "_temporary")
        os.makedirs(staging)

        def write_part(split: int, iterator: Iterator[Any]) -> Iterable[Any]:
            attempt_dir = os.path.join(staging, f"attempt_{TaskContext.get().taskAttemptId()}")
            os.makedirs(attempt_dir, exist_ok=True)
            name = "part-%05d" % split
            with open(os.path.join(attempt_dir, name), "w", encoding="utf-8") as fh:
                for x in iterator:
                    fh.write(x if isinstance(x, str) else str(x))
                    fh.write("\n")
            os.replace(os.path.join(attempt_dir, name), os.path.join(out, name))
            return []

        try:
            self.mapPartitionsWithIndex(write_part)._run()
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        with open(os.path.join(out, "_SUCCESS"), "w"):
            pass


def _cogroup(rdds: list[RDD], numPartitions: Optional[int]) -> RDD:
    """Tags each RDD's values with its position, unions and groups by key."""
    def tagger(tag: int) -> Callable[[Any], Any]:
        return lambda v: (tag, v)
    tagged = [r.mapValues(tagger(i)) for i, r in enumerate(rdds)]
    if numPartitions is None:
        numPartitions = max(r._default_reduce_partitions() for r in rdds)
    count = len(rdds)

    def split_by_tag(tagged_values: list) -> tuple:
        groups: list[list] = [[] for _ in range(count)]
        for tag, v in tagged_values:
            groups[tag].append(v)
        return tuple(groups)
    union = union_of(rdds[0].ctx, tagged)
    return union.groupByKey(numPartitions).mapValues(split_by_tag)


def _sum_count(iterator: Iterable[Any]) -> tuple[Any, int]:
    total, n = 0, 0
    for x in iterator:
        total += x
        n += 1
    return total, n


class PipelinedRDD(RDD):
    """A narrow transformation; chains of them collapse into one function."""

    def __init__(self, prev: RDD, func: Callable[[int, Iterator[Any]], Iterable[Any]],
                 preservesPartitioning: bool = False) -> None:
        if isinstance(prev, PipelinedRDD) and prev._is_pipelinable():
            prev_func = prev.func

            def pipeline(split: int, iterator: Iterator[Any]) -> Iterable[Any]:
                return func(split, prev_func(split, iterator))
            self.func = pipeline
            self.prev: RDD = prev.prev
        else:
            self.func = func
            self.prev = prev
        super().__init__(prev.ctx, prev.getNumPartitions())
        self.partitioner = prev.partitioner if preservesPartitioning else None
        self._func_b64: Optional[str] = None

    def _dependencies(self) -> list[RDD]:
        return [self.prev]

    def _node(self) -> dict:
        if self._func_b64 is None:
            with collect_broadcasts() as ids:
                self._func_b64 = dumps_function(self.func, self.ctx)
            self._broadcast_ids = ids
        node = self._base_node("map")
        node.update(parent=self.prev.id, func=self._func_b64)
        return node


class ShuffledRDD(RDD):
    """(key, value) records repartitioned by a Partitioner; the stage boundary."""

    def __init__(self, prev: RDD, partitioner: Partitioner) -> None:
        super().__init__(prev.ctx, partitioner.numPartitions)
        self.prev = prev
        self.partitioner = partitioner

    def _dependencies(self) -> list[RDD]:
        return [self.prev]

    def _node(self) -> dict:
        node = self._base_node("shuffle")
        node.update(parent=self.prev.id,
                    partitioner=dumps_function(self.partitioner.partitionFunc))
        return node


class DataRDD(RDD):
    """A local collection shipped with the job, one pickled batch per slice."""

    def __init__(self, ctx: "SparkContext", slices: list[list[Any]]) -> None:
        super().__init__(ctx, len(slices))
        self._slices = [dumps_batch(s) for s in slices]

    def _node(self) -> dict:
        node = self._base_node("data")
        node["slices"] = self._slices
        return node


class FramesFileRDD(RDD):
    """Files of frames (checkpoint parts), one partition per file."""

    def __init__(self, ctx: "SparkContext", files: list[str]) -> None:
        super().__init__(ctx, len(files))
        self._files = files

    def _node(self) -> dict:
        node = self._base_node("frames")
        node["files"] = self._files
        return node


class TextFileRDD(RDD):
    """Lines of text files, one partition per line-aligned split."""

    def __init__(self, ctx: "SparkContext", splits: list[dict]) -> None:
        super().__init__(ctx, len(splits))
        self._splits = splits

    def _node(self) -> dict:
        node = self._base_node("text")
        node["splits"] = self._splits
        return node


def union_of(ctx: "SparkContext", rdds: list[RDD]) -> RDD:
    """Spark's choice: a partitioner-aware union when every RDD has the same
    partitioner, else the partitions of each one after another."""
    first = rdds[0].partitioner
    if first is not None and all(r.partitioner == first for r in rdds[1:]):
        n = first.numPartitions
        groups = [[[k, i] for k in range(len(rdds))] for i in range(n)]
        united = ConcatRDD(ctx, rdds, groups, "concat")
        united.partitioner = first
        return united
    return UnionRDD(ctx, rdds)


class ConcatRDD(RDD):
    """Partition i combines listed partitions of its parents in one task,
    without a shuffle: ``concat`` (one after another), ``zip`` (pairs) or
    ``cartesian`` (every pair)."""

    def __init__(self, ctx: "SparkContext", rdds: list[RDD], groups: list[list[list[int]]],
                 combine: str) -> None:
        super().__init__(ctx, len(groups))
        self._rdds = rdds
        self._groups = groups
        self._combine = combine

    def _dependencies(self) -> list[RDD]:
        return list(self._rdds)

    def _node(self) -> dict:
        node = self._base_node("concat")
        node.update(parents=[r.id for r in self._rdds], groups=self._groups,
                    combine=self._combine)
        return node


class UnionRDD(RDD):
    """The partitions of several RDDs, one after another."""

    def __init__(self, ctx: "SparkContext", rdds: list[RDD]) -> None:
        super().__init__(ctx, sum(r.getNumPartitions() for r in rdds))
        self._rdds = rdds

    def _dependencies(self) -> list[RDD]:
        return list(self._rdds)

    def _node(self) -> dict:
        node = self._base_node("union")
        node["parents"] = [r.id for r in self._rdds]
        return node
