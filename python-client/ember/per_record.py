"""The per-record loops of RDD.mapValues and RDD.count, in C inside ember-pyexec.

Module functions (pickled by reference), so that the choice between C and
Python is made where the task runs: the driver has no _ember_fast. The C
versions (services/pyexec/pyexec_values.c) call the same user code in the same
order with the same exceptions; only a traceback lacks the wrapper's frame.

Examples
--------
>>> list(map_values(len, iter([("a", "xy"), ("b", "")])))
[('a', 2), ('b', 0)]
>>> count(iter("abc"))
3
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

try:        # inside ember-pyexec
    import _ember_fast
except ImportError:  # on the driver
    _ember_fast = None


def map_values(f: Callable[[Any], Any], records: Iterable[Any]) -> Iterator[Any]:
    """(kv[0], f(kv[1])) for every record kv."""
    if _ember_fast is not None:
        return _ember_fast.map_values(f, records)

    def map_value(kv: Any) -> Any:
        return kv[0], f(kv[1])
    return map(map_value, records)


def count(records: Iterable[Any]) -> int:
    """The number of records."""
    if _ember_fast is not None:
        return _ember_fast.count(records)
    return sum(1 for _ in records)
