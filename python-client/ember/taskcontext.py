"""TaskContext: what a running task knows about itself, as in PySpark."""

from __future__ import annotations

from typing import Optional


class TaskContext:
    """Information about the task attempt running the current function.

    ``TaskContext.get()`` returns ``None`` on the driver.

    Examples
    --------
    >>> rdd.map(lambda x: TaskContext.get().partitionId())  # doctest: +SKIP
    """

    _current: Optional["TaskContext"] = None

    def __init__(self, header: dict) -> None:
        self._header = header

    @classmethod
    def get(cls) -> Optional["TaskContext"]:
        return cls._current

    @classmethod
    def _set(cls, header: Optional[dict]) -> None:
        cls._current = cls(header) if header is not None else None

    def partitionId(self) -> int:
        return self._header["partition"]

    def stageId(self) -> int:
        return self._header["stageId"]

    def attemptNumber(self) -> int:
        return self._header["attempt"]

    def taskAttemptId(self) -> int:
        return self._header["taskId"]

    def getLocalProperty(self, key: str) -> Optional[str]:
        return self._header.get("properties", {}).get(key)
