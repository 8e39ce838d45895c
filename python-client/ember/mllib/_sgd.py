"""Mini-batch stochastic gradient descent over cached blocks of labeled points,
as Spark's GradientDescent.runMiniBatchSGD.

Iteration i samples each row with probability ``miniBatchFraction`` (seeded by
42 + i, the partition and the block), sums the gradient and loss of the sample
with numpy per block, combines the sums with ``treeAggregate``, divides by the
sample size and updates the weights on the driver: step ``step / sqrt(i)``, with
L1 shrinkage or L2 decay. The intercept, when fitted, is the last weight and is
regularized like the others (as in Spark's SGD models). Training stops after
``iterations`` or once the weights move less than ``convergenceTol`` relative
to their norm.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from ember.mllib import _blocks
from ember.mllib._blocks import Block, JobNames
from ember.storagelevel import StorageLevel

if TYPE_CHECKING:
    from ember.rdd import RDD

log = logging.getLogger("ember.mllib.regression")

REG_TYPES = ("l1", "l2", None)


# ---- per-row gradient multipliers and losses: (margin, labels) -> (multipliers, loss) ----

def least_squares(margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    diff = margin - y
    return diff, 0.5 * float(diff @ diff)


def logistic(margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    probability = 0.5 * (1.0 + np.tanh(0.5 * margin))        # 1 / (1 + exp(-margin))
    loss = np.logaddexp(0.0, -margin) + np.where(y > 0, 0.0, margin)
    return probability - y, float(loss.sum())


def hinge(margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    scaled = 2.0 * y - 1.0
    active = scaled * margin < 1.0
    return np.where(active, -scaled, 0.0), float((1.0 - scaled * margin)[active].sum())


def _gradient_seq(loss: Callable, w: np.ndarray, fraction: float, iteration: int, intercept: bool,
                  acc: tuple, block: Block) -> tuple:
    X, y = block.X, block.extra
    if fraction < 1.0:
        keep = _blocks.block_rng(42 + iteration, block.part, block.number).random(y.size) \
            < fraction
        X, y = X[keep], y[keep]
    if y.size == 0:
        return acc
    width = X.shape[1]
    margin = np.asarray(X @ w[:width]).ravel()
    if intercept:
        margin += w[width]
    multipliers, loss_sum = loss(margin, y)
    gradient = np.asarray(X.T @ multipliers).ravel()
    if intercept:
        gradient = np.append(gradient, multipliers.sum())
    return acc[0] + gradient, acc[1] + loss_sum, acc[2] + y.size


def _add_triples(a: tuple, b: tuple) -> tuple:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


# ---- updaters --------------------------------------------------------------------------

def update(reg_type: Optional[str], weights: np.ndarray, gradient: np.ndarray, step: float,
           iteration: int, reg_param: float) -> tuple[np.ndarray, float]:
    """Spark's SimpleUpdater, L1Updater and SquaredL2Updater: (new weights, reg value)."""
    this_step = step / math.sqrt(iteration)
    if reg_type == "l2":
        weights = weights * (1.0 - this_step * reg_param) - this_step * gradient
        return weights, 0.5 * reg_param * float(weights @ weights)
    weights = weights - this_step * gradient
    if reg_type == "l1":
        shrinkage = reg_param * this_step
        weights = np.sign(weights) * np.maximum(0.0, np.abs(weights) - shrinkage)
        return weights, reg_param * float(np.abs(weights).sum())
    return weights, 0.0


