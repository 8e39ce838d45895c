"""How functions and records travel: cloudpickle for functions, pickle
batches in length-prefixed frames for records (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import base64
import inspect
import pickle
import struct
from typing import Any, Callable, Iterator

import cloudpickle

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


def dumps_function(func: Callable) -> str:
    """cloudpickles func as base64; names the culprit when it cannot be pickled."""
    try:
        data = cloudpickle.dumps(func, PICKLE_PROTOCOL)
    except Exception as err:  # noqa: BLE001 - cloudpickle raises many types
        culprit = _culprit(func)
        where = f": it captures {culprit}" if culprit else ""
        raise UnpicklableClosureError(
            f"could not serialize a function for the cluster{where} ({err})") from None
    return base64.b64encode(data).decode("ascii")


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
