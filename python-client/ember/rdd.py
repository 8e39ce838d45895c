"""RDDs: lazily built lineage, run as jobs on the cluster by actions.

Method names and semantics follow PySpark's ``pyspark.rdd.RDD`` (3.x): results,
ordering guarantees, partition counts and error types. How the operations that
need more than the master's node kinds are built (unions, co-partitioned unions,
coalesce, zip, cartesian) is in :mod:`ember.lineage`; the memory-bounded shuffle
reduce side is in :mod:`ember.shuffle`.
"""

from __future__ import annotations

import bisect
import copy
import gzip
import heapq
import bz2
import operator
import os
import random
import shlex
import sys
import warnings
import zlib
from collections import defaultdict
from functools import reduce as _reduce
from itertools import chain, islice
from math import ceil, isinf, isnan, log, sqrt
from subprocess import PIPE, Popen
from threading import Thread
from typing import (IO, TYPE_CHECKING, Any, Callable, Hashable, Iterable, Iterator, Optional,
                    Sequence, Union)

from ember import fused_text, lineage, per_record, simple_functions
from ember.broadcast import collect_broadcasts
from ember.callsite import call_site
from ember.errors import EmberError
from ember.join import (python_cogroup, python_full_outer_join, python_join,
                        python_left_outer_join, python_right_outer_join)
from ember.rddsampler import RDDRangeSampler, RDDSampler, RDDStratifiedSampler, SortKeySampler
from ember.resultiterable import ResultIterable
from ember.serializers import dumps_batch, dumps_function
from ember.shuffle import (LIST_AGGREGATOR, Aggregator, ExternalGroupBy, ExternalMerger,
                           ExternalSorter, Partitioner, RangePartitioner, combine_locally,
                           first_item, identity, keep_first, pair_records, portable_hash,
                           task_memory_limit)
from ember.statcounter import StatCounter
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.context import SparkContext

__all__ = ["RDD", "Partitioner", "portable_hash", "BoundedFloat"]


class _RddId(int):
    """An RDD id. PySpark's ``rdd.id()`` is a method; Ember's own code reads it as an int."""

    def __call__(self) -> int:
        return int(self)


class BoundedFloat(float):
    """A float with a confidence and bounds, returned by the approximate actions.

    Examples
    --------
    >>> BoundedFloat(100.0, 0.95, 95.0, 105.0)
    100.0
    """

    def __new__(cls, mean: float, confidence: float, low: float, high: float) -> "BoundedFloat":
        obj = float.__new__(cls, mean)
        obj.confidence = confidence
        obj.low = low
        obj.high = high
        return obj


# sortByKey samples in one job when each of its input partitions may send up to the whole
# sample (numPartitions * 20 keys) and that stays under this many keys in all; past it the
# driver would receive up to partitions x sample keys, so it counts first as PySpark does.
_ONE_JOB_SAMPLE_LIMIT = 100_000

_DEBUG_CLASS = {"PipelinedRDD": "PythonRDD", "DataRDD": "ParallelCollectionRDD",
                "TextFileRDD": "HadoopRDD"}


