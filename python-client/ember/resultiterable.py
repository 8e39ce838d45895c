"""ResultIterable: the values of one key after groupByKey or cogroup, as in PySpark."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Iterator, Sized

try:        # inside ember-pyexec: __init__, __iter__ and __len__ in C (pyexec_values.c)
    from _ember_fast import ResultIterableBase as _Slots
except ImportError:  # on the driver

    class _Slots:                      # type: ignore[no-redef]
        """ResultIterable's __init__, __iter__ and __len__. Inside ember-pyexec
        _ember_fast.ResultIterableBase does the same in C: a group's
        construction, iteration and len() then run no Python frame (PageRank's
        contributions call list() of millions of groups)."""

        def __init__(self, data: Any) -> None:
            self.data: Sized = data
            self.index = 0
            self.maxindex = len(data)

        def __iter__(self) -> Iterator[Any]:
            return iter(self.data)

        def __len__(self) -> int:
            return len(self.data)


class ResultIterable(_Slots, Iterable):
    """A re-iterable, sized collection of values (it may live partly on disk).

    Parameters
    ----------
    data : sized iterable
        A list, or an :class:`ember.shuffle.ExternalList` for a large group.

    Examples
    --------
    >>> values = ResultIterable([1, 2, 3])
    >>> len(values), list(values), sum(values)
    (3, [1, 2, 3], 6)
    """

    def __reduce__(self) -> tuple:
        data = self.data
        return (ResultIterable, (data if type(data) is list else list(data),))

    def __repr__(self) -> str:
        return f"<ResultIterable of {len(self)} values>"
