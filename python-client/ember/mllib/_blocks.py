"""How MLlib's algorithms see their data: an RDD of numpy blocks.

Each partition of vectors (or labeled points) becomes a few blocks of rows, a
float64 matrix (a scipy CSR matrix for sparse vectors when scipy is there) of
about ``BLOCK_BYTES``, so every pass over the data is a handful of numpy calls
per block inside the workers' Python processes. Algorithms persist the block
RDD while they iterate; pyexec keeps cached partitions as Python objects, so
later passes do not even unpickle them. Helpers here also sample rows and
name the jobs an algorithm runs.
"""

from __future__ import annotations

import itertools
import logging
import random
from functools import partial
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple, Optional

import numpy as np

from ember.callsite import call_site
from ember.errors import EmberError
from ember.mllib.linalg import SparseVector, _convert_to_vector, _sparse, _vector_size

if TYPE_CHECKING:
    from ember.context import SparkContext
    from ember.rdd import RDD

log = logging.getLogger("ember.mllib")

BLOCK_BYTES = 4 << 20
_SPARSE_DENSITY = 0.25          # sparse rows below this fill stay sparse (CSR)


class Block(NamedTuple):
    """Rows of one partition: ``X`` (n x d), per-row ``extra`` (squared norms of
    vectors, or labels of labeled points), and where it came from (partition,
    block number), which seeds any sampling of its rows."""

    part: int
    number: int
    X: Any
    extra: np.ndarray


