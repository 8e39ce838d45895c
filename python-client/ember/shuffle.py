"""Partitioning of (key, value) records across reduce partitions."""

from __future__ import annotations

from typing import Any, Callable


def portable_hash(x: Any) -> int:
    """PySpark's portable_hash: hash() with a fixed rule for None and tuples.

    Workers run with hash seed 0, so str keys land in the same partition on
    every worker. Never partition on the driver with this.
    """
    if x is None:
        return 0
    if isinstance(x, tuple):
        h = 0x345678
        for i in x:
            h ^= portable_hash(i)
            h *= 1000003
            h &= 0xFFFFFFFFFFFFFFFF
        h ^= len(x)
        if h == -1:
            h = -2
        return int(h)
    return hash(x)


class Partitioner:
    """Sends key k to partition ``partitionFunc(k) % numPartitions``."""

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
