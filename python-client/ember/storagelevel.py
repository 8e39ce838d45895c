"""StorageLevel: how a persisted RDD is kept, with PySpark's levels."""

from __future__ import annotations


class StorageLevel:
    """Flags for ``RDD.persist``: use disk, use memory, off-heap, deserialized,
    and the number of replicas (each on a different block manager).

    Ember keeps ``OFF_HEAP`` blocks in memory like ``MEMORY_ONLY``.

    Examples
    --------
    >>> StorageLevel.MEMORY_AND_DISK_2.replication
    2
    """

    DISK_ONLY: "StorageLevel"
    DISK_ONLY_2: "StorageLevel"
    DISK_ONLY_3: "StorageLevel"
    MEMORY_ONLY: "StorageLevel"
    MEMORY_ONLY_2: "StorageLevel"
    MEMORY_AND_DISK: "StorageLevel"
    MEMORY_AND_DISK_2: "StorageLevel"
    MEMORY_AND_DISK_DESER: "StorageLevel"
    OFF_HEAP: "StorageLevel"
    NONE: "StorageLevel"

    def __init__(self, useDisk: bool, useMemory: bool, useOffHeap: bool, deserialized: bool,
                 replication: int = 1) -> None:
        self.useDisk = useDisk
        self.useMemory = useMemory
        self.useOffHeap = useOffHeap
        self.deserialized = deserialized
        self.replication = replication

    def _flags(self) -> tuple:
        return (self.useDisk, self.useMemory, self.useOffHeap, self.deserialized,
                self.replication)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorageLevel) and self._flags() == other._flags()

    def __hash__(self) -> int:
        return hash(self._flags())

    def __repr__(self) -> str:
        return "StorageLevel(%s, %s, %s, %s, %s)" % self._flags()

    def __str__(self) -> str:
        parts = []
        if self.useDisk:
            parts.append("Disk")
        if self.useMemory:
            parts.append("Memory")
        if self.useOffHeap:
            parts.append("OffHeap")
        parts.append("Deserialized" if self.deserialized else "Serialized")
        parts.append(f"{self.replication}x Replicated")
        return " ".join(parts)

    def _to_json(self) -> dict:
        return {"useDisk": self.useDisk, "useMemory": self.useMemory,
                "useOffHeap": self.useOffHeap, "replication": self.replication}


StorageLevel.NONE = StorageLevel(False, False, False, False)
StorageLevel.DISK_ONLY = StorageLevel(True, False, False, False)
StorageLevel.DISK_ONLY_2 = StorageLevel(True, False, False, False, 2)
StorageLevel.DISK_ONLY_3 = StorageLevel(True, False, False, False, 3)
StorageLevel.MEMORY_ONLY = StorageLevel(False, True, False, False)
StorageLevel.MEMORY_ONLY_2 = StorageLevel(False, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK = StorageLevel(True, True, False, False)
StorageLevel.MEMORY_AND_DISK_2 = StorageLevel(True, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK_DESER = StorageLevel(True, True, False, True)
StorageLevel.OFF_HEAP = StorageLevel(True, True, True, False, 1)