def rows_per_block(width: int) -> int:
    return max(64, min(65536, BLOCK_BYTES // (8 * max(width, 1))))


def chunks(records: Iterable[Any], width_of: Any) -> Iterator[list]:
    """Lists of consecutive records, sized by the width of each list's first one."""
    iterator = iter(records)
    for first in iterator:
        yield [first, *itertools.islice(iterator, rows_per_block(width_of(first)) - 1)]


def is_sparse(X: Any) -> bool:
    return _sparse is not None and _sparse.issparse(X)


def to_matrix(vectors: list) -> Any:
    """One row per vector-like record: dense, or CSR when all are sparse and few
    entries are set. Raises ValueError when the sizes differ."""
    width = _vector_size(vectors[0])
    if _sparse is not None and all(isinstance(v, SparseVector) for v in vectors):
        nnz = sum(v.indices.size for v in vectors)
        if nnz < _SPARSE_DENSITY * width * len(vectors):
            return _csr(vectors, width)
    rows = np.empty((len(vectors), width))
    for i, v in enumerate(vectors):
        if not isinstance(v, (list, tuple, np.ndarray)):
            v = _convert_to_vector(v).toArray()
        if _vector_size(v) != width:
            raise ValueError(f"all vectors must have the same size: found {_vector_size(v)} "
                             f"after {width}")
        rows[i] = v if not isinstance(v, np.ndarray) or v.ndim == 1 else v.reshape(-1)
    return rows


def _csr(vectors: list, width: int) -> Any:
    for v in vectors:
        if v.size != width:
            raise ValueError(f"all vectors must have the same size: found {v.size} after {width}")
    indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
    np.cumsum([v.indices.size for v in vectors], out=indptr[1:])
    indices = np.concatenate([v.indices for v in vectors])
    data = np.concatenate([v.values for v in vectors])
    return _sparse.csr_matrix((data, indices, indptr), shape=(len(vectors), width))


def dense(X: Any) -> np.ndarray:
    return X.toarray() if is_sparse(X) else X


def row_sqnorms(X: Any) -> np.ndarray:
    if is_sparse(X):
        return np.asarray(X.multiply(X).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", X, X)


def normalized(X: Any) -> Any:
    """Rows scaled to unit length (cosine distance); zero rows are an error."""
    norms = np.sqrt(row_sqnorms(X))
    if np.any(norms == 0):
        raise ValueError("Cosine distance is not defined for zero-length vectors.")
    if is_sparse(X):
        return _sparse.diags(1.0 / norms) @ X
    return X / norms[:, None]


def sum_by_label(X: Any, labels: np.ndarray, k: int) -> np.ndarray:
    """k x d: the sum of the rows labelled j in row j."""
    if is_sparse(X):
        onehot = np.zeros((labels.size, k))
        onehot[np.arange(labels.size), labels] = 1.0
        return np.asarray((X.T @ onehot).T)
    columns = [np.bincount(labels, weights=X[:, j], minlength=k) for j in range(X.shape[1])]
    return np.stack(columns, axis=1) if columns else np.zeros((k, 0))


# ---- building blocks --------------------------------------------------------------

def iter_vector_blocks(unit: bool, split: int, records: Iterable[Any]) -> Iterator[Block]:
    for number, chunk in enumerate(chunks(records, _vector_size)):
        X = to_matrix(chunk)
        if unit:
            X = normalized(X)
        yield Block(split, number, X, row_sqnorms(X))


def _labeled_blocks(split: int, records: Iterable[Any]) -> Iterator[Block]:
    from ember.mllib.regression import LabeledPoint
    for number, chunk in enumerate(chunks(records, lambda p: _vector_size(p.features))):
        for p in chunk:
            if not isinstance(p, LabeledPoint):
                raise TypeError("data should be an RDD of LabeledPoint, but got %s" % type(p))
        X = to_matrix([p.features for p in chunk])
        yield Block(split, number, X, np.array([p.label for p in chunk], dtype=np.float64))


def vector_blocks(rdd: "RDD", unit: bool = False) -> "RDD":
    """The RDD's vectors as Blocks whose extra is the rows' squared norms
    (rows scaled to unit length first when ``unit``)."""
    return rdd.mapPartitionsWithIndex(partial(iter_vector_blocks, unit), True)


def labeled_blocks(rdd: "RDD") -> "RDD":
    """An RDD of LabeledPoint as Blocks whose extra is the labels."""
    return rdd.mapPartitionsWithIndex(_labeled_blocks, True)


def release(blocks: "RDD") -> None:
    """Drops an algorithm's cached blocks once it is done. As Spark's non-blocking
    unpersist, a failure is logged, not raised: the result is already computed,
    and the blocks go with the application at the latest."""
    try:
        blocks.unpersist()
    except EmberError as err:
        log.warning("could not drop the cached blocks of RDD %s: %s", blocks.id, err)


def _shape_seq(acc: tuple, block: Block) -> tuple:
    return acc[0] + block.X.shape[0], acc[1] | {block.X.shape[1]}


def _shape_comb(a: tuple, b: tuple) -> tuple:
    return a[0] + b[0], a[1] | b[1]


def shape(blocks: "RDD") -> tuple[int, int]:
    """(rows, width) of the data; ValueError when vectors of different sizes meet."""
    rows, widths = blocks.treeAggregate((0, frozenset()), _shape_seq, _shape_comb)
    if len(widths) > 1:
        raise ValueError(f"all vectors must have the same size, found sizes {sorted(widths)}")
    return rows, (next(iter(widths)) if widths else 0)


def block_rng(*seeds: int) -> np.random.Generator:
    """A generator for one purpose and block: seeds are any ints (Spark's are signed)."""
    return np.random.default_rng([s & 0xFFFFFFFFFFFFFFFF for s in seeds])


# ---- sampling rows -------------------------------------------------------------------

def _sample_block(fraction: float, seed: int, block: Block) -> Iterator[np.ndarray]:
    keep = block_rng(seed, block.part, block.number).random(block.X.shape[0]) < fraction
    if keep.any():
        yield dense(block.X[keep])


def take_sample_rows(blocks: "RDD", num: int, seed: int, total: int) -> np.ndarray:
    """``num`` rows drawn without replacement (all of them when there are fewer), as
    RDD.takeSample draws records: oversample with a Bernoulli pass, retry if short,
    shuffle, keep ``num``. Only the sampled rows reach the driver."""
    from ember.rdd import RDD
    rand = random.Random(seed)
    if num >= total:
        fraction = 1.0
    else:
        fraction = RDD._computeFractionForSampleSize(num, total, False)
    wanted = min(num, total)
    attempt = seed
    while True:
        parts = blocks.flatMap(partial(_sample_block, fraction, attempt)).collect()
        rows = np.vstack(parts) if parts else np.empty((0, 0))
        if rows.shape[0] >= wanted:
            break
        attempt = rand.randint(0, 2 ** 63 - 1)
    order = list(range(rows.shape[0]))
    rand.shuffle(order)
    return rows[order[:wanted]]


# ---- what the UI calls the jobs --------------------------------------------------------

class JobNames:
    """Names the jobs an algorithm runs in the UI ("treeAggregate: KMeans iteration 3
    at fit.py:12") unless the user set ``spark.job.description``; restores it on exit.

    Create it in the algorithm's own frame, so the site is the user's line.
    """

    def __init__(self, sc: "SparkContext") -> None:
        self.sc = sc
        self.site = call_site()[1]
        self.enabled = sc.getLocalProperty("spark.job.description") is None

    def __call__(self, text: str) -> None:
        if self.enabled:
            self.sc.setJobDescription(f"{text} at {self.site}" if self.site else text)

    def __enter__(self) -> "JobNames":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.sc.setLocalProperty("spark.job.description", None)


def random_seed(seed: Optional[int]) -> int:
    """The seed to use: the user's, or a fresh one (as Spark picks when none is given)."""
    return int(seed) if seed is not None else random.randrange(2 ** 63)

