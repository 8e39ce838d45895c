"""Frames of a cached partition kept for the rest of one task, to be read again.

A task whose plan computes a persisted partition twice (a "repeat" leaf,
docs/ARCHITECTURE.md "Task plans") computes it once; the second read replays
the cache tee's records. When the tee does not keep them as objects (the
pyexec's object cache is off or too small for them), it keeps the frames it
wrote to the cache block instead: in memory up to the task's memory limit
(``spark.python.worker.memory``), past it in an unlinked temporary file under
``spark.local.dir``. Replaying decodes them as a read of the block would.
"""

from __future__ import annotations

import os
import struct
import tempfile
from typing import IO, Any, Callable, Iterator, Optional

_HEADER = struct.Struct(">i")


class ReplayFrames:
    """Frames appended while a cache tee writes them, read back as records.

    Parameters
    ----------
    limit : int
        Bytes kept in memory; past them every frame goes to a temporary file.
    spill_dir : str
        Where the temporary file is made.
    loads : callable
        A frame's bytes -> its list of records.

    Examples
    --------
    >>> import pickle
    >>> frames = ReplayFrames(16, tempfile.gettempdir(), pickle.loads)
    >>> frames.add(b"SLOT" + pickle.dumps([1, 2]), 4)
    >>> frames.add(b"SLOT" + pickle.dumps([3]), 4)
    >>> list(frames.records())
    [1, 2, 3]
    >>> frames.close()
    """

    def __init__(self, limit: int, spill_dir: str, loads: Callable[[Any], list]) -> None:
        self._limit = limit
        self._dir = spill_dir
        self._loads = loads
        self._memory: list[tuple[bytes, int]] = []
        self._used = 0
        self._file: Optional[IO[bytes]] = None
        self._end = 0                  # bytes written to the file

    def add(self, data: bytes, offset: int) -> None:
        """Keeps the frame data[offset:] (data is kept whole: no copy)."""
        if self._file is None:
            self._used += len(data) - offset
            self._memory.append((data, offset))
            if self._used <= self._limit:
                return
            self._file = tempfile.TemporaryFile(prefix="ember-replay-", dir=self._dir)
            memory, self._memory = self._memory, []
            for kept, start in memory:
                self._write(kept, start)
            return
        self._write(data, offset)

    def _write(self, data: bytes, offset: int) -> None:
        view = memoryview(data)[offset:]
        self._file.write(_HEADER.pack(len(view)))
        self._file.write(view)
        self._end += 4 + len(view)

    def records(self) -> Iterator[Any]:
        """The records of every frame, in order (as often as asked, until close)."""
        if self._file is None:
            for data, offset in list(self._memory):
                yield from self._loads(memoryview(data)[offset:])
            return
        self._file.flush()
        fd, end, offset = self._file.fileno(), self._end, 0
        while offset < end:
            (length,) = _HEADER.unpack(os.pread(fd, 4, offset))
            yield from self._loads(os.pread(fd, length, offset + 4))
            offset += 4 + length

    def close(self) -> None:
        self._memory = []
        if self._file is not None:
            self._file.close()
            self._file = None
