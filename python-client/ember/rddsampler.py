"""Per-partition samplers of RDD.sample, randomSplit and sampleByKey, as PySpark's.

Each partition seeds ``random.Random(seed ^ partition)``, so the same seed
gives the same sample on every run and every cluster.
"""

from __future__ import annotations

import math
import random
import sys
from itertools import compress, islice
from typing import Any, Iterable, Iterator, Optional

from ember.shuffle import _ember_fast


class RDDSamplerBase:
    """The random generator shared by the samplers."""

    def __init__(self, withReplacement: bool, seed: Optional[int] = None) -> None:
        self._seed = seed if seed is not None else random.randint(0, sys.maxsize)
        self._withReplacement = withReplacement
        self._random: Optional[random.Random] = None

    def initRandomGenerator(self, split: int) -> None:
        self._random = random.Random(self._seed ^ split)
        for _ in range(10):   # mixing: the seeds of neighbouring partitions are close
            self._random.randint(0, 1)

    def getUniformSample(self) -> float:
        assert self._random is not None
        return self._random.random()

    def getPoissonSample(self, mean: float) -> int:
        """Knuth's algorithm below a mean of 20, the log domain above."""
        assert self._random is not None
        if mean < 20.0:
            lda = math.exp(-mean)
            p = self._random.random()
            k = 0
            while p > lda:
                k += 1
                p *= self._random.random()
        else:
            p = self._random.expovariate(mean)
            k = 0
            while p < 1.0:
                k += 1
                p += self._random.expovariate(mean)
        return k

    def func(self, split: int, iterator: Iterable[Any]) -> Iterator[Any]:
        raise NotImplementedError


class RDDSampler(RDDSamplerBase):
    """Bernoulli sampling (without replacement) or Poisson counts (with replacement).

    Examples
    --------
    >>> sampler = RDDSampler(False, 0.5, seed=3)
    >>> list(sampler.func(0, range(10))) == list(RDDSampler(False, 0.5, 3).func(0, range(10)))
    True
    """

    def __init__(self, withReplacement: bool, fraction: float, seed: Optional[int] = None) -> None:
        super().__init__(withReplacement, seed)
        self._fraction = fraction

    def func(self, split: int, iterator: Iterable[Any]) -> Iterator[Any]:
        self.initRandomGenerator(split)
        if self._withReplacement:
            for obj in iterator:
                for _ in range(self.getPoissonSample(self._fraction)):
                    yield obj
        else:
            for obj in iterator:
                if self.getUniformSample() < self._fraction:
                    yield obj


class RDDRangeSampler(RDDSamplerBase):
    """Keeps the records whose uniform draw falls in [lowerBound, upperBound) (randomSplit)."""

    def __init__(self, lowerBound: float, upperBound: float, seed: Optional[int] = None) -> None:
        super().__init__(False, seed)
        self._lowerBound = lowerBound
        self._upperBound = upperBound

    def func(self, split: int, iterator: Iterable[Any]) -> Iterator[Any]:
        self.initRandomGenerator(split)
        for obj in iterator:
            if self._lowerBound <= self.getUniformSample() < self._upperBound:
                yield obj


class RDDStratifiedSampler(RDDSamplerBase):
    """Samples (key, value) records with a fraction per key (sampleByKey)."""

    def __init__(self, withReplacement: bool, fractions: dict, seed: Optional[int] = None) -> None:
        super().__init__(withReplacement, seed)
        self._fractions = fractions

    def func(self, split: int, iterator: Iterable[Any]) -> Iterator[Any]:
        self.initRandomGenerator(split)
        if self._withReplacement:
            for key, val in iterator:
                for _ in range(self.getPoissonSample(self._fractions[key])):
                    yield key, val
        else:
            for key, val in iterator:
                if self.getUniformSample() < self._fractions[key]:
                    yield key, val


class SortKeySampler(RDDSamplerBase):
    """sortByKey's count and key sample in one pass over each partition.

    PySpark counts the RDD in one job, then keeps each record whose draw is
    below fraction = min(sample_size / count, 1) in a second (RDDSampler,
    Bernoulli) and takes its key. Each partition here draws exactly the same
    numbers (one per record, in order) while counting, and keeps the draws and
    keys of the records whose draw is below sample_size / (records so far):
    the count is not known yet, but it is at least the records seen, so these
    are all the records the sample could keep. The driver then keeps those
    with a draw below the fraction: the sample of the two jobs, in the same
    order. Records are drawn in batches, with the loop in C (_ember_fast.draws_below
    in ember-pyexec, else compress and map).

    A partition yields one (count, [(draw, key)], [draw of a record whose key
    raised]); the driver runs the two jobs after all when a record it keeps
    has no key, so that they raise the error they raise.

    Examples
    --------
    >>> records = [(k, None) for k in range(1000)]
    >>> ((count, keys, failed),) = SortKeySampler(20.0, 1).func(0, iter(records))
    >>> fraction = min(20.0 / count, 1.0)
    >>> [k for u, k in keys if u < fraction] == [k for k, _ in
    ...     RDDSampler(False, fraction, 1).func(0, iter(records))]
    True
    """

    BATCH = 4096

    def __init__(self, sample_size: float, seed: Optional[int] = None) -> None:
        super().__init__(False, seed)
        self._sample_size = sample_size

    def func(self, split: int, iterator: Iterable[Any]) -> Iterator[Any]:
        self.initRandomGenerator(split)
        assert self._random is not None
        draws = iter(self._random.random, None)     # getUniformSample, called from C
        records = iter(iterator)
        count = 0
        kept: list[tuple[float, Any]] = []
        prune_at = 1024
        while True:
            batch = list(islice(records, self.BATCH))
            if not batch:
                break
            count += len(batch)
            bound = min(1.0, self._sample_size / count)
            if _ember_fast is not None:
                kept.extend(_ember_fast.draws_below(batch, self._random.random, bound))
            else:
                us = list(islice(draws, len(batch)))
                kept.extend(compress(zip(us, batch), map(bound.__gt__, us)))
            if len(kept) > prune_at:
                kept = [c for c in kept if c[0] < bound]
                prune_at = 2 * len(kept) + 1024
        bound = min(1.0, self._sample_size / max(count, 1))
        keys: list[tuple[float, Any]] = []
        failed: list[float] = []
        for u, record in kept:
            if u < bound:
                try:
                    keys.append((u, record[0]))
                except Exception:  # noqa: BLE001 - the sample job raises it if it keeps this one
                    failed.append(u)
        yield count, keys, failed
