"""Binary classification (``pyspark.mllib.classification``): logistic regression
and linear SVMs trained with mini-batch SGD on the cluster.

Labels must be 0 or 1. ``predict`` returns the class (0 or 1) above the
model's threshold, or the raw score (probability, or SVM margin) once
``clearThreshold()`` was called; on an RDD it runs on the cluster.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from ember.mllib import _sgd
from ember.mllib.linalg import VectorLike, _convert_to_vector
from ember.mllib.regression import LabeledPoint, LinearModel, train_linear
from ember.mllib.util import Loader, Saveable, load_model, metadata_of, save_model
from ember.rdd import RDD

if TYPE_CHECKING:
    from ember.context import SparkContext

__all__ = ["LinearClassificationModel", "LogisticRegressionModel", "LogisticRegressionWithSGD",
           "SVMModel", "SVMWithSGD", "LabeledPoint"]


def _sigmoid(margin: Any) -> Any:
    return 0.5 * (1.0 + np.tanh(0.5 * margin))


def _classes(threshold: Optional[float], scores: np.ndarray) -> list:
    if threshold is None:
        return scores.tolist()
    return (scores > threshold).astype(int).tolist()


def _logistic_outputs(threshold: Optional[float], margins: np.ndarray) -> list:
    return _classes(threshold, _sigmoid(margins))


def _svm_outputs(threshold: Optional[float], margins: np.ndarray) -> list:
    return _classes(threshold, margins)


class LinearClassificationModel(LinearModel):
    """A linear binary classifier with a threshold on its score."""

    _CLASS_NAME = ""                   # Spark's class name in saved models
    _DEFAULT_THRESHOLD: Optional[float] = None

    def __init__(self, weights: VectorLike, intercept: float) -> None:
        super().__init__(weights, intercept)
        self._threshold = self._DEFAULT_THRESHOLD

    def setThreshold(self, value: float) -> None:
        """Scores above ``value`` predict class 1, others class 0."""
        self._threshold = value

    @property
    def threshold(self) -> Optional[float]:
        """The threshold, or None when predict returns raw scores."""
        return self._threshold

    def clearThreshold(self) -> None:
        """From now on predict returns raw scores."""
        self._threshold = None

    def predict(self, test: Any) -> Any:
        raise NotImplementedError

    def _save(self, sc: "SparkContext", path: str, num_features: int, num_classes: int) -> None:
        metadata = metadata_of(self._CLASS_NAME, "1.0", numFeatures=num_features,
                               numClasses=num_classes)
        save_model(sc, path, metadata, [{"weights": self.weights.toArray().tolist(),
                                         "intercept": self.intercept,
                                         "threshold": self._threshold}])

    @classmethod
    def _load(cls, sc: "SparkContext", path: str) -> tuple[dict, dict]:
        metadata, rows = load_model(sc, path, cls.__name__, cls._CLASS_NAME, ("1.0",))
        return metadata, rows[0]


class LogisticRegressionModel(LinearClassificationModel, Saveable,
                              Loader["LogisticRegressionModel"]):
    """A logistic regression model: binary, or multinomial (numClasses - 1 rows of
    weights, each with its intercept last when the weights include intercepts).

    Examples
    --------
    >>> model = LogisticRegressionModel([1.0, -1.0], 0.0, 2, 2)
    >>> model.predict([2.0, 0.0]), model.predict([0.0, 2.0])
    (1, 0)
    >>> model.clearThreshold()
    >>> round(model.predict([2.0, 0.0]), 4)
    0.8808
    """

    _CLASS_NAME = "org.apache.spark.mllib.classification.LogisticRegressionModel"
    _DEFAULT_THRESHOLD = 0.5

    def __init__(self, weights: VectorLike, intercept: float, numFeatures: int,
                 numClasses: int) -> None:
        super().__init__(weights, intercept)
        self._numFeatures = int(numFeatures)
        self._numClasses = int(numClasses)
        if self._numClasses > 2:
            self._dataWithBiasSize = self._coeff.size // (self._numClasses - 1)
            self._weightsMatrix = self._coeff.toArray().reshape(
                self._numClasses - 1, self._dataWithBiasSize)

    @property
    def numFeatures(self) -> int:
        return self._numFeatures

    @property
    def numClasses(self) -> int:
        return self._numClasses

    def predict(self, x: Union[VectorLike, RDD]) -> Union[int, float, RDD]:
        """The class (0 or 1, or up to numClasses - 1) of a vector, its probability
        of class 1 once the threshold is cleared, or an RDD of those for an RDD."""
        if isinstance(x, RDD):
            if self._numClasses == 2:
                return self._predict_rdd(x, partial(_logistic_outputs, self._threshold))
            return x.map(self.predict)
        v = _convert_to_vector(x)
        if self._numClasses == 2:
            margin = float(self.weights.dot(v)) + self._intercept
            return _classes(self._threshold, np.array([_sigmoid(margin)]))[0]
        return self._predict_multinomial(v)

    def _predict_multinomial(self, v: Any) -> int:
        best_class, max_margin = 0, 0.0
        with_bias = len(v) + 1 == self._dataWithBiasSize
        for i in range(self._numClasses - 1):
            row = self._weightsMatrix[i]
            margin = v.dot(row[:len(v)]) + row[len(v)] if with_bias else v.dot(row)
            if margin > max_margin:
                max_margin, best_class = margin, i + 1
        return best_class

    def save(self, sc: "SparkContext", path: str) -> None:
        """Saves the model (weights, intercept, threshold) to the folder ``path``."""
        self._save(sc, path, self._numFeatures, self._numClasses)

    @classmethod
    def load(cls, sc: "SparkContext", path: str) -> "LogisticRegressionModel":
        """Loads a model saved with ``save``."""
        metadata, row = cls._load(sc, path)
        model = cls(row["weights"], row["intercept"], metadata["numFeatures"],
                    metadata["numClasses"])
        model._threshold = row.get("threshold")
        return model

    def __repr__(self) -> str:
        return ("pyspark.mllib.LogisticRegressionModel: intercept = {}, numFeatures = {}, "
                "numClasses = {}, threshold = {}").format(
                    self._intercept, self._numFeatures, self._numClasses, self._threshold)


class SVMModel(LinearClassificationModel, Saveable, Loader["SVMModel"]):
    """A linear SVM: class 1 when w.x + b is above the threshold (default 0.0).

    Examples
    --------
    >>> SVMModel([1.0], -1.0).predict([2.0])
    1
    """

    _CLASS_NAME = "org.apache.spark.mllib.classification.SVMModel"
    _DEFAULT_THRESHOLD = 0.0

    def predict(self, x: Union[VectorLike, RDD]) -> Union[int, float, RDD]:
        """The class (0 or 1) of a vector, its margin once the threshold is cleared,
        or an RDD of those for an RDD."""
        if isinstance(x, RDD):
            return self._predict_rdd(x, partial(_svm_outputs, self._threshold))
        margin = float(self.weights.dot(_convert_to_vector(x))) + self._intercept
        return _classes(self._threshold, np.array([margin]))[0]

    def save(self, sc: "SparkContext", path: str) -> None:
        """Saves the model (weights, intercept, threshold) to the folder ``path``."""
        self._save(sc, path, len(self.weights), 2)

    @classmethod
    def load(cls, sc: "SparkContext", path: str) -> "SVMModel":
        """Loads a model saved with ``save``."""
        _, row = cls._load(sc, path)
        model = cls(row["weights"], row["intercept"])
        model._threshold = row.get("threshold")
        return model


class LogisticRegressionWithSGD:
    """Binary logistic regression trained with mini-batch SGD.

    Examples
    --------
    >>> data = sc.parallelize([LabeledPoint(0.0, [0.0, 1.0]), LabeledPoint(1.0, [1.0, 0.0])])
    ... # doctest: +SKIP
    >>> LogisticRegressionWithSGD.train(data, iterations=10).predict([1.0, 0.0])
    ... # doctest: +SKIP
    1
    """

    @classmethod
    def train(cls, data: RDD, iterations: int = 100, step: float = 1.0,
              miniBatchFraction: float = 1.0, initialWeights: Optional[VectorLike] = None,
              regParam: float = 0.01, regType: Optional[str] = "l2", intercept: bool = False,
              validateData: bool = True, convergenceTol: float = 0.001
              ) -> LogisticRegressionModel:
        """Trains on an RDD of LabeledPoint with labels 0 and 1.

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
            Regularization parameter (default 0.01).
        regType : str, optional
            "l2" (default), "l1" or None.
        intercept : bool
            Fit an intercept too (default False).
        validateData : bool
            Check first that every label is 0 or 1 (default True).
        convergenceTol : float
            Stop once the weights move less than this relative to their norm.

        Returns
        -------
        LogisticRegressionModel
        """
        warnings.warn("Deprecated in 2.0.0. Use ml.classification.LogisticRegression or "
                      "LogisticRegressionWithLBFGS.", FutureWarning)
        params = _sgd.SGDParams(iterations, step, miniBatchFraction, regParam, regType,
                                intercept, convergenceTol)
        weights, b, width = train_linear(data, _sgd.logistic, params, initialWeights,
                                         validateData)
        return LogisticRegressionModel(weights, b, width, 2)


class SVMWithSGD:
    """A linear SVM (hinge loss) trained with mini-batch SGD."""

    @classmethod
    def train(cls, data: RDD, iterations: int = 100, step: float = 1.0, regParam: float = 0.01,
              miniBatchFraction: float = 1.0, initialWeights: Optional[VectorLike] = None,
              regType: Optional[str] = "l2", intercept: bool = False, validateData: bool = True,
              convergenceTol: float = 0.001) -> SVMModel:
        """Trains on an RDD of LabeledPoint with labels 0 and 1 (parameters as
        LogisticRegressionWithSGD.train)."""
        params = _sgd.SGDParams(iterations, step, miniBatchFraction, regParam, regType,
                                intercept, convergenceTol)
        weights, b, _ = train_linear(data, _sgd.hinge, params, initialWeights, validateData)
        return SVMModel(weights, b)

