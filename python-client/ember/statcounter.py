"""StatCounter: count, mean, variance, min and max in one pass, as PySpark's."""

from __future__ import annotations

import copy
import math
from typing import Any, Iterable, Optional

try:
    from numpy import maximum, minimum, sqrt
except ImportError:  # numpy is optional, as in PySpark
    maximum = max  # type: ignore[assignment]
    minimum = min  # type: ignore[assignment]
    sqrt = math.sqrt  # type: ignore[assignment]


class StatCounter:
    """Running statistics of numbers (Welford's algorithm), mergeable across partitions.

    Parameters
    ----------
    values : iterable of numbers, optional
        Values to add at once.

    Examples
    --------
    >>> s = StatCounter([1.0, 2.0, 3.0, 4.0])
    >>> s.count(), s.mean(), s.sum(), s.min(), s.max()
    (4, 2.5, 10.0, 1.0, 4.0)
    >>> round(s.sampleStdev(), 6)
    1.290994
    >>> s.mergeStats(StatCounter([5.0])).count()
    5
    """

    def __init__(self, values: Optional[Iterable[Any]] = None) -> None:
        self.n = 0          # count of values
        self.mu = 0.0       # running mean
        self.m2 = 0.0       # sum of (x - mean)^2
        self.maxValue = float("-inf")
        self.minValue = float("inf")
        for v in values if values is not None else ():
            self.merge(v)

    def merge(self, value: Any) -> "StatCounter":
        """Adds one value; returns self."""
        delta = value - self.mu
        self.n += 1
        self.mu += delta / self.n
        self.m2 += delta * (value - self.mu)
        self.maxValue = maximum(self.maxValue, value)
        self.minValue = minimum(self.minValue, value)
        return self

    def mergeStats(self, other: "StatCounter") -> "StatCounter":
        """Adds the statistics of another StatCounter; returns self."""
        if not isinstance(other, StatCounter):
            raise TypeError("Can only merge StatCounter but got %s" % type(other))
        if other is self:
            self.mergeStats(other.copy())
        elif self.n == 0:
            self.mu, self.m2, self.n = other.mu, other.m2, other.n
            self.maxValue, self.minValue = other.maxValue, other.minValue
        elif other.n != 0:
            delta = other.mu - self.mu
            if other.n * 10 < self.n:
                self.mu = self.mu + (delta * other.n) / (self.n + other.n)
            elif self.n * 10 < other.n:
                self.mu = other.mu - (delta * self.n) / (self.n + other.n)
            else:
                self.mu = (self.mu * self.n + other.mu * other.n) / (self.n + other.n)
            self.maxValue = maximum(self.maxValue, other.maxValue)
            self.minValue = minimum(self.minValue, other.minValue)
            self.m2 += other.m2 + (delta * delta * self.n * other.n) / (self.n + other.n)
            self.n += other.n
        return self

    def copy(self) -> "StatCounter":
        """A deep copy."""
        return copy.deepcopy(self)

    def count(self) -> int:
        """Number of values."""
        return int(self.n)

    def mean(self) -> float:
        """Mean (0.0 when there is no value, as in PySpark)."""
        return self.mu

    def sum(self) -> float:
        """Sum of the values."""
        return self.n * self.mu

    def min(self) -> Any:
        """Smallest value (``inf`` when there is none)."""
        return self.minValue

    def max(self) -> Any:
        """Largest value (``-inf`` when there is none)."""
        return self.maxValue

    def variance(self) -> float:
        """Population variance (divides by N); NaN when empty."""
        return float("nan") if self.n == 0 else self.m2 / self.n

    def sampleVariance(self) -> float:
        """Sample variance (divides by N-1); NaN below two values."""
        return float("nan") if self.n <= 1 else self.m2 / (self.n - 1)

    def stdev(self) -> float:
        """Population standard deviation."""
        return sqrt(self.variance())

    def sampleStdev(self) -> float:
        """Sample standard deviation."""
        return sqrt(self.sampleVariance())

    def asDict(self, sample: bool = False) -> dict[str, Any]:
        """The members as a dict.

        As in PySpark, ``stdev`` and ``variance`` are the *sample* ones unless
        ``sample`` is true.

        Examples
        --------
        >>> d = StatCounter([1., 2., 3., 4.]).asDict()
        >>> d["count"], d["mean"], round(d["stdev"], 6), round(d["variance"], 6)
        (4, 2.5, 1.290994, 1.666667)
        """
        return {
            "count": self.count(),
            "mean": self.mean(),
            "sum": self.sum(),
            "min": self.min(),
            "max": self.max(),
            "stdev": self.stdev() if sample else self.sampleStdev(),
            "variance": self.variance() if sample else self.sampleVariance(),
        }

    def __repr__(self) -> str:
        return "(count: %s, mean: %s, stdev: %s, max: %s, min: %s)" % (
            self.count(), self.mean(), self.stdev(), self.max(), self.min())
