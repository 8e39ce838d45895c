"""Labeled points and linear regression (``pyspark.mllib.regression``).

``LinearRegressionWithSGD``, ``RidgeRegressionWithSGD`` and ``LassoWithSGD``
train on the cluster with mini-batch SGD over cached numpy blocks (see
``ember.mllib._sgd``); predictions on an RDD run on the cluster too.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Union

import numpy as np

from ember.mllib import _blocks, _sgd
from ember.mllib._blocks import JobNames
from ember.mllib.linalg import Vector, VectorLike, _convert_to_vector
from ember.mllib.util import Loader, Saveable, load_model, metadata_of, save_model
from ember.rdd import RDD

if TYPE_CHECKING:
    from ember.context import SparkContext

__all__ = ["LabeledPoint", "LinearModel", "LinearRegressionModel", "LinearRegressionWithSGD",
           "RidgeRegressionModel", "RidgeRegressionWithSGD", "LassoModel", "LassoWithSGD"]


class LabeledPoint:
    """A label and a feature vector (a Vector, or a list, tuple or numpy array).

    Examples
    --------
    >>> LabeledPoint(1, [0.5, 2.0])
    LabeledPoint(1.0, [0.5,2.0])
    """

    def __init__(self, label: float, features: VectorLike) -> None:
        self.label = float(label)
        self.features = _convert_to_vector(features)

    def __reduce__(self) -> tuple:
        return LabeledPoint, (self.label, self.features)

    def __str__(self) -> str:
        return "(" + ",".join((str(self.label), str(self.features))) + ")"

    def __repr__(self) -> str:
        return "LabeledPoint(%s, %s)" % (self.label, self.features)


def _margins(weights: np.ndarray, intercept: float, records: Iterable[Any]) -> Iterator[np.ndarray]:
    """w.x + b of the records, one array per block of rows."""
    for block in _blocks.iter_vector_blocks(False, 0, records):
        yield np.asarray(block.X @ weights).ravel() + intercept


class LinearModel:
    """A linear model: weights and an intercept.

    Examples
    --------
    >>> LinearModel([1.0, 2.0], 0.5)
    (weights=[1.0,2.0], intercept=0.5)
    """

    def __init__(self, weights: VectorLike, intercept: float) -> None:
        self._coeff = _convert_to_vector(weights)
        self._intercept = float(intercept)

    @property
    def weights(self) -> Vector:
        """The weights (a DenseVector)."""
        return self._coeff

    @property
    def intercept(self) -> float:
        return self._intercept

    def _predict_rdd(self, rdd: RDD, transform: Any) -> RDD:
        """transform(margins) of each block of the RDD's vectors, on the cluster."""
        weights = self._coeff.toArray()
        return rdd.mapPartitions(partial(_apply_to_margins, weights, self._intercept,
                                         transform), True)

    def __repr__(self) -> str:
        return "(weights=%s, intercept=%r)" % (self._coeff, self._intercept)


def _apply_to_margins(weights: np.ndarray, intercept: float, transform: Any,
                      records: Iterable[Any]) -> Iterator[Any]:
    for margins in _margins(weights, intercept, records):
        yield from transform(margins)


def _identity_margins(margins: np.ndarray) -> list:
    return margins.tolist()


class LinearRegressionModelBase(LinearModel):
    """A linear model predicting w.x + b."""

    _CLASS_NAME = ""                   # Spark's class name in saved models

    def predict(self, x: Union[VectorLike, RDD]) -> Union[float, RDD]:
        """The prediction for one vector, or an RDD of predictions for an RDD of vectors.

        Examples
        --------
        >>> LinearRegressionModel([2.0], 1.0).predict([3.0])
        7.0
        """
        if isinstance(x, RDD):
            return self._predict_rdd(x, _identity_margins)
        return float(self.weights.dot(_convert_to_vector(x))) + self.intercept

    def save(self, sc: "SparkContext", path: str) -> None:
        """Saves the weights and intercept to the folder ``path``."""
        metadata = metadata_of(self._CLASS_NAME, "1.0", numFeatures=len(self.weights))
        save_model(sc, path, metadata, [{"weights": self.weights.toArray().tolist(),
                                         "intercept": self.intercept}])

    @classmethod
    def load(cls, sc: "SparkContext", path: str) -> Any:
        """Loads a model saved with ``save``."""
        _, rows = load_model(sc, path, cls.__name__, cls._CLASS_NAME, ("1.0",))
        return cls(rows[0]["weights"], rows[0]["intercept"])


class LinearRegressionModel(LinearRegressionModelBase, Saveable, Loader["LinearRegressionModel"]):
    """A linear regression model (least squares)."""

    _CLASS_NAME = "org.apache.spark.mllib.regression.LinearRegressionModel"


class RidgeRegressionModel(LinearRegressionModelBase, Saveable, Loader["RidgeRegressionModel"]):
    """A linear regression model with L2 regularization."""

    _CLASS_NAME = "org.apache.spark.mllib.regression.RidgeRegressionModel"


