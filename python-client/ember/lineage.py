"""Unions, narrow dependencies on several partitions, and ``toDebugString``.

The master's ``concat`` node (docs/ARCHITECTURE.md, "Task plans") lets one
task read listed partitions of several parents and combine them (one after
another, zipped, or every pair), so PySpark's multi-parent narrow dependencies
run without a shuffle:

* the union of RDDs that share a partitioner (Spark's PartitionerAwareUnionRDD):
  partition i is partition i of each parent, so joining co-partitioned RDDs
  needs no new shuffle;
* ``coalesce`` without shuffle: consecutive partitions, in order;
* ``zip`` and ``cartesian``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ember.context import SparkContext
    from ember.rdd import RDD


def plain_union(ctx: "SparkContext", rdds: list["RDD"]) -> "RDD":
    """The partitions of rdds one after another (Spark's UnionRDD)."""
    from ember.rdd import DataRDD, UnionRDD
    parents = [r for r in rdds if r.getNumPartitions() > 0]
    if not parents:
        empty = DataRDD(ctx, [])
        empty._debug_class = "UnionRDD"
        return empty
    union = UnionRDD(ctx, parents)
    union._logical = list(rdds)
    return union


def union(ctx: "SparkContext", rdds: list["RDD"]) -> "RDD":
    """SparkContext.union: partitioner-aware when every non-empty RDD has one partitioner.

    The result has no Python partitioner, as in PySpark; RDD.union sets it.
    """
    parents = [r for r in rdds if r.getNumPartitions() > 0]
    first = parents[0].partitioner if parents else None
    if first is not None and all(r.partitioner == first for r in parents):
        return partitioner_aware_union(ctx, parents)
    return plain_union(ctx, rdds)


def partitioner_aware_union(ctx: "SparkContext", rdds: list["RDD"]) -> "RDD":
    """Partition i is partition i of each RDD in turn (they have as many partitions)."""
    from ember.rdd import ConcatRDD
    n = rdds[0].getNumPartitions()
    groups = [[[k, i] for k in range(len(rdds))] for i in range(n)]
    united = ConcatRDD(ctx, list(rdds), groups, "concat")
    united._debug_class = "PartitionerAwareUnionRDD"
    return united


class _SideBoundary:
    """Marks where one parent's records end in a "sides" partition."""

    def __repr__(self) -> str:
        return "SIDE_BOUNDARY"

    def __reduce__(self) -> str:
        return "SIDE_BOUNDARY"      # one object in every process


SIDE_BOUNDARY = _SideBoundary()


def sides(ctx: "SparkContext", rdds: list["RDD"]) -> "RDD":
    """Partition i is partition i of each RDD in turn with SIDE_BOUNDARY between
    them, for a function that must tell the sides apart (a co-partitioned join)
    without tagging every record."""
    from ember.rdd import ConcatRDD
    n = rdds[0].getNumPartitions()
    groups = [[[k, i] for k in range(len(rdds))] for i in range(n)]
    united = ConcatRDD(ctx, list(rdds), groups, "sides")
    united._debug_class = "PartitionerAwareUnionRDD"
    return united


def coalesce_groups(num_sources: int, num_out: int) -> list[list[int]]:
    """Source partitions of each target: consecutive ranges, as Spark's coalescer without
    locality preferences (target i takes ``[i*n/m, (i+1)*n/m)``).

    Examples
    --------
    >>> coalesce_groups(5, 2)
    [[0, 1], [2, 3, 4]]
    """
    return [list(range(i * num_sources // num_out, (i + 1) * num_sources // num_out))
            for i in range(num_out)]


def coalesced(rdd: "RDD", num_out: int) -> "RDD":
    """rdd in num_out partitions of consecutive source partitions, without a shuffle."""
    from ember.rdd import ConcatRDD
    if num_out == 0:
        return plain_union(rdd.ctx, [])
    sources = coalesce_groups(rdd.getNumPartitions(), num_out)
    # rdd is listed once per member of the largest group: the master sizes a
    # task's function table by counting parents (see the report on master_walk.c).
    width = max(len(group) for group in sources)
    groups = [[[j, s] for j, s in enumerate(group)] for group in sources]
    result = ConcatRDD(rdd.ctx, [rdd] * width, groups, "concat")
    result._debug_class = "CoalescedRDD"
    return result


def zipped(left: "RDD", right: "RDD") -> "RDD":
    """Partition i pairs the elements of partition i of left and right."""
    from ember.rdd import ConcatRDD
    groups = [[[0, i], [1, i]] for i in range(left.getNumPartitions())]
    result = ConcatRDD(left.ctx, [left, right], groups, "zip")
    result._debug_class = "ZippedPartitionsRDD2"
    return result


def cartesian(left: "RDD", right: "RDD") -> "RDD":
    """Partition ``i * right.getNumPartitions() + j``: every pair of partition i of left
    and partition j of right (Spark's CartesianRDD)."""
    from ember.rdd import ConcatRDD
    groups = [[[0, i], [1, j]] for i in range(left.getNumPartitions())
              for j in range(right.getNumPartitions())]
    result = ConcatRDD(left.ctx, [left, right], groups, "cartesian")
    result._debug_class = "CartesianRDD"
    return result


# ---- toDebugString -------------------------------------------------------------------------

def _deps(rdd: "RDD") -> list[tuple["RDD", bool]]:
    from ember.rdd import ShuffledRDD, UnionRDD
    if isinstance(rdd, ShuffledRDD):
        return [(rdd.prev, True)]
    if isinstance(rdd, UnionRDD):
        return [(p, False) for p in rdd._logical]
    parents: list["RDD"] = []
    for p in rdd._lineage_parents():
        if all(p is not q for q in parents):
            parents.append(p)
    return [(p, False) for p in parents]


def _describe(rdd: "RDD") -> str:
    level = rdd.getStorageLevel() if rdd.is_cached else None
    return f"{rdd!r} [{level if level is not None else ''}]"


def _children(rdd: "RDD", prefix: str) -> list[str]:
    deps = _deps(rdd)
    lines: list[str] = []
    for i, (dep, is_shuffle) in enumerate(deps):
        lines += _lines(dep, prefix, is_shuffle, i == len(deps) - 1)
    return lines


def _lines(rdd: "RDD", prefix: str, is_shuffle: bool, is_last: bool) -> list[str]:
    if not is_shuffle:
        return [prefix + _describe(rdd)] + _children(rdd, prefix)
    count = f"({rdd.getNumPartitions()})"
    left = (len(count) - 1) // 2
    this_prefix = re.sub(r"\|\s+$", "", prefix)
    next_prefix = (this_prefix + ("  " if is_last else "| ") + " " * left + "|"
                   + " " * (len(count) - left))
    return [f"{this_prefix}+-{count} {_describe(rdd)}"] + _children(rdd, next_prefix)


def debug_string(rdd: "RDD") -> str:
    """Spark's RDD.toDebugString layout: one line per RDD, indented at shuffles."""
    count = f"({rdd.getNumPartitions()})"
    left = (len(count) - 1) // 2
    next_prefix = " " * left + "|" + " " * (len(count) - left)
    return "\n".join([f"{count} {_describe(rdd)}"] + _children(rdd, next_prefix))
