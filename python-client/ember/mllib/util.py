"""MLlib utilities (``pyspark.mllib.util``): LIBSVM and text files of labeled
points and vectors, and saving and loading models.

A saved model is a folder as Spark writes it: ``metadata/`` holds one JSON line
(the class, the format version and the model's parameters); ``data/`` holds
the model's values, here as JSON lines (Spark writes Parquet there), so files
saved by Ember are read by Ember.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Generic, Optional, TypeVar

import numpy as np

from ember.mllib.linalg import SparseVector, Vector, Vectors, _convert_to_vector

if TYPE_CHECKING:
    from ember.context import SparkContext
    from ember.mllib.regression import LabeledPoint
    from ember.rdd import RDD

__all__ = ["MLUtils", "Saveable", "Loader"]

T = TypeVar("T")


class Saveable:
    """A model that can be saved (``model.save(sc, path)``)."""

    def save(self, sc: "SparkContext", path: str) -> None:
        """Saves the model to the folder ``path`` (which must not hold a model yet)."""
        raise NotImplementedError


class Loader(Generic[T]):
    """A model class that can load saved models (``Model.load(sc, path)``)."""

    @classmethod
    def load(cls, sc: "SparkContext", path: str) -> T:
        """Loads a model saved with ``save``."""
        raise NotImplementedError


def save_model(sc: "SparkContext", path: str, metadata: dict, rows: list[dict]) -> None:
    """Writes ``path/metadata`` (one JSON line) and ``path/data`` (a JSON line per row)."""
    sc.parallelize([json.dumps(metadata)], 1).saveAsTextFile(os.path.join(path, "metadata"))
    sc.parallelize([json.dumps(row) for row in rows], 1).saveAsTextFile(
        os.path.join(path, "data"))


def load_model(sc: "SparkContext", path: str, model: str, class_name: str,
               versions: tuple[str, ...]) -> tuple[dict, list[dict]]:
    """Reads a model folder written by save_model: (metadata, rows).

    Raises ValueError when the folder holds another kind of model or format.
    """
    if not os.path.isdir(os.path.join(path, "metadata")):
        raise ValueError(f"{model}.load: {path} holds no saved model (no metadata folder)")
    metadata = json.loads(sc.textFile(os.path.join(path, "metadata")).first())
    found = (metadata.get("class"), metadata.get("version"))
    if found[0] != class_name or found[1] not in versions:
        raise ValueError(f"{model}.load did not recognize model with (className, format "
                         f"version): {found}; expected ({class_name}, {' or '.join(versions)})")
    rows = [json.loads(line) for line in sc.textFile(os.path.join(path, "data")).collect()]
    return metadata, rows


def _parse_libsvm_line(line: str) -> tuple[float, np.ndarray, np.ndarray]:
    items = line.split(None)
    label = float(items[0])
    pairs = [item.split(":") for item in items[1:]]
    indices = np.array([int(i) - 1 for i, _ in pairs], dtype=np.int32)
    values = np.array([float(v) for _, v in pairs], dtype=np.float64)
    return label, indices, values


def _last_index(parsed: tuple) -> int:
    return int(parsed[1][-1]) if parsed[1].size else -1


def _to_labeled_point(size: int, parsed: tuple) -> "LabeledPoint":
    from ember.mllib.regression import LabeledPoint
    return LabeledPoint(parsed[0], SparseVector(size, parsed[1], parsed[2]))


def _to_libsvm(p: "LabeledPoint") -> str:
    items = [str(p.label)]
    v = _convert_to_vector(p.features)
    if isinstance(v, SparseVector):
        items += [f"{i + 1}:{x}" for i, x in zip(v.indices, v.values)]
    else:
        items += [f"{i + 1}:{x}" for i, x in enumerate(v.toArray())]
    return " ".join(items)


def _parse_labeled_point(line: str) -> "LabeledPoint":
    from ember.mllib.regression import LabeledPoint
    body = line.strip()
    if not (body.startswith("(") and body.endswith(")")):
        raise ValueError(f"cannot parse a labeled point from {line!r}: expected (label,features)")
    label, _, features = body[1:-1].partition(",")
    return LabeledPoint(float(label), Vectors.parse(features))


def _max(a: int, b: int) -> int:
    return a if a > b else b


class MLUtils:
    """Helpers to load and save data for MLlib.

    Examples
    --------
    >>> from ember.mllib.regression import LabeledPoint  # doctest: +SKIP
    >>> MLUtils.saveAsLibSVMFile(sc.parallelize([LabeledPoint(1.0, [0.0, 2.5])]), "/tmp/svm")
    ... # doctest: +SKIP
    >>> MLUtils.loadLibSVMFile(sc, "/tmp/svm").first()  # doctest: +SKIP
    LabeledPoint(1.0, (2,[1],[2.5]))
    """

    @staticmethod
    def loadLibSVMFile(sc: "SparkContext", path: str, numFeatures: int = -1,
                       minPartitions: Optional[int] = None) -> "RDD":
        """Labeled points with sparse features from LIBSVM text ("label index:value ...",
        indices from 1). Without numFeatures, one pass finds the largest index."""
        parsed = sc.textFile(path, minPartitions).map(_parse_libsvm_line)
        if numFeatures <= 0:
            parsed.cache()
            numFeatures = parsed.map(_last_index).reduce(_max) + 1
        return parsed.map(lambda p, size=numFeatures: _to_labeled_point(size, p))

    @staticmethod
    def saveAsLibSVMFile(data: "RDD", dir: str) -> None:
        """Saves an RDD of LabeledPoint as LIBSVM text files in ``dir``."""
        data.map(_to_libsvm).saveAsTextFile(dir)

    @staticmethod
    def loadLabeledPoints(sc: "SparkContext", path: str,
                          minPartitions: Optional[int] = None) -> "RDD":
        """Labeled points saved as text with ``str(LabeledPoint)`` per line."""
        minPartitions = minPartitions or min(sc.defaultParallelism, 2)
        return sc.textFile(path, minPartitions).map(_parse_labeled_point)

    @staticmethod
    def loadVectors(sc: "SparkContext", path: str) -> "RDD":
        """Vectors saved as text with ``str(vector)`` per line."""
        return sc.textFile(path, min(sc.defaultParallelism, 2)).map(Vectors.parse)

    @staticmethod
    def appendBias(data: Any) -> Vector:
        """The vector with a last element 1.0 (the bias term)."""
        vec = _convert_to_vector(data)
        if isinstance(vec, SparseVector):
            return SparseVector(len(vec) + 1, np.append(vec.indices, len(vec)),
                                np.append(vec.values, 1.0))
        return _convert_to_vector(np.append(vec.toArray(), 1.0))


def metadata_of(class_name: str, version: str, **params: Any) -> dict:
    return {"class": class_name, "version": version, **params}
