"""K-means clustering (``pyspark.mllib.clustering``), computed on the cluster.

``KMeans.train`` follows Spark's MLlib: the data (vectors, lists, tuples or
numpy arrays) is cached as numpy blocks with their squared norms; the first
centers are sampled at random or chosen by k-means|| (Bahmani et al., a few
passes that each oversample about 2k candidates, then a local weighted
k-means++ over the candidates); then Lloyd's algorithm runs until no center
moves more than ``epsilon`` or ``maxIterations`` passed. Every pass over the
data is one ``treeAggregate`` whose per-partition work is numpy in the
workers: only k x d sums, counts and costs (and the sampled candidates) reach
the driver.
"""

from __future__ import annotations

import logging
import time
import warnings
from functools import partial
from operator import add
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from ember.mllib import _blocks
from ember.mllib._blocks import Block, JobNames
from ember.mllib.linalg import VectorLike, _convert_to_vector
from ember.mllib.util import Loader, Saveable, load_model, metadata_of, save_model
from ember.rdd import RDD
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.context import SparkContext

__all__ = ["KMeans", "KMeansModel"]

log = logging.getLogger(__name__)

RANDOM = "random"
K_MEANS_PARALLEL = "k-means||"
_MEASURES = ("euclidean", "cosine")
_CLASS_NAME = "org.apache.spark.mllib.clustering.KMeansModel"

# PySpark 2.x put the deprecated `runs` fourth; 3.x dropped it.
_ORDER_3 = ("initializationMode", "seed", "initializationSteps", "epsilon", "initialModel",
            "distanceMeasure")
_ORDER_2 = ("runs", "initializationMode", "seed", "initializationSteps", "epsilon",
            "initialModel")


# ---- numpy kernels (run in the workers) ------------------------------------------------

