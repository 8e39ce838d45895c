"""Broadcast variables: a read-only value stored once in the cluster's block
managers, fetched once per host and unpickled once per Python subprocess."""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING, Any, Generic, Optional, TypeVar

import cloudpickle

from ember.errors import EmberError

if TYPE_CHECKING:
    from ember.context import SparkContext

T = TypeVar("T")

# Inside a task: pickled values the worker sent, and their unpickled form.
_worker_bytes: dict[int, bytes] = {}
_worker_values: dict[int, Any] = {}

# While functions are pickled for a job: the ids of the broadcasts they use.
_collecting = threading.local()


# How many values this process has unpickled: the runtime freezes long-lived
# data out of the garbage collector's sight after a task that added some.
unpickled_values = 0


def _unpickle_worker_value(bid: int) -> None:
    global unpickled_values
    _worker_values[bid] = cloudpickle.loads(_worker_bytes.pop(bid))
    unpickled_values += 1


def register_worker_value(bid: int, data: bytes) -> None:
    _worker_bytes[bid] = data
    if _worker_values.pop(bid, None) is not None:
        gc.unfreeze()     # the replaced value may hold cycles: let the collector see them


def _from_id(bid: int) -> "Broadcast":
    return Broadcast(None, None, bid)


class collect_broadcasts:
    """Context manager: records the ids of broadcasts pickled inside it."""

    def __enter__(self) -> set[int]:
        self.ids: set[int] = set()
        _collecting.ids = self.ids
        return self.ids

    def __exit__(self, *exc: Any) -> None:
        _collecting.ids = None


class Broadcast(Generic[T]):
    """A read-only variable cached on every worker host.

    Examples
    --------
    >>> b = sc.broadcast({"a": 1})  # doctest: +SKIP
    >>> sc.parallelize(["a", "a"]).map(lambda k: b.value[k]).sum()  # doctest: +SKIP
    2
    """

    _next_id = 0
    _lock = threading.Lock()

    def __init__(self, sc: Optional["SparkContext"], value: Any, bid: Optional[int] = None,
                 pickled: Optional[bytes] = None) -> None:
        self._sc = sc
        if sc is None:                 # a handle inside a task
            self.bid = bid
            return
        with Broadcast._lock:
            Broadcast._next_id += 1
            self.bid = Broadcast._next_id
        self._value = value
        self._destroyed = False
        self._pickled = pickled        # kept only when given: to upload again after a restart
        self._upload(pickled if pickled is not None else cloudpickle.dumps(value, 5))
        sc._broadcasts[self.bid] = self

    def _upload(self, data: Optional[bytes] = None) -> None:
        """Stores the value in the cluster (again, after the master lost it)."""
        if data is None:
            data = self._pickled if self._pickled is not None else cloudpickle.dumps(self._value, 5)
        self._sc._client.request(
            "PUT", f"/applications/{self._sc.applicationId}/broadcasts/{self.bid}",
            raw_body=data, retry=True)

    @property
    def value(self) -> T:
        """The value: the original on the driver, unpickled once per process in tasks."""
        if self._sc is not None:
            if self._destroyed:
                raise EmberError(f"broadcast {self.bid} was destroyed")
            return self._value
        if self.bid not in _worker_values:
            if self.bid not in _worker_bytes:
                raise EmberError(f"broadcast {self.bid} was not shipped to this task")
            _unpickle_worker_value(self.bid)
        return _worker_values[self.bid]

    def unpersist(self, blocking: bool = False) -> None:
        """Drops the copies on workers; they fetch the value again when next used."""
        self._driver_call("DELETE", "?keepSource=1")

    def destroy(self, blocking: bool = False) -> None:
        """Drops every copy; the broadcast cannot be used afterwards."""
        self._driver_call("DELETE", "")
        self._destroyed = True
        self._value = None
        self._pickled = None
        self._sc._broadcasts.pop(self.bid, None)

    def _driver_call(self, method: str, query: str) -> None:
        if self._sc is None:
            raise EmberError("broadcasts can only be unpersisted or destroyed on the driver")
        self._sc._client.request(
            method, f"/applications/{self._sc.applicationId}/broadcasts/{self.bid}{query}",
            retry=True)

    def __reduce__(self) -> tuple:
        if self._sc is not None and self._destroyed:
            raise EmberError(f"broadcast {self.bid} was destroyed and cannot be used in a task")
        ids = getattr(_collecting, "ids", None)
        if ids is not None:
            ids.add(self.bid)
        return (_from_id, (self.bid,))
