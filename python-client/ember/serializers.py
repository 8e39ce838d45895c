"""How functions and records travel: cloudpickle for functions, pickle
batches in length-prefixed frames for records (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import base64
import inspect
import pickle
import struct
from typing import Any, Callable, Iterator

import cloudpickle

from ember import function_pickles

PICKLE_PROTOCOL = 5


class UnpicklableClosureError(pickle.PicklingError):
    """A function sent to the cluster captures something that cannot be pickled."""


def _culprit(func: Callable) -> str:
    """Names the captured variable that fails to pickle, searching nested functions."""
    seen: set[int] = set()
    stack = [func]
    while stack:
        f = stack.pop()
        if id(f) in seen or not callable(f):
            continue
        seen.add(id(f))
        try:
            captured = inspect.getclosurevars(f)
        except (TypeError, ValueError):
            continue
        for scope in (captured.nonlocals, captured.globals):
            for name, value in scope.items():
                if inspect.isfunction(value):
                    stack.append(value)
                    continue
                try:
                    cloudpickle.dumps(value)
                except Exception:  # noqa: BLE001 - any failure names the culprit
                    return f"'{name}' of type {type(value).__module__}.{type(value).__qualname__}"
    return ""


# PySpark broadcasts a pickled command over 1 MiB instead of shipping it with every task.
BROADCAST_THRESHOLD = 1 << 20


class _BroadcastFunction:
    """A function too big to ship with each task: it travels as a broadcast and
    is unpickled once per Python subprocess."""

    def __init__(self, holder: Any) -> None:
        self.holder = holder

    def __call__(self, split: int, iterator: Iterator[Any]) -> Any:
        return self.holder.value(split, iterator)


def _cloudpickle(func: Callable) -> bytes:
    return cloudpickle.dumps(func, PICKLE_PROTOCOL)


def dumps_function(func: Callable, sc: Any = None) -> str:
    """cloudpickles func as base64; names the culprit when it cannot be pickled.

    With a SparkContext, a function that pickles to more than 1 MiB is
    broadcast and replaced by a small handle.
    """
    try:
        data = function_pickles.dumps(func, _cloudpickle)
        if sc is not None and len(data) > BROADCAST_THRESHOLD:
            from ember.broadcast import Broadcast
            holder = Broadcast(sc, None, pickled=data)
            data = cloudpickle.dumps(_BroadcastFunction(holder), PICKLE_PROTOCOL)
    except Exception as err:  # noqa: BLE001 - cloudpickle raises many types
        culprit = _culprit(func)
        where = f": it captures {culprit}" if culprit else ""
        raise UnpicklableClosureError(
            f"could not serialize a function for the cluster{where} ({err})") from None
    return function_pickles.base64_text(data)


def dumps_batch(records: list[Any]) -> str:
    return base64.b64encode(pickle.dumps(records, PICKLE_PROTOCOL)).decode("ascii")


def iter_frames(block: bytes) -> Iterator[Any]:
    """Records of a result block: frames of pickled lists."""
    view = memoryview(block)
    offset = 0
    while offset + 4 <= len(view):
        (length,) = struct.unpack_from(">i", view, offset)
        offset += 4
        yield from pickle.loads(view[offset:offset + length])
        offset += length