def closest(X: Any, sqnorms: np.ndarray, centers: np.ndarray,
            center_sqnorms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the index of its closest center and the squared distance to it,
    |x|^2 - 2 x.c + |c|^2 with one matrix product per block (as Spark and
    scikit-learn); |x|^2 is added only to the minimum."""
    d2 = np.asarray(X @ (-2.0 * centers).T)
    d2 += center_sqnorms
    labels = d2.argmin(axis=1)
    best = d2[np.arange(labels.size), labels]
    best += sqnorms
    np.maximum(best, 0.0, out=best)
    return labels, best


def exact_costs(X: Any, sqnorms: np.ndarray, centers: np.ndarray,
                labels: np.ndarray) -> np.ndarray:
    """Squared distances of the rows to their centers, without the expansion's
    rounding for dense rows."""
    if _blocks.is_sparse(X):
        c = centers[labels]
        rowdot = np.asarray(X.multiply(c).sum(axis=1)).ravel()
        return np.maximum(sqnorms - 2.0 * rowdot + np.einsum("ij,ij->i", c, c), 0.0)
    diff = X - centers[labels]
    return np.einsum("ij,ij->i", diff, diff)


def _with_norms(centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return centers, np.einsum("ij,ij->i", centers, centers)


def _lloyd_seq(centers: tuple, acc: tuple, block: Block) -> tuple:
    centers, csq = centers
    labels, best = closest(block.X, block.extra, centers, csq)
    counts = np.bincount(labels, minlength=centers.shape[0])
    return (acc[0] + _blocks.sum_by_label(block.X, labels, centers.shape[0]),
            acc[1] + counts, acc[2] + float(best.sum()))


def _add_triples(a: tuple, b: tuple) -> tuple:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def _min_cost_seq(centers: tuple, acc: float, block: Block) -> float:
    _, best = closest(block.X, block.extra, *centers)
    return acc + float(best.sum())


def _choose_candidates(centers: tuple, seed: int, step: int, scale: float,
                       block: Block) -> Iterator[np.ndarray]:
    """k-means|| oversampling: each row kept with probability 2k * cost / total cost."""
    _, best = closest(block.X, block.extra, *centers)
    rng = _blocks.block_rng(seed, 2, step, block.part, block.number)
    keep = rng.random(best.size) < best * scale
    if keep.any():
        yield _blocks.dense(block.X[keep])


def _count_closest_seq(centers: tuple, acc: np.ndarray, block: Block) -> np.ndarray:
    centers, csq = centers
    labels, _ = closest(block.X, block.extra, centers, csq)
    return acc + np.bincount(labels, minlength=centers.shape[0])


def _cost_seq(centers: np.ndarray, acc: float, block: Block) -> float:
    labels, _ = closest(block.X, block.extra, *_with_norms(centers))
    return acc + float(exact_costs(block.X, block.extra, centers, labels).sum())


def _predict_partition(centers: np.ndarray, unit: bool,
                       records: Iterable[Any]) -> Iterator[int]:
    for block in _blocks.iter_vector_blocks(unit, 0, records):
        labels, _ = closest(block.X, block.extra, *_with_norms(centers))
        yield from labels.tolist()


# ---- k-means++ on the driver over the k-means|| candidates -------------------------------

def _pick_weighted(rand: np.random.Generator, weights: np.ndarray) -> int:
    cumulative = np.cumsum(weights)
    return min(int(np.searchsorted(cumulative, rand.random() * cumulative[-1])),
               weights.size - 1)


def local_kmeans_plus_plus(points: np.ndarray, weights: np.ndarray, k: int,
                           max_iterations: int = 30, seed: int = 0) -> np.ndarray:
    """Spark's LocalKMeans: weighted k-means++ seeding, then weighted Lloyd's
    iterations (an empty cluster takes a random point)."""
    rand = np.random.default_rng(seed)
    centers = np.empty((k, points.shape[1]))
    centers[0] = points[_pick_weighted(rand, weights)]
    costs = ((points - centers[0]) ** 2).sum(axis=1)
    for i in range(1, k):
        centers[i] = points[_pick_weighted(rand, costs * weights)]
        costs = np.minimum(costs, ((points - centers[i]) ** 2).sum(axis=1))
    psq = np.einsum("ij,ij->i", points, points)
    previous = None
    for _ in range(max_iterations):
        labels, _ = closest(points, psq, *_with_norms(centers))
        if previous is not None and np.array_equal(labels, previous):
            break
        previous = labels
        counts = np.bincount(labels, weights=weights, minlength=k)
        sums = _blocks.sum_by_label(points * weights[:, None], labels, k)
        for j in range(k):
            centers[j] = sums[j] / counts[j] if counts[j] > 0 else \
                points[rand.integers(points.shape[0])]
    return centers


# ---- the model --------------------------------------------------------------------------

class KMeansModel(Saveable, Loader["KMeansModel"]):
    """A clustering model: the cluster centers.

    Parameters
    ----------
    centers : list of vectors
        The centers (numpy arrays, lists, tuples or Vectors); ``clusterCenters``
        returns them as given.
    distanceMeasure : str
        "euclidean" (default) or "cosine": how ``predict`` and ``computeCost`` measure.
    trainingCost : float
        The cost (sum of squared distances) when training stopped.

    Examples
    --------
    >>> model = KMeansModel([(-1000.0, -1000.0), (5.0, 5.0), (1000.0, 1000.0)])
    >>> model.k, model.predict([4.0, 6.0])
    (3, 1)
    """

    def __init__(self, centers: Sequence[VectorLike], distanceMeasure: str = "euclidean",
                 trainingCost: float = 0.0) -> None:
        if distanceMeasure not in _MEASURES:
            raise ValueError(f"distanceMeasure must be one of {_MEASURES}, "
                             f"got {distanceMeasure!r}")
        self.centers = centers
        self.distanceMeasure = distanceMeasure
        self.trainingCost = float(trainingCost)
        self._matrix: Optional[np.ndarray] = None

    @property
    def clusterCenters(self) -> list:
        """The cluster centers (numpy arrays once trained)."""
        return self.centers

    @property
    def k(self) -> int:
        """Number of clusters."""
        return len(self.centers)

    def _center_matrix(self) -> np.ndarray:
        """k x d; unit rows for the cosine measure."""
        if self._matrix is None:
            rows = np.array([_convert_to_vector(c).toArray() for c in self.centers])
            self._matrix = _blocks.normalized(rows) if self._cosine else rows
        return self._matrix

    @property
    def _cosine(self) -> bool:
        return self.distanceMeasure == "cosine"

    def predict(self, x: Union[VectorLike, RDD]) -> Union[int, RDD]:
        """The index of the closest center to a vector, or an RDD of the indices of
        an RDD's vectors (computed on the cluster, block by block).

        Examples
        --------
        >>> KMeansModel([[0.0, 0.0], [10.0, 10.0]]).predict(np.array([9.0, 8.0]))
        1
        """
        centers = self._center_matrix()
        if isinstance(x, RDD):
            return x.mapPartitions(partial(_predict_partition, centers, self._cosine), True)
        row = _blocks.to_matrix([x])
        if self._cosine:
            row = _blocks.normalized(row)
        diff = centers - _blocks.dense(row)
        return int(np.einsum("ij,ij->i", diff, diff).argmin())

    def computeCost(self, rdd: RDD) -> float:
        """The sum of squared distances of the RDD's vectors to their closest center
        (cosine distances for the cosine measure), computed on the cluster.

        Examples
        --------
        >>> model = KMeansModel([[0.0], [10.0]])  # doctest: +SKIP
        >>> model.computeCost(sc.parallelize([[1.0], [9.0], [12.0]]))  # doctest: +SKIP
        6.0
        """
        blocks = _blocks.vector_blocks(rdd, self._cosine)
        cost = blocks.treeAggregate(0.0, partial(_cost_seq, self._center_matrix()), add)
        return cost / 2.0 if self._cosine else cost

    def save(self, sc: "SparkContext", path: str) -> None:
        """Saves the centers to the folder ``path`` (``path/metadata``, ``path/data``)."""
        metadata = metadata_of(_CLASS_NAME, "2.0", k=self.k,
                               distanceMeasure=self.distanceMeasure,
                               trainingCost=self.trainingCost)
        rows = [{"id": i, "point": _convert_to_vector(c).toArray().tolist()}
                for i, c in enumerate(self.centers)]
        save_model(sc, path, metadata, rows)

    @classmethod
    def load(cls, sc: "SparkContext", path: str) -> "KMeansModel":
        """Loads a model saved with ``save``."""
        metadata, rows = load_model(sc, path, "KMeansModel", _CLASS_NAME, ("1.0", "2.0"))
        points = {row["id"]: np.array(row["point"], dtype=np.float64) for row in rows}
        if len(points) != metadata["k"]:
            raise ValueError(f"KMeansModel.load: {path} holds {len(points)} centers, "
                             f"its metadata says k={metadata['k']}")
        return cls([points[i] for i in range(len(points))],
                   metadata.get("distanceMeasure", "euclidean"),
                   metadata.get("trainingCost", 0.0))

    def __repr__(self) -> str:
        return f"KMeansModel(k={self.k}, distanceMeasure={self.distanceMeasure!r})"


# ---- training -------------------------------------------------------------------------------

class _Run:
    """One KMeans.train: the cached blocks and the driver-side state of the algorithm."""

    def __init__(self, blocks: RDD, k: int, seed: int, cosine: bool, names: JobNames) -> None:
        self.blocks = blocks
        self.k = k
        self.seed = seed
        self.cosine = cosine
        self.name = names

    def aggregate(self, zero: Any, seq: Any, comb: Any, centers: np.ndarray) -> Any:
        """A treeAggregate over the blocks, ``seq`` taking the centers and their norms
        first. They travel inside the function (Ember broadcasts functions over 1 MiB)."""
        return self.blocks.treeAggregate(zero, partial(seq, _with_norms(centers)), comb)

    def init_random(self, total: int) -> np.ndarray:
        self.name("takeSample: KMeans random initialization")
        rows = _blocks.take_sample_rows(self.blocks, self.k, self.seed, total)
        return _distinct_rows(rows)

    def init_parallel(self, total: int, steps: int) -> np.ndarray:
        self.name("takeSample: KMeans|| initialization")
        centers = _blocks.take_sample_rows(self.blocks, 1, self.seed, total)
        for step in range(steps):
            self.name(f"treeAggregate: KMeans|| initialization step {step + 1} (cost)")
            cost = self.aggregate(0.0, _min_cost_seq, add, centers)
            if cost <= 0.0:
                break
            self.name(f"collect: KMeans|| initialization step {step + 1} (candidates)")
            chosen = self.blocks.flatMap(partial(
                _choose_candidates, _with_norms(centers), self.seed, step,
                2.0 * self.k / cost)).collect()
            centers = np.vstack([centers, *chosen])
        candidates = _distinct_rows(centers)
        if candidates.shape[0] <= self.k:
            return candidates
        self.name("treeAggregate: KMeans|| initialization (candidate weights)")
        weights = self.aggregate(np.zeros(candidates.shape[0]), _count_closest_seq, add,
                                 candidates)
        return local_kmeans_plus_plus(candidates, weights.astype(np.float64), self.k)

    def lloyd(self, centers: np.ndarray, max_iterations: int,
              epsilon: float) -> tuple[np.ndarray, float, int]:
        """Lloyd's iterations; returns (centers, cost at the last pass, iterations)."""
        centers = centers.copy()
        k, d = centers.shape
        cost, iteration, converged = 0.0, 0, False
        while iteration < max_iterations and not converged:
            started = time.perf_counter()
            self.name(f"treeAggregate: KMeans iteration {iteration + 1}")
            sums, counts, cost = self.aggregate(
                (np.zeros((k, d)), np.zeros(k, dtype=np.int64), 0.0), _lloyd_seq,
                _add_triples, centers)
            converged = self.update(centers, sums, counts, epsilon)
            iteration += 1
            log.info("KMeans iteration %d: %.3f s, cost %.6g", iteration,
                     time.perf_counter() - started, cost / 2.0 if self.cosine else cost)
        if converged:
            log.info("KMeans converged in %d iterations.", iteration)
        else:
            log.info("KMeans reached the max number of iterations: %d.", max_iterations)
        return centers, (cost / 2.0 if self.cosine else cost), iteration

    def update(self, centers: np.ndarray, sums: np.ndarray, counts: np.ndarray,
               epsilon: float) -> bool:
        """Moves the centers that have points to their means (unit means for cosine);
        True when none moved more than epsilon."""
        filled = counts > 0
        moved = sums[filled] / counts[filled][:, None]
        if self.cosine:
            moved = _blocks.normalized(moved)
            shift = ((moved - centers[filled]) ** 2).sum(axis=1) / 2.0
            converged = bool(np.all(shift <= epsilon))
        else:
            shift = ((moved - centers[filled]) ** 2).sum(axis=1)
            converged = bool(np.all(shift <= epsilon * epsilon))
        centers[filled] = moved
        return converged


def _distinct_rows(rows: np.ndarray) -> np.ndarray:
    """The rows without repeats, in the order they first appear."""
    if rows.shape[0] == 0:
        return rows
    _, first = np.unique(rows, axis=0, return_index=True)
    return rows[np.sort(first)]


class KMeans:
    """K-means clustering with k-means|| (default) or random initialization.

    Examples
    --------
    >>> data = np.array([0.0, 0.0, 1.0, 1.0, 9.0, 8.0, 8.0, 9.0]).reshape(4, 2)
    >>> model = KMeans.train(sc.parallelize(data), 2, maxIterations=10,
    ...                      initializationMode="random", seed=50)  # doctest: +SKIP
    >>> model.predict([0.0, 0.0]) == model.predict([1.0, 1.0])  # doctest: +SKIP
    True
    >>> model.computeCost(sc.parallelize(data))  # doctest: +SKIP
    2.0
    """

    @classmethod
    def train(cls, rdd: RDD, k: int, maxIterations: int = 100, *args: Any,
              initializationMode: str = K_MEANS_PARALLEL, seed: Optional[int] = None,
              initializationSteps: int = 2, epsilon: float = 1e-4,
              initialModel: Optional[KMeansModel] = None, distanceMeasure: str = "euclidean",
              runs: int = 1) -> KMeansModel:
        """Trains a k-means model on an RDD of vectors (Vectors, lists, tuples or numpy
        arrays), on the cluster.

        Parameters
        ----------
        rdd : RDD
            The points. It need not be cached: the algorithm caches its own numpy
            blocks of the points for as long as it runs.
        k : int
            Number of clusters (fewer centers come back when the data has fewer
            distinct points).
        maxIterations : int
            Most passes of Lloyd's algorithm (default 100).
        initializationMode : str
            "k-means||" (default) or "random" (k points sampled without replacement).
        seed : int, optional
            Seeds every random choice: the same seed and data give the same model.
        initializationSteps : int
            Passes of k-means|| (default 2).
        epsilon : float
            Training stops once no center moved farther than this (default 1e-4).
        initialModel : KMeansModel, optional
            Start from its k centers instead of initializing.
        distanceMeasure : str
            "euclidean" (default) or "cosine".
        runs : int
            Ignored, as in PySpark since 2.0 (a warning unless 1). PySpark 2's positional
            order ``train(rdd, k, maxIterations, runs, initializationMode, seed,
            initializationSteps, epsilon, initialModel)`` is accepted too.

        Returns
        -------
        KMeansModel
        """
        named = _positional(args)
        params = dict(initializationMode=initializationMode, seed=seed,
                      initializationSteps=initializationSteps, epsilon=epsilon,
                      initialModel=initialModel, distanceMeasure=distanceMeasure, runs=runs)
        params.update(named)
        if params["runs"] != 1:
            warnings.warn("The param `runs` has no effect since Spark 2.0.0.")
        _check(k, maxIterations, params)
        return _train(rdd, k, maxIterations, params)


def _positional(args: tuple) -> dict:
    """The names of arguments given by position after maxIterations."""
    if not args:
        return {}
    order = _ORDER_2 if isinstance(args[0], (int, np.integer)) and \
        not isinstance(args[0], bool) else _ORDER_3
    if len(args) > len(order):
        raise TypeError(f"KMeans.train takes at most {3 + len(order)} positional arguments "
                        f"after the class, {3 + len(args)} were given")
    return dict(zip(order, args))


def _check(k: int, max_iterations: int, params: dict) -> None:
    if k < 1:
        raise ValueError(f"Number of clusters must be positive but got {k}")
    if max_iterations < 0:
        raise ValueError(f"Maximum of iterations must be nonnegative but got {max_iterations}")
    if params["initializationMode"] not in (RANDOM, K_MEANS_PARALLEL):
        raise ValueError(f"Invalid initialization mode: {params['initializationMode']!r} "
                         f"(use {RANDOM!r} or {K_MEANS_PARALLEL!r})")
    if params["initializationSteps"] <= 0:
        raise ValueError("Number of initialization steps must be positive but got "
                         f"{params['initializationSteps']}")
    if params["epsilon"] < 0:
        raise ValueError(f"Distance threshold must be nonnegative but got {params['epsilon']}")
    if params["distanceMeasure"] not in _MEASURES:
        raise ValueError(f"distanceMeasure must be one of {_MEASURES}, "
                         f"got {params['distanceMeasure']!r}")
    model = params["initialModel"]
    if model is not None:
        if not isinstance(model, KMeansModel):
            raise TypeError("initialModel is of " + str(type(model))
                            + ". It needs to be of <type 'KMeansModel'>")
        if model.k != k:
            raise ValueError(f"mismatched cluster count: initialModel has {model.k} centers, "
                             f"k is {k}")


def _train(rdd: RDD, k: int, max_iterations: int, params: dict) -> KMeansModel:
    cosine = params["distanceMeasure"] == "cosine"
    blocks = _blocks.vector_blocks(rdd, cosine).persist(StorageLevel.MEMORY_AND_DISK)
    blocks.setName("KMeans blocks")
    with JobNames(rdd.context) as names:
        try:
            names("treeAggregate: KMeans (count the points)")
            total, width = _blocks.shape(blocks)
            if total == 0:
                raise ValueError("KMeans.train needs at least one point; the RDD is empty")
            run = _Run(blocks, k, _blocks.random_seed(params["seed"]), cosine, names)
            centers = _initial_centers(run, params, total, width)
            centers, cost, _ = run.lloyd(centers, max_iterations, params["epsilon"])
        finally:
            _blocks.release(blocks)
    return KMeansModel(list(centers), params["distanceMeasure"], cost)


def _initial_centers(run: _Run, params: dict, total: int, width: int) -> np.ndarray:
    model = params["initialModel"]
    if model is not None:
        centers = np.array([_convert_to_vector(c).toArray() for c in model.centers])
        if centers.shape[1] != width:
            raise ValueError(f"initialModel's centers have {centers.shape[1]} dimensions, "
                             f"the points {width}")
        return _blocks.normalized(centers) if run.cosine else centers
    if params["initializationMode"] == RANDOM:
        return run.init_random(total)
    return run.init_parallel(total, params["initializationSteps"])

