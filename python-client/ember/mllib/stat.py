"""Statistics over RDDs of vectors (``pyspark.mllib.stat``), computed on the cluster.

``colStats`` and Pearson correlations make one pass: each block's count,
means and centered sums of squares (or co-moments) are computed with numpy in
the workers and merged pairwise (Chan et al.'s update, stable where summing
squares is not) by ``treeAggregate``. Spearman correlations rank each column
with a sort first, as Spark does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Union

import numpy as np

from ember.mllib import _blocks
from ember.mllib._blocks import Block, JobNames

if TYPE_CHECKING:
    from ember.rdd import RDD

__all__ = ["Statistics", "MultivariateStatisticalSummary"]

log = logging.getLogger(__name__)


class _Moments:
    """Count, means and column statistics of some rows; merged pairwise."""

    def __init__(self, X: Any) -> None:
        X = _blocks.dense(X)
        self.n = X.shape[0]
        self.mean = X.mean(axis=0)
        centered = X - self.mean
        self.m2 = np.einsum("ij,ij->j", centered, centered)
        self.max = X.max(axis=0)
        self.min = X.min(axis=0)
        self.nnz = np.count_nonzero(X, axis=0).astype(np.int64)
        self.l1 = np.abs(X).sum(axis=0)
        self.sumsq = np.einsum("ij,ij->j", X, X)

    def merge(self, other: "_Moments") -> "_Moments":
        n = self.n + other.n
        delta = other.mean - self.mean
        self.m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
        self.mean = self.mean + delta * (other.n / n)
        self.n = n
        self.max = np.maximum(self.max, other.max)
        self.min = np.minimum(self.min, other.min)
        self.nnz = self.nnz + other.nnz
        self.l1 = self.l1 + other.l1
        self.sumsq = self.sumsq + other.sumsq
        return self


def _merge(a: Optional[Any], b: Optional[Any]) -> Optional[Any]:
    if a is None:
        return b
    if b is None:
        return a
    return a.merge(b)


def _moments_seq(acc: Optional[_Moments], block: Block) -> Optional[_Moments]:
    if block.X.shape[0] == 0:
        return acc
    return _merge(acc, _Moments(block.X))


class MultivariateStatisticalSummary:
    """Column statistics of an RDD of vectors: each method returns a numpy array
    with one value per column (``count`` an int)."""

    def __init__(self, moments: Optional[_Moments]) -> None:
        self._m = moments

    def _get(self, name: str) -> np.ndarray:
        if self._m is None:
            raise ValueError("the summary is empty: the RDD held no vectors")
        return getattr(self._m, name)

    def mean(self) -> np.ndarray:
        return self._get("mean").copy()

    def variance(self) -> np.ndarray:
        """The sample variance (divided by count - 1; zeros for one vector)."""
        m2 = self._get("m2")
        return m2 / (self._m.n - 1) if self._m.n > 1 else np.zeros_like(m2)

    def count(self) -> int:
        return 0 if self._m is None else int(self._m.n)

    def numNonzeros(self) -> np.ndarray:
        return self._get("nnz").astype(np.float64)

    def max(self) -> np.ndarray:
        return self._get("max").copy()

    def min(self) -> np.ndarray:
        return self._get("min").copy()

    def normL1(self) -> np.ndarray:
        return self._get("l1").copy()

    def normL2(self) -> np.ndarray:
        return np.sqrt(self._get("sumsq"))


# ---- correlations ----------------------------------------------------------------------------

class _CoMoments:
    """Count, means and the centered cross-product matrix of some rows."""

    def __init__(self, X: Any) -> None:
        X = _blocks.dense(X)
        self.n = X.shape[0]
        self.mean = X.mean(axis=0)
        centered = X - self.mean
        self.c = centered.T @ centered

    def merge(self, other: "_CoMoments") -> "_CoMoments":
        n = self.n + other.n
        delta = other.mean - self.mean
        self.c = self.c + other.c + np.outer(delta, delta) * (self.n * other.n / n)
        self.mean = self.mean + delta * (other.n / n)
        self.n = n
        return self


def _comoments_seq(acc: Optional[_CoMoments], block: Block) -> Optional[_CoMoments]:
    if block.X.shape[0] == 0:
        return acc
    return _merge(acc, _CoMoments(block.X))


def _pearson(vectors: "RDD") -> np.ndarray:
    moments = _blocks.vector_blocks(vectors).treeAggregate(None, _comoments_seq, _merge)
    if moments is None or moments.n <= 1:
        raise ValueError("Cannot compute the covariance of fewer than 2 vectors.")
    return _correlation_from_covariance(moments.c / (moments.n - 1))


def _correlation_from_covariance(cov: np.ndarray) -> np.ndarray:
    """Spark's rule: a column with zero variance correlates NaN with the others; the
    diagonal is 1."""
    sigma = np.sqrt(np.diag(cov).copy())
    sigma[np.abs(np.diag(cov)) <= 1e-12] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sigma, sigma)
    zero = sigma == 0.0
    corr[zero, :] = np.nan
    corr[:, zero] = np.nan
    if zero.any():
        log.warning("Pearson correlation: a column has zero variance, its correlations are "
                    "NaN")
    np.fill_diagonal(corr, 1.0)
    return corr


def _column_entries(pair: tuple) -> Iterator[tuple]:
    vector, uid = pair
    row = _blocks.dense(_blocks.to_matrix([vector]))[0]
    for j, value in enumerate(row.tolist()):
        yield (j, value), uid


def _average_ranks(entries: Iterable[tuple]) -> Iterator[tuple]:
    """Within a partition of ((column, value), uid) sorted and indexed: ties get the
    average of their positions (Spark ranks ties that straddle partitions apart)."""
    previous, start, uids = None, 0.0, []
    for (key, uid), rank in entries:
        if key != previous:
            yield from ((u, (previous[0], start + (len(uids) - 1) / 2.0)) for u in uids)
            previous, start, uids = key, float(rank), []
        uids.append(uid)
    if uids:
        yield from ((u, (previous[0], start + (len(uids) - 1) / 2.0)) for u in uids)


def _rank_vector(ranks: Iterable[tuple]) -> np.ndarray:
    return np.array([rank for _, rank in sorted(ranks)])


def _spearman(vectors: "RDD") -> np.ndarray:
    entries = vectors.zipWithUniqueId().flatMap(_column_entries)
    ranked = entries.sortByKey().zipWithIndex().mapPartitions(_average_ranks)
    return _pearson(ranked.groupByKey().map(lambda kv: _rank_vector(kv[1])))


class Statistics:
    """Column statistics and correlations of RDDs.

    Examples
    --------
    >>> rdd = sc.parallelize([[2.0, 0.0], [4.0, 1.0], [6.0, 5.0]])  # doctest: +SKIP
    >>> summary = Statistics.colStats(rdd)  # doctest: +SKIP
    >>> summary.mean().tolist(), summary.variance().tolist()  # doctest: +SKIP
    ([4.0, 2.0], [4.0, 7.0])
    """

    @staticmethod
    def colStats(rdd: "RDD") -> MultivariateStatisticalSummary:
        """Count, mean, sample variance, nonzeros, max, min, L1 and L2 norms of each
        column of an RDD of vectors (Vectors, lists, tuples or numpy arrays)."""
        with JobNames(rdd.context) as names:
            names("treeAggregate: Statistics.colStats")
            blocks = _blocks.vector_blocks(rdd)
            return MultivariateStatisticalSummary(
                blocks.treeAggregate(None, _moments_seq, _merge))

    @staticmethod
    def corr(x: "RDD", y: Optional["RDD"] = None,
             method: Optional[str] = None) -> Union[float, np.ndarray]:
        """The correlation matrix of an RDD of vectors, or the correlation of two RDDs
        of numbers with the same partitioning and partition sizes.

        Parameters
        ----------
        x : RDD
        y : RDD, optional
        method : str, optional
            "pearson" (default) or "spearman".

        Returns
        -------
        numpy.ndarray or float
        """
        if isinstance(y, str):
            raise TypeError("Use 'method=' to specify method name.")
        method = method or "pearson"
        if method not in ("pearson", "spearman"):
            raise ValueError(f"unknown correlation method {method!r}: use 'pearson' or "
                             "'spearman'")
        vectors = x if y is None else x.zip(y).map(lambda ab: [float(ab[0]), float(ab[1])])
        with JobNames(x.context) as names:
            names(f"Statistics.corr ({method})")
            matrix = _pearson(vectors) if method == "pearson" else _spearman(vectors)
        return matrix if y is None else float(matrix[0, 1])
