"""Inputs read inside tasks: whole files, fixed-length records, pickle files.

The driver ships only file names (one data slice per partition, grouped as
Hadoop's CombineFileInputFormat groups them); each task opens its files, so
inputs of any size never pass through the driver.
"""

from __future__ import annotations

import math
import os
import urllib.request
from typing import Any, Callable, Iterable, Iterator

from ember import files
from ember.shuffle import _read_stream

_READ_CHUNK = 1 << 20


def hadoop_path(path: str) -> str:
    """The path as Hadoop prints it: ``file:/abs/path`` for a local file, URLs as they are.

    Examples
    --------
    >>> hadoop_path("/tmp/a.txt")
    'file:/tmp/a.txt'
    """
    return path if files.is_url(path) else "file:" + path


def input_size(path: str) -> int:
    """Size in bytes of a local file or of the object at a URL."""
    return files.url_size(path)[0] if files.is_url(path) else os.path.getsize(path)


def read_all(path: str) -> bytes:
    """The whole content of a local file or URL."""
    if files.is_url(path):
        request = urllib.request.Request(path, headers={"User-Agent": "ember-worker"})
        with urllib.request.urlopen(request, timeout=files.HTTP_TIMEOUT_S) as resp:
            return resp.read()
    with open(path, "rb") as fh:
        return fh.read()


def combine_files(paths: list[str], sizes: list[int], min_partitions: int) -> list[list[str]]:
    """Groups whole files into splits as Spark's WholeTextFileInputFormat does.

    The split size is ``ceil(total / minPartitions)``; files are added in order
    and a split closes once it reaches that size (so there are about
    minPartitions splits; an input of zero bytes is one split).

    Examples
    --------
    >>> combine_files(["a", "b", "c", "d"], [10, 10, 10, 10], 2)
    [['a', 'b'], ['c', 'd']]
    >>> combine_files(["a", "b", "c"], [10, 10, 10], 2)
    [['a', 'b'], ['c']]
    """
    total = sum(sizes)
    max_split = math.ceil(total / max(min_partitions, 1))
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for path, length in zip(paths, sizes):
        current.append(path)
        size += length
        if max_split and size >= max_split:
            groups.append(current)
            current, size = [], 0
    if current:
        groups.append(current)
    return groups


def whole_files(use_unicode: bool, binary: bool) -> Callable[[Iterable[str]], Iterator[Any]]:
    """A partition function: file names in, (path, content) records out."""
    def read(paths: Iterable[str]) -> Iterator[Any]:
        for path in paths:
            data = read_all(path)
            key = hadoop_path(path)
            if binary:
                yield key, data
                continue
            text = data.decode("utf-8", "replace")
            yield (key, text) if use_unicode else (key.encode("utf-8"), text.encode("utf-8"))
    return read


def fixed_length_splits(paths: list[str], record_length: int,
                        split_size: int = files.BLOCK_SIZE) -> list[dict]:
    """File ranges of whole records (Spark's FixedLengthBinaryInputFormat split sizes).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as fh:
    ...     _ = fh.write(b"x" * 100)
    ...     fh.flush()
    ...     [(s["start"], s["length"]) for s in fixed_length_splits([fh.name], 10, 32)]
    [(0, 30), (30, 30), (60, 40)]
    """
    size = max(record_length, split_size // record_length * record_length)
    splits = []
    for path in paths:
        length = input_size(path)
        start = 0
        while length - start > size * files.SPLIT_SLOP:
            splits.append({"path": path, "start": start, "length": size})
            start += size
        if length - start > 0:
            splits.append({"path": path, "start": start, "length": length - start})
    return splits


def fixed_length_records(record_length: int) -> Callable[[Iterable[dict]], Iterator[bytes]]:
    """A partition function: file ranges in, records of record_length bytes out."""
    def read(splits: Iterable[dict]) -> Iterator[bytes]:
        for split in splits:
            data = _read_range(split["path"], split["start"], split["length"])
            if len(data) % record_length:
                raise ValueError(f"{split['path']} has a partial record at its end: its size is "
                                 f"not a multiple of recordLength {record_length}")
            for offset in range(0, len(data), record_length):
                yield data[offset:offset + record_length]
    return read


def _read_range(path: str, start: int, length: int) -> bytes:
    if files.is_url(path):
        headers = {"User-Agent": "ember-worker", "Range": f"bytes={start}-{start + length - 1}"}
        request = urllib.request.Request(path, headers=headers)
        with urllib.request.urlopen(request, timeout=files.HTTP_TIMEOUT_S) as resp:
            data = resp.read()
            return data if resp.status == 206 else data[start:start + length]
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(length)


def pickle_files(paths: Iterable[str]) -> Iterator[Any]:
    """A partition function: pickle-file parts in, their records out (saveAsPickleFile)."""
    for path in paths:
        if files.is_url(path):
            import io
            yield from _read_stream(io.BytesIO(read_all(path)))
            continue
        with open(path, "rb", _READ_CHUNK) as fh:
            yield from _read_stream(fh)
