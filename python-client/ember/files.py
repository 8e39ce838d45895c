"""Input paths and splits for textFile, with Hadoop's rules."""

from __future__ import annotations

import glob
import os

from ember.errors import EmberError

# Hadoop's local file system block size and split slop.
BLOCK_SIZE = 32 * 1024 * 1024
SPLIT_SLOP = 1.1


class InputPathError(EmberError, FileNotFoundError):
    """An input path matches no file."""


def expand_paths(name: str) -> list[str]:
    """Absolute file paths of a textFile argument, in sorted order per entry."""
    found: list[str] = []
    for entry in name.split(","):
        entry = entry.strip()
        if entry.startswith("file://"):
            entry = entry[len("file://"):]
        matches = sorted(glob.glob(entry)) if glob.has_magic(entry) else [entry]
        if not matches or not all(os.path.exists(m) for m in matches):
            raise InputPathError(f"Input path does not exist: {os.path.abspath(entry)}")
        for match in matches:
            found.extend(_files_under(os.path.abspath(match)))
    return found


def _files_under(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    names = sorted(n for n in os.listdir(path) if not n.startswith(("_", ".")))
    return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]


def text_splits(name: str, min_partitions: int) -> list[dict]:
    """Splits as Hadoop's FileInputFormat computes them."""
    paths = expand_paths(name)
    sizes = [os.path.getsize(p) for p in paths]
    goal = sum(sizes) // max(min_partitions, 1)
    split_size = max(1, min(goal, BLOCK_SIZE))
    splits = []
    for path, size in zip(paths, sizes):
        start = 0
        while size - start > split_size * SPLIT_SLOP:
            splits.append({"path": path, "start": start, "length": split_size})
            start += split_size
        if size - start > 0 or size == 0:
            splits.append({"path": path, "start": start, "length": size - start})
    return splits