@dataclass
class SGDParams:
    """One training's settings, named as PySpark's train() arguments."""

    iterations: int = 100
    step: float = 1.0
    miniBatchFraction: float = 1.0
    regParam: float = 0.0
    regType: Optional[str] = None
    intercept: bool = False
    convergenceTol: float = 0.001

    def check(self) -> None:
        if self.regType not in REG_TYPES:
            raise ValueError("Invalid value for 'regType' parameter. Can only be initialized "
                             "using the following string values: ['l1', 'l2', None].")
        if not 0.0 < self.miniBatchFraction <= 1.0:
            raise ValueError("Fraction for mini-batch SGD must be in range (0, 1] but got "
                             f"{self.miniBatchFraction}")
        if self.iterations < 0:
            raise ValueError(f"Number of iterations must be nonnegative but got {self.iterations}")
        if self.convergenceTol < 0 or self.convergenceTol > 1:
            raise ValueError("Convergence tolerance must be in range [0, 1] but got "
                             f"{self.convergenceTol}")


def _bad_labels_seq(acc: int, block: Block) -> int:
    return acc + int(np.count_nonzero((block.extra != 0.0) & (block.extra != 1.0)))


def train(data: "RDD", loss: Callable, params: SGDParams, initial: Optional[Any],
          binary: bool, names: JobNames) -> tuple[np.ndarray, float, int]:
    """Runs SGD on an RDD of LabeledPoint: (weights, intercept, number of features).

    ``binary`` checks first that every label is 0 or 1 (Spark's validateData for
    classifiers).
    """
    params.check()
    blocks = _blocks.labeled_blocks(data).persist(StorageLevel.MEMORY_AND_DISK)
    blocks.setName("SGD blocks")
    try:
        names("treeAggregate: SGD (count the points)")
        rows, width = _blocks.shape(blocks)
        if binary:
            names("treeAggregate: SGD (validate the labels)")
            bad = blocks.treeAggregate(0, _bad_labels_seq, _sum)
            if bad:
                raise ValueError(f"Classification labels should be 0 or 1. Found {bad} "
                                 "invalid labels")
        weights = _initial_weights(initial, width, params.intercept)
        weights = _descend(blocks, loss, params, weights, names)
    finally:
        _blocks.release(blocks)
    if params.intercept:
        return weights[:width], float(weights[width]), width
    return weights, 0.0, width


def _sum(a: int, b: int) -> int:
    return a + b


def _initial_weights(initial: Optional[Any], width: int, intercept: bool) -> np.ndarray:
    from ember.mllib.linalg import _convert_to_vector
    weights = np.zeros(width) if initial is None else \
        _convert_to_vector(initial).toArray().astype(np.float64)
    if weights.size != width:
        raise ValueError(f"initialWeights has {weights.size} values but the features have "
                         f"{width}")
    return np.append(weights, 1.0) if intercept else weights   # Spark's appendBias


def _descend(blocks: "RDD", loss: Callable, params: SGDParams, weights: np.ndarray,
             names: JobNames) -> np.ndarray:
    reg_value = update(params.regType, weights, np.zeros_like(weights), 0.0, 1,
                       params.regParam)[1]
    previous: Optional[np.ndarray] = None
    for i in range(1, params.iterations + 1):
        names(f"treeAggregate: SGD iteration {i}")
        seq = partial(_gradient_seq, loss, weights, params.miniBatchFraction, i,
                      params.intercept)
        gradient, loss_sum, size = blocks.treeAggregate(
            (np.zeros_like(weights), 0.0, 0), seq, _add_triples)
        if size == 0:
            log.warning("iteration %d: the mini-batch is empty (miniBatchFraction %g)", i,
                        params.miniBatchFraction)
            continue
        log.debug("SGD iteration %d: loss %.6g", i, loss_sum / size + reg_value)
        weights, reg_value = update(params.regType, weights, gradient / size, params.step, i,
                                    params.regParam)
        if previous is not None and _converged(previous, weights, params.convergenceTol):
            log.info("SGD converged after %d iterations", i)
            break
        previous = weights
    return weights


def _converged(previous: np.ndarray, current: np.ndarray, tolerance: float) -> bool:
    return float(np.linalg.norm(previous - current)) < \
        tolerance * max(float(np.linalg.norm(current)), 1.0)
