"""Reliable checkpoints: an RDD's partitions written to files under the
context's checkpoint directory, after which its lineage stops there.

A part file is the same sequence of frames as a block (4-byte big-endian
length + a pickled list of records), so workers stream it to their Python
subprocess as it is.
"""

from __future__ import annotations

import os
import pickle
import struct
import uuid
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ember.errors import EmberError

if TYPE_CHECKING:
    from ember.rdd import RDD

_BATCH = 1024


def _write_frames(path: str, records: Iterator[Any]) -> None:
    """Writes records as frames to path through a temporary name."""
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as fh:
        batch: list[Any] = []
        for record in records:
            batch.append(record)
            if len(batch) >= _BATCH:
                data = pickle.dumps(batch, 5)
                fh.write(struct.pack(">i", len(data)) + data)
                batch = []
        if batch:
            data = pickle.dumps(batch, 5)
            fh.write(struct.pack(">i", len(data)) + data)
    os.replace(tmp, path)


def part_paths(folder: str, n: int) -> list[str]:
    return [os.path.join(folder, "part-%05d" % i) for i in range(n)]


def write(rdd: "RDD", directory: str) -> list[str]:
    """Runs a job writing every partition of rdd; returns the part files."""
    folder = os.path.join(directory, f"rdd-{rdd.id}")
    os.makedirs(folder, exist_ok=True)
    paths = part_paths(folder, rdd.getNumPartitions())

    def write_part(split: int, iterator: Iterator[Any]) -> Iterable[Any]:
        _write_frames(paths[split], iterator)
        return []

    rdd.mapPartitionsWithIndex(write_part)._run()
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise EmberError(f"checkpoint of RDD {rdd.id} is missing {missing[0]}: is the checkpoint "
                         "directory on storage every worker shares?")
    return paths


def new_directory(root: str) -> str:
    """<root>/<uuid>, as PySpark names a context's checkpoint directory."""
    folder = os.path.join(os.path.abspath(root), str(uuid.uuid4()))
    os.makedirs(folder, exist_ok=True)
    return folder