class LassoModel(LinearRegressionModelBase, Saveable, Loader["LassoModel"]):
    """A linear regression model with L1 regularization."""

    _CLASS_NAME = "org.apache.spark.mllib.regression.LassoModel"


def check_labeled(data: RDD) -> None:
    """TypeError unless the first record is a LabeledPoint (as PySpark checks)."""
    first = data.first()
    if not isinstance(first, LabeledPoint):
        raise TypeError("data should be an RDD of LabeledPoint, but got %s" % type(first))


def train_linear(data: RDD, loss: Any, params: _sgd.SGDParams, initialWeights: Optional[Any],
                 binary: bool) -> tuple[np.ndarray, float, int]:
    """Checks the data and runs SGD: (weights, intercept, number of features)."""
    with JobNames(data.context) as names:
        names("first: check the data")
        check_labeled(data)
        return _sgd.train(data, loss, params, initialWeights, binary, names)


class LinearRegressionWithSGD:
    """Linear regression (least squares) trained with mini-batch SGD.

    Examples
    --------
    >>> points = sc.parallelize([LabeledPoint(2.0 * x, [x]) for x in range(10)])
    ... # doctest: +SKIP
    >>> model = LinearRegressionWithSGD.train(points, 200, 0.01)  # doctest: +SKIP
    >>> round(model.predict([5.0]))  # doctest: +SKIP
    10
    """

    @classmethod
    def train(cls, data: RDD, iterations: int = 100, step: float = 1.0,
              miniBatchFraction: float = 1.0, initialWeights: Optional[VectorLike] = None,
              regParam: float = 0.0, regType: Optional[str] = None, intercept: bool = False,
              validateData: bool = True, convergenceTol: float = 0.001
              ) -> LinearRegressionModel:
        """Trains on an RDD of LabeledPoint.

        Parameters
        ----------
        data : RDD of LabeledPoint
        iterations : int
            Most SGD iterations (default 100).
        step : float
            Step size; iteration i steps ``step / sqrt(i)`` (default 1.0).
        miniBatchFraction : float
            Fraction of the points each iteration uses (default 1.0).
        initialWeights : vector, optional
            Starting weights (default zeros).
        regParam : float
            Regularization parameter (default 0.0).
        regType : str, optional
            "l1", "l2" or None (default: no regularization).
        intercept : bool
            Fit an intercept too (default False).
        validateData : bool
            Accepted for compatibility (regression labels need no check).
        convergenceTol : float
            Stop once the weights move less than this relative to their norm.

        Returns
        -------
        LinearRegressionModel
        """
        warnings.warn("Deprecated in 2.0.0. Use ml.regression.LinearRegression.", FutureWarning)
        params = _sgd.SGDParams(iterations, step, miniBatchFraction, regParam, regType,
                                intercept, convergenceTol)
        weights, b, _ = train_linear(data, _sgd.least_squares, params, initialWeights, False)
        return LinearRegressionModel(weights, b)


class RidgeRegressionWithSGD:
    """Linear regression with L2 regularization, trained with mini-batch SGD."""

    @classmethod
    def train(cls, data: RDD, iterations: int = 100, step: float = 1.0, regParam: float = 0.01,
              miniBatchFraction: float = 1.0, initialWeights: Optional[VectorLike] = None,
              intercept: bool = False, validateData: bool = True,
              convergenceTol: float = 0.001) -> RidgeRegressionModel:
        """Trains on an RDD of LabeledPoint (parameters as LinearRegressionWithSGD.train)."""
        warnings.warn("Deprecated in 2.0.0. Use ml.regression.LinearRegression with "
                      "elasticNetParam = 0.0. Note the default regParam is 0.01 for "
                      "RidgeRegressionWithSGD, but is 0.0 for LinearRegression.", FutureWarning)
        params = _sgd.SGDParams(iterations, step, miniBatchFraction, regParam, "l2",
                                intercept, convergenceTol)
        weights, b, _ = train_linear(data, _sgd.least_squares, params, initialWeights, False)
        return RidgeRegressionModel(weights, b)


class LassoWithSGD:
    """Linear regression with L1 regularization, trained with mini-batch SGD."""

    @classmethod
    def train(cls, data: RDD, iterations: int = 100, step: float = 1.0, regParam: float = 0.01,
              miniBatchFraction: float = 1.0, initialWeights: Optional[VectorLike] = None,
              intercept: bool = False, validateData: bool = True,
              convergenceTol: float = 0.001) -> LassoModel:
        """Trains on an RDD of LabeledPoint (parameters as LinearRegressionWithSGD.train)."""
        warnings.warn("Deprecated in 2.0.0. Use ml.regression.LinearRegression with "
                      "elasticNetParam = 1.0. Note the default regParam is 0.01 for "
                      "LassoWithSGD, but is 0.0 for LinearRegression.", FutureWarning)
        params = _sgd.SGDParams(iterations, step, miniBatchFraction, regParam, "l1",
                                intercept, convergenceTol)
        weights, b, _ = train_linear(data, _sgd.least_squares, params, initialWeights, False)
        return LassoModel(weights, b)