class RDD:
    """A resilient distributed dataset: partitions computed on the cluster.

    Created by a SparkContext (``parallelize``, ``textFile``) or by a
    transformation of another RDD; computed only when an action runs a job.

    Examples
    --------
    >>> rdd = sc.parallelize([1, 2, 3, 4], 2)  # doctest: +SKIP
    >>> rdd.map(lambda x: x * 2).glom().collect()  # doctest: +SKIP
    [[2, 4], [6, 8]]
    """

    # What a new RDD starts with; an RDD that changes one sets its own (every
    # job makes RDDs: class defaults cost nothing per RDD).
    _name: Optional[str] = None
    partitioner: Optional[Partitioner] = None
    is_cached = False
    is_checkpointed = False
    _storage_level = StorageLevel.NONE
    _checkpoint_wanted = False
    _checkpoint_files: Optional[list[str]] = None
    _locally_checkpointed = False

    def __init__(self, ctx: "SparkContext", num_partitions: int) -> None:
        self.ctx = ctx
        self._id = ctx._new_rdd_id()
        self._num_partitions = num_partitions
        self._broadcast_ids: set[int] = set()   # broadcasts its functions use
        # Where the user made it ("map at wc.py:5"): the UI's name for it.
        self._creation_site = call_site()[0]

    # ---- lineage ---------------------------------------------------------
    def _dependencies(self) -> list["RDD"]:
        return []

    def _node(self) -> dict:
        raise NotImplementedError

    def _base_node(self, kind: str) -> dict:
        return {"id": self._id, "kind": kind, "numPartitions": self._num_partitions,
                "name": self._name or self._creation_site}

    # ---- metadata ----------------------------------------------------------
    @property
    def context(self) -> "SparkContext":
        """The SparkContext this RDD was created on."""
        return self.ctx

    @property
    def id(self) -> _RddId:
        """A unique id within the SparkContext; ``rdd.id()`` as in PySpark.

        Examples
        --------
        >>> isinstance(sc.range(5).id(), int)  # doctest: +SKIP
        True
        """
        return _RddId(self._id)

    def name(self) -> Optional[str]:
        """The name given with setName, or None."""
        return self._name

    def setName(self, name: str) -> "RDD":
        """Names the RDD (shown in toDebugString); returns self.

        Examples
        --------
        >>> sc.parallelize([1, 2]).setName('I am an RDD').name()  # doctest: +SKIP
        'I am an RDD'
        """
        self._name = name
        return self

    def getNumPartitions(self) -> int:
        """Number of partitions.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4], 2).getNumPartitions()  # doctest: +SKIP
        2
        """
        return self._num_partitions

    def toDebugString(self) -> bytes:
        """The lineage, one RDD per line, indented at shuffle boundaries (as bytes, as PySpark).

        Returns
        -------
        bytes

        Examples
        --------
        >>> print(sc.parallelize([("a", 1)], 2).reduceByKey(max).toDebugString().decode())
        ... # doctest: +SKIP
        (2) PythonRDD[3] at reduceByKey at <stdin>:1 []
         |  ShuffledRDD[2] at reduceByKey at <stdin>:1 []
         +-(2) PythonRDD[1] at reduceByKey at <stdin>:1 []
            |  ParallelCollectionRDD[0] at parallelize at <stdin>:1 []
        """
        return lineage.debug_string(self).encode("utf-8")

    def __repr__(self) -> str:
        cls = getattr(self, "_debug_class", None) or _DEBUG_CLASS.get(type(self).__name__,
                                                                       type(self).__name__)
        prefix = f"{self._name} " if self._name else ""
        return f"{prefix}{cls}[{self._id}] at {self._creation_site}"

    def __getnewargs__(self) -> Any:
        raise EmberError("It appears that you are attempting to broadcast an RDD or reference an "
                         "RDD from an action or transformation. RDD transformations and actions "
                         "can only be invoked by the driver, not inside of other transformations")

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
        self.ctx._checkpoint_requested = True
        self.is_checkpointed = True

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

        Parameters
        ----------
        f : function
        preservesPartitioning : bool
            True keeps the partitioner (f must not change the keys).

        Returns
        -------
        RDD

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4], 4).mapPartitionsWithIndex(
        ...     lambda i, it: [i]).sum()  # doctest: +SKIP
        6
        """
        return PipelinedRDD(self, f, preservesPartitioning)

    def mapPartitionsWithSplit(self, f: Callable[[int, Iterator[Any]], Iterable[Any]],
                               preservesPartitioning: bool = False) -> "RDD":
        """Deprecated alias of mapPartitionsWithIndex (warns, as PySpark)."""
        warnings.warn("mapPartitionsWithSplit is deprecated; use mapPartitionsWithIndex instead",
                      FutureWarning, stacklevel=2)
        return self.mapPartitionsWithIndex(f, preservesPartitioning)

    def mapPartitions(self, f: Callable[[Iterator[Any]], Iterable[Any]],
                      preservesPartitioning: bool = False) -> "RDD":
        """Applies f to the iterator of every partition.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4], 2).mapPartitions(lambda it: [sum(it)]).collect()
        ... # doctest: +SKIP
        [3, 7]
        """
        def func(_: int, iterator: Iterator[Any]) -> Iterable[Any]:
            return f(iterator)
        return self.mapPartitionsWithIndex(func, preservesPartitioning)

    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> "RDD":
        """Applies f to every element.

        Examples
        --------
        >>> sorted(sc.parallelize(["b", "a", "c"]).map(lambda x: (x, 1)).collect())
        ... # doctest: +SKIP
        [('a', 1), ('b', 1), ('c', 1)]
        """
        native = simple_functions.map_function(f)     # e.g. lambda w: (w, 1), run in C
        split = simple_functions.tuple_split_call(f)  # lambda line: tuple(line.split())
        if split is not None:
            splitter, sep = split

            def func(_: int, iterator: Iterator[Any]) -> Iterable[Any]:
                return fused_text.split_tuples(iterator, splitter, sep)
        elif native is not None:
            def func(_: int, iterator: Iterator[Any]) -> Iterable[Any]:
                return native(iterator)
        else:
            def func(_: int, iterator: Iterator[Any]) -> Iterable[Any]:
                return map(f, iterator)
        return self.mapPartitionsWithIndex(func, preservesPartitioning)

    def flatMap(self, f: Callable[[Any], Iterable[Any]],
                preservesPartitioning: bool = False) -> "RDD":
        """Applies f to every element and flattens the results.

        Examples
        --------
        >>> sorted(sc.parallelize([2, 3, 4]).flatMap(lambda x: range(1, x)).collect())
        ... # doctest: +SKIP
        [1, 1, 1, 2, 2, 3]
        """
        g = simple_functions.as_callable(f) or f      # e.g. lambda line: line.split(" ")
        split = simple_functions.split_call(f)
        if split is not None:
            sep = split[0]

            def func(_: int, iterator: Iterator[Any]) -> Iterable[Any]:
                # a chain word count recognises (ember.fused_text)
                return fused_text.split_each(iterator, g, sep)
        else:
            def func(_: int, iterator: Iterator[Any]) -> Iterable[Any]:
                return chain.from_iterable(map(g, iterator))
        return self.mapPartitionsWithIndex(func, preservesPartitioning)

    def filter(self, f: Callable[[Any], bool]) -> "RDD":
        """Keeps the elements for which f is true (the partitioner is kept).

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4, 5]).filter(lambda x: x % 2 == 0).collect()
        ... # doctest: +SKIP
        [2, 4]
        """
        def func(iterator: Iterator[Any]) -> Iterable[Any]:
            return filter(f, iterator)
        return self.mapPartitions(func, True)

    def glom(self) -> "RDD":
        """One list per partition.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4], 2).glom().collect()  # doctest: +SKIP
        [[1, 2], [3, 4]]
        """
        def func(iterator: Iterator[Any]) -> Iterable[list]:
            yield list(iterator)
        return self.mapPartitions(func)

    def keyBy(self, f: Callable[[Any], Any]) -> "RDD":
        """(f(x), x) for every element.

        Examples
        --------
        >>> sc.parallelize(range(3)).keyBy(lambda x: x * x).collect()  # doctest: +SKIP
        [(0, 0), (1, 1), (4, 2)]
        """
        return self.map(lambda x: (f(x), x))

    def mapValues(self, f: Callable[[Any], Any]) -> "RDD":
        """Applies f to the value of every (key, value) pair; keeps the partitioner.

        Examples
        --------
        >>> sc.parallelize([("a", ["x", "y"]), ("b", ["p"])]).mapValues(len).collect()
        ... # doctest: +SKIP
        [('a', 2), ('b', 1)]
        """
        def func(_: int, iterator: Iterator[Any]) -> Iterable[Any]:
            return per_record.map_values(f, iterator)   # no wrapper frame per record
        return self.mapPartitionsWithIndex(func, preservesPartitioning=True)

    def flatMapValues(self, f: Callable[[Any], Iterable[Any]]) -> "RDD":
        """(key, w) for every w in f(value); keeps the partitioner.

        Examples
        --------
        >>> sc.parallelize([("a", ["x", "y"]), ("b", ["p"])]).flatMapValues(
        ...     lambda x: x).collect()  # doctest: +SKIP
        [('a', 'x'), ('a', 'y'), ('b', 'p')]
        """
        def flat_map_values(kv: Any) -> Iterable[Any]:
            return ((kv[0], x) for x in f(kv[1]))
        return self.flatMap(flat_map_values, preservesPartitioning=True)

    def keys(self) -> "RDD":
        """The key of every pair.

        Examples
        --------
        >>> sc.parallelize([(1, 2), (3, 4)]).keys().collect()  # doctest: +SKIP
        [1, 3]
        """
        return self.map(lambda kv: kv[0])

    def values(self) -> "RDD":
        """The value of every pair.

        Examples
        --------
        >>> sc.parallelize([(1, 2), (3, 4)]).values().collect()  # doctest: +SKIP
        [2, 4]
        """
        return self.map(lambda kv: kv[1])

    def union(self, other: "RDD") -> "RDD":
        """The elements of both RDDs.

        The partitions of self come first, then those of other; when both have
        the same partitioner, partition i holds partition i of each and the
        partitioner is kept (PySpark's PartitionerAwareUnionRDD), so grouping
        or joining the union needs no new shuffle.

        Examples
        --------
        >>> rdd = sc.parallelize([1, 1, 2, 3])  # doctest: +SKIP
        >>> rdd.union(rdd).collect()  # doctest: +SKIP
        [1, 1, 2, 3, 1, 1, 2, 3]
        """
        rdd = lineage.union(self.ctx, [self, other])
        if (self.partitioner == other.partitioner
                and self.getNumPartitions() == rdd.getNumPartitions()):
            rdd.partitioner = self.partitioner
        return rdd

    def __add__(self, other: "RDD") -> "RDD":
        if not isinstance(other, RDD):
            raise TypeError
        return self.union(other)

    def distinct(self, numPartitions: Optional[int] = None) -> "RDD":
        """The distinct elements (a shuffle).

        Examples
        --------
        >>> sorted(sc.parallelize([1, 1, 2, 3]).distinct().collect())  # doctest: +SKIP
        [1, 2, 3]
        """
        return (self.mapPartitions(_paired_with_none)
                .reduceByKey(keep_first, numPartitions)
                .map(lambda x: x[0]))

    def sample(self, withReplacement: bool, fraction: float,
               seed: Optional[int] = None) -> "RDD":
        """A random sample: each element kept with probability fraction (Poisson counts with
        replacement). The same seed gives the same sample.

        Parameters
        ----------
        withReplacement : bool
        fraction : float
            Without replacement, in [0, 1]; with replacement, the expected count (>= 0).
        seed : int, optional

        Examples
        --------
        >>> 6 <= sc.parallelize(range(100), 4).sample(False, 0.1, 81).count() <= 14
        ... # doctest: +SKIP
        True
        """
        if not fraction >= 0:
            raise ValueError("Fraction must be nonnegative.")
        return self.mapPartitionsWithIndex(RDDSampler(withReplacement, fraction, seed).func, True)

    def randomSplit(self, weights: Sequence[Union[int, float]],
                    seed: Optional[int] = None) -> list["RDD"]:
        """Splits the RDD randomly by the weights (normalized to sum to 1).

        Examples
        --------
        >>> rdd1, rdd2 = sc.parallelize(range(500), 1).randomSplit([2, 3], 17)  # doctest: +SKIP
        >>> len(rdd1.collect() + rdd2.collect())  # doctest: +SKIP
        500
        """
        if not all(w >= 0 for w in weights):
            raise ValueError("Weights must be nonnegative")
        total = float(sum(weights))
        if not total > 0:
            raise ValueError("Sum of weights must be positive")
        cweights = [0.0]
        for w in weights:
            cweights.append(cweights[-1] + w / total)
        if seed is None:
            seed = random.randint(0, 2 ** 32 - 1)
        return [self.mapPartitionsWithIndex(RDDRangeSampler(lb, ub, seed).func, True)
                for lb, ub in zip(cweights, cweights[1:])]

    def intersection(self, other: "RDD") -> "RDD":
        """Elements in both RDDs, without duplicates (a shuffle).

        Examples
        --------
        >>> sc.parallelize([1, 10, 2, 3, 4, 5]).intersection(
        ...     sc.parallelize([1, 6, 2, 3, 7, 8])).collect()  # doctest: +SKIP
        [1, 2, 3]
        """
        return (self.map(lambda v: (v, None))
                .cogroup(other.map(lambda v: (v, None)))
                .filter(lambda k_vs: all(k_vs[1]))
                .keys())

    def subtract(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """Elements of self that are not in other.

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 3)]).subtract(
        ...     sc.parallelize([("a", 3), ("c", None)])).collect())  # doctest: +SKIP
        [('a', 1), ('b', 4), ('b', 5)]
        """
        rdd = other.map(lambda x: (x, True))
        return self.map(lambda x: (x, True)).subtractByKey(rdd, numPartitions).keys()

    def subtractByKey(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """Pairs of self whose key is not in other.

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 2)]).subtractByKey(
        ...     sc.parallelize([("a", 3), ("c", None)])).collect())  # doctest: +SKIP
        [('b', 4), ('b', 5)]
        """
        def filter_func(pair: Any) -> bool:
            _, (val1, val2) = pair
            return bool(val1) and not val2
        return self.cogroup(other, numPartitions).filter(filter_func).flatMapValues(
            lambda x: x[0])

    def cartesian(self, other: "RDD") -> "RDD":
        """All pairs (a, b) with a in self and b in other.

        Partition ``i * other.getNumPartitions() + j`` pairs partition i of self
        with partition j of other, as Spark's CartesianRDD (one task reads
        both, no shuffle).

        Examples
        --------
        >>> rdd = sc.parallelize([1, 2])  # doctest: +SKIP
        >>> sorted(rdd.cartesian(rdd).collect())  # doctest: +SKIP
        [(1, 1), (1, 2), (2, 1), (2, 2)]
        """
        return lineage.cartesian(self, other)

    def zip(self, other: "RDD") -> "RDD":
        """Pairs the i-th element of each partition of self with the i-th of other.

        Both RDDs need the same number of partitions (else ValueError) and the
        same number of elements in each partition (else the job fails). One task
        reads both partitions (no shuffle).

        Examples
        --------
        >>> sc.parallelize(range(0, 5)).zip(sc.parallelize(range(1000, 1005))).collect()
        ... # doctest: +SKIP
        [(0, 1000), (1, 1001), (2, 1002), (3, 1003), (4, 1004)]
        """
        if self.getNumPartitions() != other.getNumPartitions():
            raise ValueError("Can only zip with RDD which has the same number of partitions")
        return lineage.zipped(self, other)

    def zipWithIndex(self) -> "RDD":
        """(element, index) with indices in partition order; runs a job when there is more
        than one partition.

        Examples
        --------
        >>> sc.parallelize(["a", "b", "c", "d"], 3).zipWithIndex().collect()  # doctest: +SKIP
        [('a', 0), ('b', 1), ('c', 2), ('d', 3)]
        """
        starts = [0]
        if self.getNumPartitions() > 1:
            nums = self.mapPartitions(lambda it: [sum(1 for _ in it)]).collect()
            for i in range(len(nums) - 1):
                starts.append(starts[-1] + nums[i])

        def func(k: int, iterator: Iterable[Any]) -> Iterator[Any]:
            for i, v in enumerate(iterator, starts[k]):
                yield v, i
        return self.mapPartitionsWithIndex(func)

    def zipWithUniqueId(self) -> "RDD":
        """(element, id): partition k gets ids k, n+k, 2n+k, ... (no job).

        Examples
        --------
        >>> sc.parallelize(["a", "b", "c", "d", "e"], 3).zipWithUniqueId().collect()
        ... # doctest: +SKIP
        [('a', 0), ('b', 1), ('c', 4), ('d', 2), ('e', 5)]
        """
        n = self.getNumPartitions()

        def func(k: int, iterator: Iterable[Any]) -> Iterator[Any]:
            for i, v in enumerate(iterator):
                yield v, i * n + k
        return self.mapPartitionsWithIndex(func)

    def pipe(self, command: str, env: Optional[dict[str, str]] = None,
             checkCode: bool = False) -> "RDD":
        """Pipes each partition through an external command (one process per partition).

        Elements are written as ``str(x)`` lines; output lines are the new
        elements. env is the command's whole environment, as in PySpark.

        Parameters
        ----------
        command : str
        env : dict, optional
        checkCode : bool
            Fail the task when the command exits with a non-zero code.

        Examples
        --------
        >>> sc.parallelize(['1', '2', '', '3']).pipe('cat').collect()  # doctest: +SKIP
        ['1', '2', '', '3']
        """
        env = dict(env) if env is not None else {}

        def func(iterator: Iterable[Any]) -> Iterator[str]:
            proc = Popen(shlex.split(command), env=env, stdin=PIPE, stdout=PIPE)

            def pipe_objs(out: IO[bytes]) -> None:
                try:
                    for obj in iterator:
                        out.write((str(obj).rstrip("\n") + "\n").encode("utf-8"))
                except BrokenPipeError:
                    pass        # the command stopped reading: the rest of the input is drained
                finally:
                    try:
                        out.close()
                    except BrokenPipeError:
                        pass

            writer = Thread(target=pipe_objs, args=[proc.stdin], daemon=True)
            writer.start()
            try:
                for line in iter(proc.stdout.readline, b""):
                    yield line.rstrip(b"\n").decode("utf-8")
                proc.wait()
            finally:
                if proc.poll() is None:      # the consumer stopped early (take)
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                # The writer reads the task's input: it must be done before the
                # task returns and the runtime reads what is left of the input.
                writer.join()
            if checkCode and proc.returncode:
                raise RuntimeError(f"Pipe function `{command}` exited with error code "
                                   f"{proc.returncode}.")
        return self.mapPartitions(func)

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> "RDD":
        """Fewer partitions.

        Without shuffle, target partition i holds consecutive source partitions
        in order (one task reads them), as Spark's coalescer without locality
        preferences; asking for more partitions than there are keeps the count.
        With shuffle it is ``repartition``.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4, 5], 3).coalesce(1).glom().collect()  # doctest: +SKIP
        [[1, 2, 3, 4, 5]]
        """
        if not numPartitions > 0:
            raise ValueError("Number of partitions must be positive.")
        if shuffle:
            return self._round_robin(numPartitions)
        return lineage.coalesced(self, min(numPartitions, self.getNumPartitions()))

    def repartition(self, numPartitions: int) -> "RDD":
        """Exactly numPartitions partitions, through a shuffle.

        Batches of 10 elements go round-robin to the targets, from a seeded
        start per source partition, as PySpark's.

        Examples
        --------
        >>> len(sc.parallelize([1, 2, 3, 4, 5, 6, 7], 4).repartition(10).glom().collect())
        ... # doctest: +SKIP
        10
        """
        return self.coalesce(numPartitions, shuffle=True)

    def _round_robin(self, numPartitions: int) -> "RDD":
        def distribute(split: int, iterator: Iterable[Any]) -> Iterator[Any]:
            position = random.Random(split).randrange(numPartitions)
            for i, x in enumerate(iterator):
                if i % 10 == 0:
                    position = (position + 1) % numPartitions
                yield position, x
        shuffled = self.mapPartitionsWithIndex(distribute).partitionBy(numPartitions,
                                                                       _identity)
        return shuffled.values()

    def sortByKey(self, ascending: Optional[bool] = True, numPartitions: Optional[int] = None,
                  keyfunc: Callable[[Any], Any] = identity) -> "RDD":
        """Sorts (key, value) pairs by key, globally across partitions.

        Range partitioning as PySpark: numPartitions - 1 bounds cut from a
        sample of the keys (seed 1, fraction 20 * numPartitions / count), the
        same sample as PySpark's count job and sample job give, taken in one
        job (ember.rddsampler.SortKeySampler); each partition is then sorted
        within the memory limit (spilling sorted runs to disk).

        Parameters
        ----------
        ascending : bool
        numPartitions : int, optional
        keyfunc : function, optional
            Sort by keyfunc(key).

        Examples
        --------
        >>> tmp = [('a', 1), ('b', 2), ('1', 3), ('d', 4), ('2', 5)]
        >>> sc.parallelize(tmp).sortByKey(True, 2).collect()  # doctest: +SKIP
        [('1', 3), ('2', 5), ('a', 1), ('b', 2), ('d', 4)]
        """
        if numPartitions is None:
            numPartitions = self._defaultReducePartitions()
        if numPartitions == 1:
            rdd = self.coalesce(1) if self.getNumPartitions() > 1 else self
            return rdd.mapPartitions(_partition_sorter(keyfunc, ascending, False), True)
        sample_size = numPartitions * 20.0
        if self.getNumPartitions() * sample_size > _ONE_JOB_SAMPLE_LIMIT:
            sketch = None       # PySpark's two jobs: count, then sample at the known fraction
            size = self.count()
        else:
            sketch = self.mapPartitionsWithIndex(SortKeySampler(sample_size, 1).func).collect()
            size = sum(count for count, _, _ in sketch)
        if not size:
            return self
        fraction = min(sample_size / max(size, 1), 1.0)
        if sketch is None or any(u < fraction for _, _, failed in sketch for u in failed):
            # (Or a sampled record has no key: the sample job raises what PySpark's does.)
            if sketch is not None:
                size = self.count()
                fraction = min(sample_size / max(size, 1), 1.0)
            samples = self.sample(False, fraction, 1).map(lambda kv: kv[0]).collect()
        else:
            samples = [k for _, keys, _ in sketch for u, k in keys if u < fraction]
        samples = sorted(samples, key=keyfunc)
        # PySpark compares keyfunc(k) with raw sampled keys; comparing like with like
        # keeps the result sorted across partitions for any keyfunc.
        # A tuple: a partitioner holding no mutable state is unpickled once per
        # Python subprocess, not per task (ember.function_cache).
        bounds = tuple(keyfunc(samples[int(len(samples) * (i + 1) / numPartitions)])
                       for i in range(0, numPartitions - 1))
        partitioner = RangePartitioner(bounds, bool(ascending), numPartitions,
                                       None if keyfunc is identity else keyfunc)
        return self.partitionBy(numPartitions, partitioner).mapPartitions(
            _partition_sorter(keyfunc, ascending, True), True)

    def sortBy(self, keyfunc: Callable[[Any], Any], ascending: bool = True,
               numPartitions: Optional[int] = None) -> "RDD":
        """Sorts the elements by keyfunc(x).

        Examples
        --------
        >>> tmp = [('a', 1), ('b', 2), ('1', 3), ('d', 4), ('2', 5)]
        >>> sc.parallelize(tmp).sortBy(lambda x: x[1]).collect()  # doctest: +SKIP
        [('a', 1), ('b', 2), ('1', 3), ('d', 4), ('2', 5)]
        """
        return self.keyBy(keyfunc).sortByKey(ascending, numPartitions).values()

    def repartitionAndSortWithinPartitions(
            self, numPartitions: Optional[int] = None,
            partitionFunc: Callable[[Any], int] = portable_hash, ascending: bool = True,
            keyfunc: Callable[[Any], Any] = identity) -> "RDD":
        """partitionBy, then sorts each partition by key.

        Examples
        --------
        >>> rdd = sc.parallelize([(0, 5), (3, 8), (2, 6), (0, 8), (3, 8), (1, 3)])
        >>> rdd.repartitionAndSortWithinPartitions(2, lambda x: x % 2, True).glom().collect()
        ... # doctest: +SKIP
        [[(0, 5), (0, 8), (2, 6)], [(1, 3), (3, 8), (3, 8)]]
        """
        if numPartitions is None:
            numPartitions = self._defaultReducePartitions()
        shuffled = self.partitionBy(numPartitions, partitionFunc)
        # An RDD that has the partitioner already is not shuffled again.
        return shuffled.mapPartitions(
            _partition_sorter(keyfunc, ascending, isinstance(shuffled, ShuffledRDD)), True)

    # ---- shuffles --------------------------------------------------------
    def _defaultReducePartitions(self) -> int:
        """spark.default.parallelism when set, else this RDD's partition count (as PySpark)."""
        if self.ctx.getConf().contains("spark.default.parallelism"):
            return self.ctx.defaultParallelism
        return self.getNumPartitions()

    def _default_reduce_partitions(self) -> int:
        return self._defaultReducePartitions()

    def partitionBy(self, numPartitions: Optional[int],
                    partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """(key, value) pairs moved to partition ``partitionFunc(key) % numPartitions``.

        A no-op when the RDD already has an equal partitioner.

        Examples
        --------
        >>> pairs = sc.parallelize([1, 2, 3, 4, 2, 4, 1]).map(lambda x: (x, x))
        >>> sets = pairs.partitionBy(2).glom().collect()  # doctest: +SKIP
        >>> len(set(sets[0]).intersection(set(sets[1])))  # doctest: +SKIP
        0
        """
        if numPartitions is None:
            numPartitions = self._defaultReducePartitions()
        partitioner = Partitioner(numPartitions, partitionFunc)
        if self.partitioner == partitioner:
            return self
        return ShuffledRDD(self, partitioner)

    def combineByKey(self, createCombiner: Callable[[Any], Any],
                     mergeValue: Callable[[Any, Any], Any],
                     mergeCombiners: Callable[[Any, Any], Any],
                     numPartitions: Optional[int] = None,
                     partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Per-key aggregation with a map-side combine.

        The reduce side keeps its combiners within ``spark.python.worker.memory``
        and spills to local disk beyond it.

        Examples
        --------
        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 2)])  # doctest: +SKIP
        >>> sorted(rdd.combineByKey(lambda v: [v], lambda c, v: c + [v],
        ...                         lambda a, b: a + b).collect())  # doctest: +SKIP
        [('a', [1, 2]), ('b', [1])]
        """
        if numPartitions is None:
            numPartitions = self._defaultReducePartitions()
        agg = Aggregator(createCombiner, mergeValue, mergeCombiners)

        def combineLocally(iterator: Iterable[Any]) -> Iterator[Any]:
            return combine_locally(iterator, agg, int(task_memory_limit() * 0.9))

        def _mergeCombiners(iterator: Iterable[Any]) -> Iterator[Any]:
            merger = ExternalMerger(agg, task_memory_limit())
            merger.mergeCombiners(iterator)
            return merger.items()

        if self.partitioner == Partitioner(numPartitions, partitionFunc):
            # Already partitioned this way (partitionBy would be a no-op): every
            # key's records are in one partition, so one merge is the answer.
            def combineAll(iterator: Iterable[Any]) -> Iterator[Any]:
                merger = ExternalMerger(agg, task_memory_limit())
                merger.mergeValues(iterator)
                return merger.items()
            return self.mapPartitions(combineAll, preservesPartitioning=True)
        locally_combined = self.mapPartitions(combineLocally, preservesPartitioning=True)
        shuffled = locally_combined.partitionBy(numPartitions, partitionFunc)
        return shuffled.mapPartitions(_mergeCombiners, preservesPartitioning=True)

    def reduceByKey(self, func: Callable[[Any, Any], Any], numPartitions: Optional[int] = None,
                    partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Merges the values of each key with func.

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 1), ("a", 1)]).reduceByKey(
        ...     lambda a, b: a + b).collect())  # doctest: +SKIP
        [('a', 2), ('b', 1)]
        """
        func = simple_functions.binary_operator(func)  # lambda a, b: a + b is operator.add
        return self.combineByKey(identity, func, func, numPartitions, partitionFunc)

    def reduceByKeyLocally(self, func: Callable[[Any, Any], Any]) -> dict[Any, Any]:
        """Merges the values of each key with func and returns a dict to the driver.

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 1), ("a", 1)]).reduceByKeyLocally(
        ...     lambda a, b: a + b).items())  # doctest: +SKIP
        [('a', 2), ('b', 1)]
        """
        def reducePartition(iterator: Iterable[Any]) -> Iterator[dict]:
            m: dict[Any, Any] = {}
            for k, v in iterator:
                m[k] = func(m[k], v) if k in m else v
            yield m

        def mergeMaps(m1: dict, m2: dict) -> dict:
            for k, v in m2.items():
                m1[k] = func(m1[k], v) if k in m1 else v
            return m1
        return self.mapPartitions(reducePartition).reduce(mergeMaps)

    def foldByKey(self, zeroValue: Any, func: Callable[[Any, Any], Any],
                  numPartitions: Optional[int] = None,
                  partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Merges the values of each key with func, starting from a copy of zeroValue.

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 1), ("a", 1)]).foldByKey(
        ...     0, lambda a, b: a + b).collect())  # doctest: +SKIP
        [('a', 2), ('b', 1)]
        """
        def createZero() -> Any:
            return copy.deepcopy(zeroValue)
        return self.combineByKey(lambda v: func(createZero(), v), func, func, numPartitions,
                                 partitionFunc)

    def aggregateByKey(self, zeroValue: Any, seqFunc: Callable[[Any, Any], Any],
                       combFunc: Callable[[Any, Any], Any], numPartitions: Optional[int] = None,
                       partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Aggregates the values of each key: seqFunc within partitions, combFunc across.

        Examples
        --------
        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 2)])  # doctest: +SKIP
        >>> sorted(rdd.aggregateByKey((0, 0), lambda x, y: (x[0] + y, x[1] + 1),
        ...        lambda x, y: (x[0] + y[0], x[1] + y[1])).collect())  # doctest: +SKIP
        [('a', (3, 2)), ('b', (1, 1))]
        """
        def createZero() -> Any:
            return copy.deepcopy(zeroValue)
        return self.combineByKey(lambda v: seqFunc(createZero(), v), seqFunc, combFunc,
                                 numPartitions, partitionFunc)

    def groupByKey(self, numPartitions: Optional[int] = None,
                   partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """(key, ResultIterable of its values) for every key.

        The reduce side stays within ``spark.python.worker.memory``: lists spill
        to local disk, and a key whose values pass the limit keeps them on disk.

        Examples
        --------
        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])  # doctest: +SKIP
        >>> sorted(rdd.groupByKey().mapValues(list).collect())  # doctest: +SKIP
        [('a', [1, 1]), ('b', [1])]
        """
        agg = LIST_AGGREGATOR

        def groupByKey(iterator: Iterable[Any]) -> Iterator[Any]:
            merger = ExternalGroupBy(agg, task_memory_limit())
            merger.mergeValues(iterator)
            return merger.items_with(ResultIterable)

        if numPartitions is None:
            numPartitions = self._defaultReducePartitions()
        if self.partitioner == Partitioner(numPartitions, partitionFunc):
            return self.mapPartitions(groupByKey, True)
        if partitionFunc is portable_hash:
            # No map-side combine (as Scala Spark's groupByKey): (k, v) pairs,
            # unpacked in C by the shuffle writer. Only for the default hash: it
            # is then not observable how often the partition function runs.
            pairs = self.mapPartitions(pair_records, preservesPartitioning=True)
            shuffled = pairs.partitionBy(numPartitions, partitionFunc)
            return shuffled.mapPartitions(groupByKey, True)

        # A partition function of the user's runs once per key and map task, as
        # after PySpark's map-side combine (it may count calls, or not be pure).
        def combine(iterator: Iterable[Any]) -> Iterator[Any]:
            return combine_locally(iterator, agg, int(task_memory_limit() * 0.9), grouping=True)

        def groupCombined(iterator: Iterable[Any]) -> Iterator[Any]:
            merger = ExternalGroupBy(agg, task_memory_limit())
            merger.mergeCombiners(iterator)
            return merger.items_with(ResultIterable)

        locally_combined = self.mapPartitions(combine, preservesPartitioning=True)
        shuffled = locally_combined.partitionBy(numPartitions, partitionFunc)
        return shuffled.mapPartitions(groupCombined, True)

    def groupBy(self, f: Callable[[Any], Hashable], numPartitions: Optional[int] = None,
                partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """(f(x), ResultIterable of the elements x with that key).

        Examples
        --------
        >>> result = sc.parallelize([1, 1, 2, 3, 5, 8]).groupBy(lambda x: x % 2).collect()
        ... # doctest: +SKIP
        >>> sorted([(x, sorted(y)) for (x, y) in result])  # doctest: +SKIP
        [(0, [2, 8]), (1, [1, 1, 3, 5])]
        """
        return self.map(lambda x: (f(x), x)).groupByKey(numPartitions, partitionFunc)

    def cogroup(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """(key, (values in self, values in other)) for every key of either.

        Examples
        --------
        >>> rdd1, rdd2 = sc.parallelize([("a", 1), ("b", 4)]), sc.parallelize([("a", 2)])
        ... # doctest: +SKIP
        >>> [(x, tuple(map(list, y))) for x, y in sorted(rdd1.cogroup(rdd2).collect())]
        ... # doctest: +SKIP
        [('a', ([1], [2])), ('b', ([4], []))]
        """
        return python_cogroup((self, other), numPartitions)

    def groupWith(self, other: "RDD", *others: "RDD") -> "RDD":
        """cogroup of several RDDs.

        Examples
        --------
        >>> [(x, tuple(map(list, y))) for x, y in sorted(sc.parallelize([("a", 5)]).groupWith(
        ...     sc.parallelize([("a", 1)]), sc.parallelize([("b", 2)])).collect())]
        ... # doctest: +SKIP
        [('a', ([5], [1], [])), ('b', ([], [], [2]))]
        """
        return python_cogroup((self, other) + others, None)

    def join(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """(k, (v, w)) for every pair of matching keys.

        Co-partitioned inputs (same partitioner) are joined without a new
        shuffle.

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 4)]).join(
        ...     sc.parallelize([("a", 2), ("a", 3)])).collect())  # doctest: +SKIP
        [('a', (1, 2)), ('a', (1, 3))]
        """
        return python_join(self, other, numPartitions)

    def leftOuterJoin(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """Like join; a key missing from other gives (k, (v, None)).

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 4)]).leftOuterJoin(
        ...     sc.parallelize([("a", 2)])).collect())  # doctest: +SKIP
        [('a', (1, 2)), ('b', (4, None))]
        """
        return python_left_outer_join(self, other, numPartitions)

    def rightOuterJoin(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """Like join; a key missing from self gives (k, (None, w)).

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 2)]).rightOuterJoin(
        ...     sc.parallelize([("a", 1), ("b", 4)])).collect())  # doctest: +SKIP
        [('a', (2, 1)), ('b', (None, 4))]
        """
        return python_right_outer_join(self, other, numPartitions)

    def fullOuterJoin(self, other: "RDD", numPartitions: Optional[int] = None) -> "RDD":
        """Like join, with None for the side a key is missing from.

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 4)]).fullOuterJoin(
        ...     sc.parallelize([("a", 2), ("c", 8)])).collect())  # doctest: +SKIP
        [('a', (1, 2)), ('b', (4, None)), ('c', (None, 8))]
        """
        return python_full_outer_join(self, other, numPartitions)

    def sampleByKey(self, withReplacement: bool, fractions: dict,
                    seed: Optional[int] = None) -> "RDD":
        """Stratified sample: each key sampled with its own fraction.

        Examples
        --------
        >>> rdd = sc.parallelize([("a", i) for i in range(1000)])  # doctest: +SKIP
        >>> 100 < rdd.sampleByKey(False, {"a": 0.2}, 2).count() < 300  # doctest: +SKIP
        True
        """
        for fraction in fractions.values():
            assert fraction >= 0.0, "Negative fraction value: %s" % fraction
        return self.mapPartitionsWithIndex(
            RDDStratifiedSampler(withReplacement, fractions, seed).func, True)

    # ---- actions -----------------------------------------------------------
    def _run(self, partitions: Optional[Iterable[int]] = None) -> list[Any]:
        return self.ctx._jobs.run(self, partitions)

    def collect(self) -> list[Any]:
        """All elements, partition by partition, in order.

        Examples
        --------
        >>> sc.parallelize(["x", "y", "z"]).collect()  # doctest: +SKIP
        ['x', 'y', 'z']
        """
        return self._run()

    def collectWithJobGroup(self, groupId: str, description: str,
                            interruptOnCancel: bool = False) -> list[Any]:
        """collect() as a job of the given group (deprecated in PySpark 3.1)."""
        warnings.warn("Deprecated in 3.1, Use pyspark.InheritableThread with the pinned thread "
                      "mode enabled.", FutureWarning)
        before = (self.ctx.getLocalProperty("spark.jobGroup.id"),
                  self.ctx.getLocalProperty("spark.job.description"))
        self.ctx.setJobGroup(groupId, description, interruptOnCancel)
        try:
            return self.collect()
        finally:
            self.ctx.setLocalProperty("spark.jobGroup.id", before[0])
            self.ctx.setLocalProperty("spark.job.description", before[1])

    def toLocalIterator(self, prefetchPartitions: bool = False) -> Iterator[Any]:
        """All elements, fetched one partition (one job) at a time.

        The driver holds one partition (two with prefetchPartitions), streamed
        from the block manager in chunks.

        Examples
        --------
        >>> [x for x in sc.parallelize(range(10)).toLocalIterator()]  # doctest: +SKIP
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        """
        return self.ctx._jobs.iterate(self, prefetchPartitions)

    def count(self) -> int:
        """Number of elements.

        Examples
        --------
        >>> sc.parallelize([2, 3, 4]).count()  # doctest: +SKIP
        3
        """
        return self.mapPartitions(lambda it: [per_record.count(it)]).sum()

    def reduce(self, f: Callable[[Any, Any], Any]) -> Any:
        """Reduces the elements with a commutative, associative f.

        Raises ValueError on an empty RDD.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4, 5]).reduce(lambda a, b: a + b)  # doctest: +SKIP
        15
        """
        def func(iterator: Iterable[Any]) -> Iterator[Any]:
            iterator = iter(iterator)
            try:
                initial = next(iterator)
            except StopIteration:
                return
            yield _reduce(f, iterator, initial)
        values = self.mapPartitions(func)._run()
        if values:
            return _reduce(f, values)
        raise ValueError("Can not reduce() empty RDD")

    def treeReduce(self, f: Callable[[Any, Any], Any], depth: int = 2) -> Any:
        """reduce in a multi-level tree (extra shuffle levels above ~depth-th root partitions).

        Examples
        --------
        >>> sc.parallelize([-5, -4, -3, -2, -1, 1, 2, 3, 4], 10).treeReduce(
        ...     lambda x, y: x + y, 2)  # doctest: +SKIP
        -5
        """
        if depth < 1:
            raise ValueError("Depth cannot be smaller than 1 but got %d." % depth)
        zeroValue: tuple = (None, True)   # the second entry marks the dummy value

        def op(x: tuple, y: tuple) -> tuple:
            if x[1]:
                return y
            if y[1]:
                return x
            return f(x[0], y[0]), False
        reduced = self.map(lambda x: (x, False)).treeAggregate(zeroValue, op, op, depth)
        if reduced[1]:
            raise ValueError("Cannot reduce empty RDD.")
        return reduced[0]

    def fold(self, zeroValue: Any, op: Callable[[Any, Any], Any]) -> Any:
        """Folds each partition from zeroValue, then the partition results.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4, 5]).fold(0, lambda a, b: a + b)  # doctest: +SKIP
        15
        """
        def func(iterator: Iterable[Any]) -> Iterator[Any]:
            acc = zeroValue
            for obj in iterator:
                acc = op(acc, obj)
            yield acc
        return _reduce(op, self.mapPartitions(func)._run(), zeroValue)

    def aggregate(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any],
                  combOp: Callable[[Any, Any], Any]) -> Any:
        """seqOp within partitions from zeroValue, combOp across them.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4]).aggregate((0, 0), lambda x, y: (x[0] + y, x[1] + 1),
        ...     lambda x, y: (x[0] + y[0], x[1] + y[1]))  # doctest: +SKIP
        (10, 4)
        """
        def func(iterator: Iterable[Any]) -> Iterator[Any]:
            acc = zeroValue
            for obj in iterator:
                acc = seqOp(acc, obj)
            yield acc
        return _reduce(combOp, self.mapPartitions(func)._run(), zeroValue)

    def treeAggregate(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any],
                      combOp: Callable[[Any, Any], Any], depth: int = 2) -> Any:
        """aggregate in a multi-level tree, as PySpark's.

        Examples
        --------
        >>> add = lambda x, y: x + y
        >>> sc.parallelize([-5, -4, -3, -2, -1, 1, 2, 3, 4], 10).treeAggregate(0, add, add, 5)
        ... # doctest: +SKIP
        -5
        """
        if depth < 1:
            raise ValueError("Depth cannot be smaller than 1 but got %d." % depth)
        if self.getNumPartitions() == 0:
            return zeroValue

        def aggregatePartition(iterator: Iterable[Any]) -> Iterator[Any]:
            acc = zeroValue
            for obj in iterator:
                acc = seqOp(acc, obj)
            yield acc

        partially = self.mapPartitions(aggregatePartition)
        numPartitions: float = partially.getNumPartitions()
        scale = max(int(ceil(pow(numPartitions, 1.0 / depth))), 2)
        while numPartitions > scale + numPartitions / scale:
            numPartitions /= scale
            current = int(numPartitions)

            def mapPartition(i: int, iterator: Iterable[Any], current: int = current
                             ) -> Iterator[Any]:
                for obj in iterator:
                    yield i % current, obj
            partially = (partially.mapPartitionsWithIndex(mapPartition)
                         .reduceByKey(combOp, current).values())
        return partially.reduce(combOp)

    def max(self, key: Optional[Callable[[Any], Any]] = None) -> Any:
        """The largest element (by key(x) when given).

        Examples
        --------
        >>> sc.parallelize([1.0, 5.0, 43.0, 10.0]).max(key=str)  # doctest: +SKIP
        5.0
        """
        if key is None:
            return self.reduce(max)
        return self.reduce(lambda a, b: max(a, b, key=key))

    def min(self, key: Optional[Callable[[Any], Any]] = None) -> Any:
        """The smallest element (by key(x) when given).

        Examples
        --------
        >>> sc.parallelize([2.0, 5.0, 43.0, 10.0]).min(key=str)  # doctest: +SKIP
        10.0
        """
        if key is None:
            return self.reduce(min)
        return self.reduce(lambda a, b: min(a, b, key=key))

    def sum(self) -> Any:
        """Sum of the elements (0 when empty).

        Examples
        --------
        >>> sc.parallelize([1.0, 2.0, 3.0]).sum()  # doctest: +SKIP
        6.0
        """
        return self.mapPartitions(lambda x: [sum(x)]).fold(0, operator.add)

    def stats(self) -> StatCounter:
        """Count, mean, variance, min and max in one job.

        Examples
        --------
        >>> sc.parallelize([1.0, 2.0, 3.0]).stats()  # doctest: +SKIP
        (count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3.0, min: 1.0)
        """
        def redFunc(left: StatCounter, right: StatCounter) -> StatCounter:
            return left.mergeStats(right)
        return self.mapPartitions(lambda i: [StatCounter(i)]).reduce(redFunc)

    def histogram(self, buckets: Union[int, list, tuple]) -> tuple[Sequence[Any], list[int]]:
        """Counts per bucket: ``[a, b)`` for every bucket but the last, ``[a, b]``.

        An int asks for that many evenly spaced buckets between the minimum and
        the maximum (one bucket when they are equal); None and NaN are skipped.

        Examples
        --------
        >>> rdd = sc.parallelize(range(51))  # doctest: +SKIP
        >>> rdd.histogram(2)  # doctest: +SKIP
        ([0, 25, 50], [25, 26])
        >>> rdd.histogram([0, 5, 25, 50])  # doctest: +SKIP
        ([0, 5, 25, 50], [5, 20, 26])
        """
        if isinstance(buckets, int):
            buckets, minv, maxv, even, inc = self._even_buckets(buckets)
            if inc is None:
                return buckets, [self.filter(_comparable).count()]
        elif isinstance(buckets, (list, tuple)):
            minv, maxv, even, inc = _check_buckets(buckets)
        else:
            raise TypeError("buckets should be a list or tuple or number(int or long)")

        def histogram(iterator: Iterable[Any]) -> Iterator[list[int]]:
            counters = [0] * len(buckets)
            for i in iterator:
                if i is None or (isinstance(i, float) and isnan(i)) or i > maxv or i < minv:
                    continue
                t = int((i - minv) / inc) if even else bisect.bisect_right(buckets, i) - 1
                counters[t] += 1
            last = counters.pop()
            counters[-1] += last
            yield counters

        def mergeCounters(a: list[int], b: list[int]) -> list[int]:
            return [i + j for i, j in zip(a, b)]
        return buckets, self.mapPartitions(histogram).reduce(mergeCounters)

    def _even_buckets(self, count: int) -> tuple:
        if count < 1:
            raise ValueError("number of buckets must be >= 1")
        filtered = self.filter(_comparable)

        def minmax(a: tuple, b: tuple) -> tuple:
            return min(a[0], b[0]), max(a[1], b[1])
        try:
            minv, maxv = filtered.map(lambda x: (x, x)).reduce(minmax)
        except ValueError as err:
            if "empty" in str(err):
                raise ValueError("can not generate buckets from empty RDD") from None
            raise
        if minv == maxv or count == 1:
            return [minv, maxv], minv, maxv, False, None
        try:
            inc = (maxv - minv) / count
        except TypeError:
            raise TypeError("Can not generate buckets with non-number in RDD") from None
        if isinf(inc):
            raise ValueError("Can not generate buckets with infinite value")
        inc = int(inc)        # keep integer buckets when possible
        if inc * count != maxv - minv:
            inc = (maxv - minv) * 1.0 / count
        buckets = [i * inc + minv for i in range(count)]
        buckets.append(maxv)  # no accumulated error at the top
        return buckets, minv, maxv, True, inc

    def mean(self) -> float:
        """Mean of the elements (stats().mean()).

        Examples
        --------
        >>> sc.parallelize([1, 2, 3]).mean()  # doctest: +SKIP
        2.0
        """
        return self.stats().mean()

    def variance(self) -> float:
        """Population variance (divides by N).

        Examples
        --------
        >>> round(sc.parallelize([1, 2, 3]).variance(), 3)  # doctest: +SKIP
        0.667
        """
        return self.stats().variance()

    def stdev(self) -> float:
        """Population standard deviation.

        Examples
        --------
        >>> round(sc.parallelize([1, 2, 3]).stdev(), 3)  # doctest: +SKIP
        0.816
        """
        return self.stats().stdev()

    def sampleStdev(self) -> float:
        """Sample standard deviation (divides by N-1).

        Examples
        --------
        >>> sc.parallelize([1, 2, 3]).sampleStdev()  # doctest: +SKIP
        1.0
        """
        return self.stats().sampleStdev()

    def sampleVariance(self) -> float:
        """Sample variance (divides by N-1).

        Examples
        --------
        >>> sc.parallelize([1, 2, 3]).sampleVariance()  # doctest: +SKIP
        1.0
        """
        return self.stats().sampleVariance()

    def countByValue(self) -> dict[Any, int]:
        """{element: count} on the driver.

        Examples
        --------
        >>> sorted(sc.parallelize([1, 2, 1, 2, 2], 2).countByValue().items())  # doctest: +SKIP
        [(1, 2), (2, 3)]
        """
        def countPartition(iterator: Iterable[Any]) -> Iterator[dict]:
            counts: dict[Any, int] = defaultdict(int)
            for obj in iterator:
                counts[obj] += 1
            yield counts

        def mergeMaps(m1: dict, m2: dict) -> dict:
            for k, v in m2.items():
                m1[k] += v
            return m1
        return self.mapPartitions(countPartition).reduce(mergeMaps)

    def countByKey(self) -> dict[Any, int]:
        """{key: count of pairs} on the driver.

        Examples
        --------
        >>> sorted(sc.parallelize([("a", 1), ("b", 1), ("a", 1)]).countByKey().items())
        ... # doctest: +SKIP
        [('a', 2), ('b', 1)]
        """
        return self.map(lambda x: x[0]).countByValue()

    def top(self, num: int, key: Optional[Callable[[Any], Any]] = None) -> list[Any]:
        """The num largest elements, largest first.

        Examples
        --------
        >>> sc.parallelize([10, 4, 2, 12, 3]).top(3, key=str)  # doctest: +SKIP
        [4, 3, 2]
        """
        def topIterator(iterator: Iterable[Any]) -> Iterator[list]:
            yield heapq.nlargest(num, iterator, key=key)

        def merge(a: list, b: list) -> list:
            return heapq.nlargest(num, a + b, key=key)
        return self.mapPartitions(topIterator).reduce(merge)

    def takeOrdered(self, num: int, key: Optional[Callable[[Any], Any]] = None) -> list[Any]:
        """The num smallest elements (by key), smallest first.

        Examples
        --------
        >>> sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7], 2).takeOrdered(6, key=lambda x: -x)
        ... # doctest: +SKIP
        [10, 9, 7, 6, 5, 4]
        """
        if num < 0:
            raise ValueError("top N cannot be negative.")
        if num == 0 or self.getNumPartitions() == 0:
            return []

        def merge(a: list, b: list) -> list:
            return heapq.nsmallest(num, a + b, key)
        return self.mapPartitions(lambda it: [heapq.nsmallest(num, it, key)]).reduce(merge)

    def take(self, num: int) -> list[Any]:
        """The first num elements, scanning as few partitions as it can (as PySpark).

        Examples
        --------
        >>> sc.parallelize(range(100), 100).filter(lambda x: x > 90).take(3)  # doctest: +SKIP
        [91, 92, 93]
        """
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

            def take_up_to(iterator: Iterable[Any], left: int = left) -> Iterator[Any]:
                iterator = iter(iterator)
                for _ in range(left):
                    try:
                        yield next(iterator)
                    except StopIteration:
                        return
            parts = range(scanned, min(scanned + to_try, total))
            items += self.mapPartitions(take_up_to)._run(parts)
            scanned += to_try
        return items[:num]

    def first(self) -> Any:
        """The first element; ValueError when the RDD is empty.

        Examples
        --------
        >>> sc.parallelize([2, 3, 4]).first()  # doctest: +SKIP
        2
        """
        rs = self.take(1)
        if rs:
            return rs[0]
        raise ValueError("RDD is empty")

    def isEmpty(self) -> bool:
        """True when there is no element.

        Examples
        --------
        >>> sc.parallelize([]).isEmpty()  # doctest: +SKIP
        True
        """
        return self.getNumPartitions() == 0 or len(self.take(1)) == 0

    def takeSample(self, withReplacement: bool, num: int,
                   seed: Optional[int] = None) -> list[Any]:
        """num elements sampled at random (PySpark's algorithm: count, oversample, shuffle).

        Examples
        --------
        >>> len(sc.parallelize(range(0, 10)).takeSample(True, 20, 1))  # doctest: +SKIP
        20
        >>> len(sc.parallelize(range(0, 10)).takeSample(False, 15, 3))  # doctest: +SKIP
        10
        """
        num_st_dev = 10.0
        max_sample_size = sys.maxsize - int(num_st_dev * sqrt(sys.maxsize))
        if num < 0:
            raise ValueError("Sample size cannot be negative.")
        if num > max_sample_size:
            raise ValueError("Sample size cannot be greater than %d." % max_sample_size)
        if num == 0 or self.getNumPartitions() == 0:
            return []
        initial_count = self.count()
        if initial_count == 0:
            return []
        rand = random.Random(seed)
        if not withReplacement and num >= initial_count:
            samples = self.collect()
            rand.shuffle(samples)
            return samples
        fraction = RDD._computeFractionForSampleSize(num, initial_count, withReplacement)
        samples = self.sample(withReplacement, fraction, seed).collect()
        while len(samples) < num:
            seed = rand.randint(0, sys.maxsize)
            samples = self.sample(withReplacement, fraction, seed).collect()
        rand.shuffle(samples)
        return samples[0:num]

    @staticmethod
    def _computeFractionForSampleSize(sampleSizeLowerBound: int, total: int,
                                      withReplacement: bool) -> float:
        """A sampling rate that gives at least sampleSizeLowerBound elements 99.99% of the time."""
        fraction = float(sampleSizeLowerBound) / total
        if withReplacement:
            num_st_dev = 9 if sampleSizeLowerBound < 12 else 5
            return fraction + num_st_dev * sqrt(fraction / total)
        delta = 0.00005
        gamma = -log(delta) / total
        return min(1, fraction + gamma + sqrt(gamma * gamma + 2 * gamma * fraction))

    def foreach(self, f: Callable[[Any], None]) -> None:
        """Applies f to every element on the cluster.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4, 5]).foreach(print)  # doctest: +SKIP
        """
        def processPartition(iterator: Iterable[Any]) -> Iterator[Any]:
            for x in iterator:
                f(x)
            return iter([])
        self.mapPartitions(processPartition).count()

    def foreachPartition(self, f: Callable[[Iterator[Any]], None]) -> None:
        """Applies f to the iterator of every partition on the cluster.

        Examples
        --------
        >>> sc.parallelize([1, 2, 3, 4, 5]).foreachPartition(lambda it: print(sum(it)))
        ... # doctest: +SKIP
        """
        def func(iterator: Iterator[Any]) -> Iterator[Any]:
            r = f(iterator)
            if r is None:
                return iter([])
            try:
                return iter(r)
            except TypeError:
                return iter([])
        self.mapPartitions(func).count()

    def collectAsMap(self) -> dict[Any, Any]:
        """The pairs as a dict (a later value of a key wins).

        Examples
        --------
        >>> sc.parallelize([(1, 2), (3, 4)]).collectAsMap()[3]  # doctest: +SKIP
        4
        """
        return dict(self.collect())

    def lookup(self, key: Any) -> list[Any]:
        """The values of key; with a partitioner only the key's partition is scanned.

        Examples
        --------
        >>> sc.parallelize(zip(range(1000), range(1000)), 10).lookup(42)  # doctest: +SKIP
        [42]
        """
        values = self.filter(lambda kv: kv[0] == key).values()
        if self.partitioner is not None:
            # The driver's hash seed differs from the workers': ask a worker.
            partitioner = self.partitioner
            index = self.ctx.parallelize([key], 1).map(partitioner).collect()[0]
            return self.ctx.runJob(values, lambda x: x, [index])
        return values.collect()

    def countApprox(self, timeout: int, confidence: float = 0.95) -> int:
        """The count. Ember waits for the exact value (timeout and confidence are ignored).

        Examples
        --------
        >>> sc.parallelize(range(1000), 10).countApprox(1000, 1.0)  # doctest: +SKIP
        1000
        """
        return self.count()

    def sumApprox(self, timeout: int, confidence: float = 0.95) -> BoundedFloat:
        """The sum as a BoundedFloat; Ember waits for the exact value.

        Examples
        --------
        >>> sc.parallelize(range(1000), 10).sumApprox(1000)  # doctest: +SKIP
        499500.0
        """
        total = float(self.mapPartitions(lambda it: [float(sum(it))]).sum())
        return BoundedFloat(total, 1.0, total, total)

    def meanApprox(self, timeout: int, confidence: float = 0.95) -> BoundedFloat:
        """The mean as a BoundedFloat; Ember waits for the exact value.

        Examples
        --------
        >>> sc.parallelize(range(1000), 10).meanApprox(1000)  # doctest: +SKIP
        499.5
        """
        mean = float(self.map(float).mean())
        return BoundedFloat(mean, 1.0, mean, mean)

    def countApproxDistinct(self, relativeSD: float = 0.05) -> int:
        """Number of distinct elements: Ember counts the distinct 32-bit hashes exactly
        (a shuffle) instead of HyperLogLog, so the answer is within any relativeSD.

        Examples
        --------
        >>> 16 < sc.parallelize([i % 20 for i in range(1000)]).countApproxDistinct() < 24
        ... # doctest: +SKIP
        True
        """
        if relativeSD < 0.000017:
            raise ValueError("relativeSD should be greater than 0.000017")
        return self.map(lambda x: portable_hash(x) & 0xFFFFFFFF).distinct().count()

    def saveAsTextFile(self, path: str, compressionCodecClass: Optional[str] = None) -> None:
        """Writes one ``part-NNNNN`` per partition and ``_SUCCESS``.

        Elements are written as ``str(x)`` lines (bytes as they are, str as
        UTF-8). Each part appears through an atomic rename when its task
        succeeds, so a failed or retried attempt never leaves a partial or
        duplicate file. An existing output directory is an error, as in PySpark.
        When the job fails (say the disk is full: the error names the file and
        ``ENOSPC``), the output directory is removed again.

        Parameters
        ----------
        path : str
        compressionCodecClass : str, optional
            ``org.apache.hadoop.io.compress.GzipCodec``, ``BZip2Codec`` or
            ``DefaultCodec`` (zlib ``.deflate``).

        Examples
        --------
        >>> sc.parallelize(range(10)).saveAsTextFile("/tmp/out")  # doctest: +SKIP
        """
        codec = _CODECS.get((compressionCodecClass or "").rsplit(".", 1)[-1]) \
            if compressionCodecClass else ("", _plain_opener)
        if codec is None:
            raise EmberError(f"compression codec {compressionCodecClass} is not supported: use "
                             "GzipCodec, BZip2Codec or DefaultCodec")
        suffix, opener = codec

        self._save_parts(path, suffix, opener, _write_text_lines)

    def saveAsPickleFile(self, path: str, batchSize: int = 10) -> None:
        """Writes the elements as pickled batches, readable with SparkContext.pickleFile.

        PySpark writes a Hadoop SequenceFile; Ember writes its own format: a
        directory of ``part-NNNNN`` files, each a sequence of frames (4-byte
        big-endian length, then a pickled list of up to batchSize elements;
        batchSize 0 picks about 1000), committed atomically like
        saveAsTextFile, and ``_SUCCESS``.

        Examples
        --------
        >>> sc.parallelize(range(10)).saveAsPickleFile("/tmp/p", 3)  # doctest: +SKIP
        >>> sorted(sc.pickleFile("/tmp/p", 3).collect())  # doctest: +SKIP
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        """
        batch = batchSize if batchSize > 0 else 1000

        def write(fh: IO[bytes], iterator: Iterable[Any]) -> None:
            from ember.shuffle import _dump_frames
            _dump_frames(fh, iterator, batch)
        self._save_parts(path, "", _plain_opener, write)

    def _save_parts(self, path: str, suffix: str, opener: Callable[[str], IO[bytes]],
                    write: Callable[[IO[bytes], Iterable[Any]], None]) -> None:
        from ember.output import save_parts
        save_parts(self, path, suffix, opener, write)


def _paired_with_none(iterator: Iterable[Any]) -> Iterator[Any]:
    """(x, None) for every x, the tuples made in C (a zip that distinct's map
    side recognises as exact pairs: ember.shuffle.combine_locally)."""
    return fused_text.paired_with(iterator, None)


def _write_text_lines(fh: IO[bytes], iterator: Iterable[Any]) -> None:
    """saveAsTextFile's lines: bytes as they are, str as UTF-8, anything else
    as str(x). A batch of plain str is joined and encoded at once (batches of
    about _TEXT_BATCH_BYTES); a batch with anything else, or with a str that
    cannot be encoded (so that the error is the one its own line raises), is
    written line by line."""
    iterator = iter(iterator)
    size = 64
    while True:
        batch = list(islice(iterator, size))
        if not batch:
            return
        if set(map(type, batch)) == {str}:
            try:
                data = "\n".join(batch).encode("utf-8")
            except UnicodeEncodeError:
                pass
            else:
                fh.write(data + b"\n")
                size = max(1, min(_TEXT_BATCH_LINES, _TEXT_BATCH_BYTES * len(batch) // (len(data) + 1)))
                continue
        for x in batch:
            if isinstance(x, bytes):
                fh.write(x)
            else:
                fh.write((x if isinstance(x, str) else str(x)).encode("utf-8"))
            fh.write(b"\n")


_TEXT_BATCH_LINES, _TEXT_BATCH_BYTES = 4096, 1 << 20


def _partition_sorter(keyfunc: Callable[[Any], Any], ascending: Any,
                      shuffled: bool) -> Callable[[Iterable[Any]], Iterator[Any]]:
    """The function sorting one partition of (key, value) records by keyfunc(key),
    stably, within the task's memory limit. Without a keyfunc (identity) the key is
    ember.shuffle.first_item, which ExternalSorter sorts in C; records read from a
    shuffle (shuffled) are held by nobody else, so it may lay out copies of them in
    sorted order."""
    def sortPartition(iterator: Iterable[Any]) -> Iterator[Any]:
        sorter = ExternalSorter(int(task_memory_limit() * 0.9))
        key = first_item if keyfunc is identity else lambda kv: keyfunc(kv[0])
        return iter(sorter.sorted(iterator, key=key, reverse=not ascending, compact=shuffled))
    return sortPartition


def _identity(x: Any) -> Any:
    return x


def _comparable(x: Any) -> bool:
    if x is None:
        return False
    if type(x) is float and isnan(x):
        return False
    return True


def _check_buckets(buckets: Sequence[Any]) -> tuple:
    if len(buckets) < 2:
        raise ValueError("buckets should have more than one value")
    if any(i is None or isinstance(i, float) and isnan(i) for i in buckets):
        raise ValueError("can not have None or NaN in buckets")
    if sorted(buckets) != list(buckets):
        raise ValueError("buckets should be sorted")
    if len(set(buckets)) != len(buckets):
        raise ValueError("buckets should not contain duplicated values")
    minv, maxv = buckets[0], buckets[-1]
    even, inc = False, None
    try:
        steps = [buckets[i + 1] - buckets[i] for i in range(len(buckets) - 1)]
    except TypeError:
        pass    # the buckets do not support '-'
    else:
        if max(steps) - min(steps) < 1e-10:   # precision errors
            even = True
            inc = (maxv - minv) / (len(buckets) - 1)
    return minv, maxv, even, inc


def _plain_opener(path: str) -> IO[bytes]:
    return open(path, "wb")


def _deflate_opener(path: str) -> IO[bytes]:
    return _ZlibWriter(path)


class _ZlibWriter:
    """A file written through zlib, as Hadoop's DefaultCodec (``.deflate``)."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "wb")
        self._z = zlib.compressobj()

    def write(self, data: bytes) -> None:
        self._fh.write(self._z.compress(data))

    def __enter__(self) -> "_ZlibWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._fh.write(self._z.flush())
        self._fh.close()


_CODECS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "GzipCodec": (".gz", lambda path: gzip.open(path, "wb")),
    "BZip2Codec": (".bz2", lambda path: bz2.open(path, "wb")),
    "DefaultCodec": (".deflate", _deflate_opener),
}


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
    """Files of frames (checkpoint parts, saveAsPickleFile parts), one partition per file."""

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


class UnionRDD(RDD):
    """The partitions of several RDDs, one after another (see ember.lineage.plain_union)."""

    def __init__(self, ctx: "SparkContext", rdds: list[RDD]) -> None:
        super().__init__(ctx, sum(r.getNumPartitions() for r in rdds))
        self._rdds = rdds
        self._logical = list(rdds)

    def _dependencies(self) -> list[RDD]:
        return list(self._rdds)

    def _node(self) -> dict:
        node = self._base_node("union")
        node["parents"] = [r.id for r in self._rdds]
        return node


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


def union_of(ctx: "SparkContext", rdds: list[RDD]) -> RDD:
    """SparkContext.union's choice (see ember.lineage.union)."""
    return lineage.union(ctx, rdds)
