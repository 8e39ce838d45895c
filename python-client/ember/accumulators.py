"""Accumulators: variables that tasks only add to and the driver reads, as in
PySpark. Each successful task's updates reach the driver once; updates of
failed or written-off attempts are dropped by the master."""

from __future__ import annotations

import base64
import pickle
import threading
from typing import Any, Generic, Optional, TypeVar

T = TypeVar("T")

# Accumulators created on the driver, by id.
_driver_registry: dict[int, "Accumulator"] = {}
_next_id = 0
_lock = threading.Lock()

# Inside a task: the copies the task's functions add to, by id.
_task_registry: dict[int, "Accumulator"] = {}


class AccumulatorParam(Generic[T]):
    """How to add values of a custom type: ``zero`` and ``addInPlace``."""

    def zero(self, value: T) -> T:
        raise NotImplementedError

    def addInPlace(self, value1: T, value2: T) -> T:
        raise NotImplementedError


class _NumberParam(AccumulatorParam):
    def zero(self, value: Any) -> Any:
        return type(value)(0)

    def addInPlace(self, value1: Any, value2: Any) -> Any:
        value1 += value2
        return value1


INT_ACCUMULATOR_PARAM = _NumberParam()
FLOAT_ACCUMULATOR_PARAM = _NumberParam()
COMPLEX_ACCUMULATOR_PARAM = _NumberParam()


def _rebuild(aid: int, zero: Any, param: AccumulatorParam) -> "Accumulator":
    """Unpickling inside a task: a fresh copy starting at zero, registered for the update."""
    acc = _task_registry.get(aid)
    if acc is None:
        acc = Accumulator(aid, zero, param, on_driver=False)
        _task_registry[aid] = acc
    return acc


class Accumulator(Generic[T]):
    """A shared variable tasks add to with ``+=`` or ``add``; ``value`` on the driver.

    Examples
    --------
    >>> acc = sc.accumulator(0)  # doctest: +SKIP
    >>> sc.parallelize(range(5)).foreach(lambda x: acc.add(x))  # doctest: +SKIP
    >>> acc.value  # doctest: +SKIP
    10
    """

    def __init__(self, aid: int, value: T, accum_param: AccumulatorParam,
                 on_driver: bool = True) -> None:
        self.aid = aid
        self.accum_param = accum_param
        self._value = value
        self._on_driver = on_driver

    def __reduce__(self) -> tuple:
        return (_rebuild, (self.aid, self.accum_param.zero(self._value), self.accum_param))

    @property
    def value(self) -> T:
        if not self._on_driver:
            raise RuntimeError("Accumulator.value cannot be accessed inside tasks")
        return self._value

    @value.setter
    def value(self, value: T) -> None:
        if not self._on_driver:
            raise RuntimeError("Accumulator.value cannot be set inside tasks")
        self._value = value

    def add(self, term: T) -> None:
        with _lock:
            self._value = self.accum_param.addInPlace(self._value, term)

    def __iadd__(self, term: T) -> "Accumulator[T]":
        self.add(term)
        return self

    def __str__(self) -> str:
        return str(self._value)

    def __repr__(self) -> str:
        return f"Accumulator<id={self.aid}, value={self._value}>"


def new_accumulator(value: Any, accum_param: Optional[AccumulatorParam]) -> Accumulator:
    global _next_id
    if accum_param is None:
        if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
            raise TypeError(f"no default AccumulatorParam for type {type(value).__name__}; "
                            "pass accum_param")
        accum_param = INT_ACCUMULATOR_PARAM
    with _lock:
        _next_id += 1
        acc = Accumulator(_next_id, value, accum_param)
        _driver_registry[acc.aid] = acc
    return acc


def task_updates() -> Optional[str]:
    """Inside a task, at its end: the pickled updates (base64), and a reset."""
    if not _task_registry:
        return None
    updates = {aid: acc._value for aid, acc in _task_registry.items()}
    _task_registry.clear()
    return base64.b64encode(pickle.dumps(updates)).decode("ascii")


def reset_task() -> None:
    _task_registry.clear()


def apply_updates(encoded: list[str]) -> None:
    """On the driver, when a job ended: merges each counted task's updates."""
    for item in encoded:
        for aid, update in pickle.loads(base64.b64decode(item)).items():
            acc = _driver_registry.get(aid)
            if acc is not None:
                acc.add(update)
