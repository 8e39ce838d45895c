"""Local vectors of MLlib (``pyspark.mllib.linalg``): dense and sparse, backed by numpy.

Records given to MLlib may be ``Vector`` objects, lists, tuples, ``range``
objects, ``array.array`` or 1-D numpy arrays (dense), or scipy column vectors
(sparse); ``_convert_to_vector`` turns each into a ``Vector``.
"""

from __future__ import annotations

import array
import struct
from typing import Any, Iterable, Sequence, Union

import numpy as np

try:                                   # scipy is optional (Debian's python3-sklearn brings it)
    import scipy.sparse as _sparse
except ImportError:                    # pragma: no cover - depends on the machine
    _sparse = None

__all__ = ["Vector", "DenseVector", "SparseVector", "Vectors"]

VectorLike = Union["Vector", Sequence[float], np.ndarray, range, array.array]


def _is_scipy_sparse(value: Any) -> bool:
    return _sparse is not None and _sparse.issparse(value)


def _convert_to_vector(d: Any) -> "Vector":
    """A Vector from a Vector, a list, tuple, range, array.array, 1-D numpy array
    (dense) or a scipy column vector (sparse).

    Examples
    --------
    >>> _convert_to_vector((1, 2))
    DenseVector([1.0, 2.0])
    """
    if isinstance(d, Vector):
        return d
    if isinstance(d, (array.array, np.ndarray, list, tuple, range)):
        return DenseVector(d)
    if _is_scipy_sparse(d):
        if d.shape[1] != 1:
            raise ValueError(f"expected a column vector, got a matrix of shape {d.shape}")
        csc = d.tocsc()
        if not csc.has_sorted_indices:
            csc.sort_indices()
        return SparseVector(d.shape[0], csc.indices, csc.data)
    raise TypeError("Cannot convert type %s into Vector" % type(d))


def _vector_size(v: Any) -> int:
    """The size of anything _convert_to_vector accepts, without converting it."""
    if isinstance(v, Vector):
        return len(v)
    if isinstance(v, (array.array, list, tuple, range)):
        return len(v)
    if isinstance(v, np.ndarray):
        if v.ndim == 1 or (v.ndim == 2 and v.shape[1] == 1):
            return len(v)
        raise ValueError("Cannot treat an ndarray of shape %s as a vector" % str(v.shape))
    if _is_scipy_sparse(v):
        if v.shape[1] != 1:
            raise ValueError(f"expected a column vector, got a matrix of shape {v.shape}")
        return v.shape[0]
    raise TypeError("Cannot treat type %s as a vector" % type(v))


def _format_float(f: float, digits: int = 8) -> str:
    s = str(round(f, digits))
    if "." in s:
        s = s[:s.index(".") + 1 + digits]
    return s


def _double_to_long_bits(value: float) -> int:
    if np.isnan(value):
        value = float("nan")
    return struct.unpack("Q", struct.pack("d", value))[0]


def _hash_entries(size: int, indices: Iterable[int], values: Iterable[float]) -> int:
    """Spark's vector hash: the size and up to 128 nonzero entries."""
    result, nnz = 31 + size, 0
    for i, v in zip(indices, values):
        if nnz >= 128:
            break
        if v != 0:
            result = 31 * result + int(i)
            bits = _double_to_long_bits(v)
            result = 31 * result + (bits ^ (bits >> 32))
            nnz += 1
    return result


def _delegate(op: str) -> Any:
    """A DenseVector operator applying numpy's ``op`` to the arrays."""
    def func(self: "DenseVector", other: Any) -> "DenseVector":
        if isinstance(other, DenseVector):
            other = other.array
        return DenseVector(getattr(self.array, op)(other))
    return func


class Vector:
    """Abstract base of MLlib's local vectors."""

    def toArray(self) -> np.ndarray:
        """The vector as a 1-D numpy array of float64."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class DenseVector(Vector):
    """A dense vector stored as a numpy float64 array; numpy operations apply
    to it (``v.sum()``, ``v + 1``, ``v * w``).

    Examples
    --------
    >>> v = Vectors.dense([1.0, 2.0])
    >>> v.dot([3.0, 4.0]), v.norm(2) ** 2, (v + v).toArray().tolist()
    (11.0, 5.000000000000001, [2.0, 4.0])
    """

    def __init__(self, ar: Union[bytes, VectorLike]) -> None:
        if isinstance(ar, bytes):
            ar = np.frombuffer(ar, dtype=np.float64)
        elif not isinstance(ar, np.ndarray):
            ar = np.array(ar, dtype=np.float64)
        if ar.dtype != np.float64:
            ar = ar.astype(np.float64)
        self.array = ar

    @staticmethod
    def parse(s: str) -> "DenseVector":
        """Parses ``str(DenseVector)``: ``"[1.0,2.0]"``.

        Examples
        --------
        >>> DenseVector.parse(" [ 0.0,1.0,2.0 ]")
        DenseVector([0.0, 1.0, 2.0])
        """
        start, end = s.find("["), s.find("]")
        if start == -1:
            raise ValueError("Array should start with '['.")
        if end == -1:
            raise ValueError("Array should end with ']'.")
        body = s[start + 1:end].strip()
        try:
            values = [float(x) for x in body.split(",") if x.strip()] if body else []
        except ValueError:
            raise ValueError("Unable to parse values from %s" % s) from None
        return DenseVector(values)

    def __reduce__(self) -> tuple:
        return DenseVector, (self.array.tobytes(),)

    def numNonzeros(self) -> int:
        """Number of nonzero elements."""
        return int(np.count_nonzero(self.array))

    def norm(self, p: Union[float, str]) -> np.float64:
        """The p-norm (``np.linalg.norm``; ``float("inf")`` for the maximum)."""
        return np.linalg.norm(self.array, p)

    def dot(self, other: Any) -> np.float64:
        """Dot product with a vector, list, 1-D array, or the columns of a 2-D array."""
        if isinstance(other, np.ndarray):
            if other.ndim > 1 and len(self) != other.shape[0]:
                raise ValueError("dimension mismatch")
            return np.dot(self.array, other)
        if _is_scipy_sparse(other):
            if len(self) != other.shape[0]:
                raise ValueError("dimension mismatch")
            return other.transpose().dot(self.toArray())
        if len(self) != _vector_size(other):
            raise ValueError("dimension mismatch")
        if isinstance(other, SparseVector):
            return other.dot(self)
        if isinstance(other, Vector):
            return np.dot(self.toArray(), other.toArray())
        return np.dot(self.toArray(), other)

    def squared_distance(self, other: Any) -> np.float64:
        """Squared Euclidean distance to another vector.

        Examples
        --------
        >>> Vectors.dense([1.0, 2.0]).squared_distance(Vectors.sparse(2, [1], [1.0]))
        2.0
        """
        if len(self) != _vector_size(other):
            raise ValueError("dimension mismatch")
        if isinstance(other, SparseVector):
            return other.squared_distance(self)
        if _is_scipy_sparse(other):
            return _convert_to_vector(other).squared_distance(self)
        if isinstance(other, Vector):
            other = other.toArray()
        elif not isinstance(other, np.ndarray):
            other = np.array(other)
        diff = self.toArray() - other
        return np.dot(diff, diff)

    def toArray(self) -> np.ndarray:
        return self.array

    @property
    def values(self) -> np.ndarray:
        """The numpy array of the values."""
        return self.array

    def __getitem__(self, item: Any) -> Any:
        return self.array[item]

    def __len__(self) -> int:
        return len(self.array)

    def __str__(self) -> str:
        return "[" + ",".join(str(v) for v in self.array) + "]"

    def __repr__(self) -> str:
        return "DenseVector([%s])" % ", ".join(_format_float(v) for v in self.array)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, DenseVector):
            return bool(np.array_equal(self.array, other.array))
        if isinstance(other, SparseVector):
            return len(self) == other.size and np.array_equal(self.array, other.toArray())
        return False

    def __ne__(self, other: Any) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return _hash_entries(len(self), range(len(self)), self.array)

    def __getattr__(self, item: str) -> Any:
        if item == "array":            # not set yet (unpickling): no recursion
            raise AttributeError(item)
        return getattr(self.array, item)

    def __neg__(self) -> "DenseVector":
        return DenseVector(-self.array)

    __add__ = _delegate("__add__")
    __sub__ = _delegate("__sub__")
    __mul__ = _delegate("__mul__")
    __truediv__ = _delegate("__truediv__")
    __mod__ = _delegate("__mod__")
    __radd__ = _delegate("__radd__")
    __rsub__ = _delegate("__rsub__")
    __rmul__ = _delegate("__rmul__")
    __rtruediv__ = _delegate("__rtruediv__")
    __rmod__ = _delegate("__rmod__")


class SparseVector(Vector):
    """A sparse vector: its size, strictly increasing int32 indices and float64 values.

    ``SparseVector(size, {index: value})``, ``SparseVector(size, [(index, value), ...])``
    or ``SparseVector(size, indices, values)``.

    Examples
    --------
    >>> v = SparseVector(4, {1: 1.0, 3: 5.5})
    >>> v.dot(Vectors.dense([1.0, 2.0, 3.0, 4.0])), v.toArray().tolist()
    (24.0, [0.0, 1.0, 0.0, 5.5])
    """

    def __init__(self, size: int, *args: Any) -> None:
        self.size = int(size)
        if not 1 <= len(args) <= 2:
            raise TypeError("SparseVector takes a size and either a dict or list of "
                            "(index, value) pairs, or indices and values")
        if len(args) == 1:
            pairs = args[0]
            if isinstance(pairs, dict):
                pairs = pairs.items()
            pairs = sorted(pairs)
            self.indices = np.array([p[0] for p in pairs], dtype=np.int32)
            self.values = np.array([p[1] for p in pairs], dtype=np.float64)
        else:
            self.indices, self.values = self._arrays(args[0], args[1])
        self._check()

    @staticmethod
    def _arrays(indices: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(indices, bytes):
            if not isinstance(values, bytes):
                raise TypeError("values must be bytes when indices are")
            return np.frombuffer(indices, np.int32), np.frombuffer(values, np.float64)
        return np.array(indices, dtype=np.int32), np.array(values, dtype=np.float64)

    def _check(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("index and value arrays not same length")
        bad = np.nonzero(np.diff(self.indices) <= 0)[0]
        if bad.size:
            i = bad[0]
            raise TypeError("Indices %s and %s are not strictly increasing"
                            % (self.indices[i], self.indices[i + 1]))
        if self.indices.size:
            if self.indices[-1] >= self.size:
                raise ValueError("Index %d is out of the size of vector with size=%d"
                                 % (self.indices[-1], self.size))
            if self.indices[0] < 0:
                raise ValueError("Contains negative index %d" % self.indices[0])

    def numNonzeros(self) -> int:
        """Number of nonzero elements (stored zeros do not count)."""
        return int(np.count_nonzero(self.values))

    def norm(self, p: Union[float, str]) -> np.float64:
        """The p-norm (``np.linalg.norm`` of the stored values)."""
        return np.linalg.norm(self.values, p)

    def __reduce__(self) -> tuple:
        return SparseVector, (self.size, self.indices.tobytes(), self.values.tobytes())

    @staticmethod
    def parse(s: str) -> "SparseVector":
        """Parses ``str(SparseVector)``: ``"(4,[1,3],[1.0,5.5])"``.

        Examples
        --------
        >>> SparseVector.parse(" (4, [0,1 ],[ 4.0,5.0] )")
        SparseVector(4, {0: 4.0, 1: 5.0})
        """
        start, end = s.find("("), s.rfind(")")
        if start == -1:
            raise ValueError("Tuple should start with '('")
        if end == -1:
            raise ValueError("Tuple should end with ')'")
        body = s[start + 1:end].strip()
        size = body[:body.find(",")]
        try:
            size = int(size)
        except ValueError:
            raise ValueError("Cannot parse size %s." % size) from None
        ind_start, ind_end = body.find("["), body.find("]")
        if ind_start == -1 or ind_end == -1:
            raise ValueError("Indices array should be enclosed in '[' and ']'.")
        val_start, val_end = body.find("[", ind_end + 1), body.rfind("]")
        if val_start == -1 or val_end == -1 or val_end == ind_end:
            raise ValueError("Values array should be enclosed in '[' and ']'.")
        try:
            indices = [int(x) for x in body[ind_start + 1:ind_end].split(",") if x.strip()]
            values = [float(x) for x in body[val_start + 1:val_end].split(",") if x.strip()]
        except ValueError:
            raise ValueError("Unable to parse indices or values from %s." % s) from None
        return SparseVector(size, indices, values)

    def dot(self, other: Any) -> np.float64:
        """Dot product with a vector, list, 1-D array, or the columns of a 2-D array."""
        if isinstance(other, np.ndarray):
            if other.ndim not in (1, 2):
                raise ValueError("Cannot call dot with %d-dimensional array" % other.ndim)
            if len(self) != other.shape[0]:
                raise ValueError("dimension mismatch")
            return np.dot(self.values, other[self.indices])
        if len(self) != _vector_size(other):
            raise ValueError("dimension mismatch")
        if isinstance(other, DenseVector):
            return np.dot(other.array[self.indices], self.values)
        if isinstance(other, SparseVector):
            _, mine, theirs = np.intersect1d(self.indices, other.indices, assume_unique=True,
                                             return_indices=True)
            if mine.size == 0:
                return np.float64(0.0)
            return np.dot(self.values[mine], other.values[theirs])
        return self.dot(_convert_to_vector(other))

    def squared_distance(self, other: Any) -> np.float64:
        """Squared Euclidean distance to another vector.

        Examples
        --------
        >>> SparseVector(4, [1, 3], [3.0, 4.0]).squared_distance(SparseVector(4, [1], [1.0]))
        20.0
        """
        if len(self) != _vector_size(other):
            raise ValueError("dimension mismatch")
        if isinstance(other, (np.ndarray, DenseVector)):
            if isinstance(other, np.ndarray) and other.ndim != 1:
                raise ValueError("Cannot call squared_distance with %d-dimensional array"
                                 % other.ndim)
            dense = other.array if isinstance(other, DenseVector) else other
            mine = np.zeros(dense.size, dtype=bool)
            mine[self.indices] = True
            dist = dense[mine] - self.values
            rest = dense[~mine]
            return np.dot(dist, dist) + np.dot(rest, rest)
        if isinstance(other, SparseVector):
            union = np.union1d(self.indices, other.indices)
            diff = np.zeros(union.size)
            diff[np.searchsorted(union, self.indices)] = self.values
            diff[np.searchsorted(union, other.indices)] -= other.values
            return np.dot(diff, diff)
        return self.squared_distance(_convert_to_vector(other))

    def toArray(self) -> np.ndarray:
        arr = np.zeros((self.size,), dtype=np.float64)
        arr[self.indices] = self.values
        return arr

    def __len__(self) -> int:
        return self.size

    def __str__(self) -> str:
        inds = "[" + ",".join(str(i) for i in self.indices) + "]"
        vals = "[" + ",".join(str(v) for v in self.values) + "]"
        return "(" + ",".join((str(self.size), inds, vals)) + ")"

    def __repr__(self) -> str:
        entries = ", ".join("{0}: {1}".format(i, _format_float(v))
                            for i, v in zip(self.indices, self.values))
        return "SparseVector({0}, {{{1}}})".format(self.size, entries)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, SparseVector):
            return (other.size == self.size and np.array_equal(other.indices, self.indices)
                    and np.array_equal(other.values, self.values))
        if isinstance(other, DenseVector):
            return self.size == len(other) and np.array_equal(self.toArray(), other.array)
        return False

    def __ne__(self, other: Any) -> bool:
        return not self == other

    def __getitem__(self, index: int) -> np.float64:
        if not isinstance(index, (int, np.integer)):
            raise TypeError("Indices must be of type integer, got type %s" % type(index))
        if index >= self.size or index < -self.size:
            raise IndexError("Index %d out of bounds." % index)
        if index < 0:
            index += self.size
        pos = np.searchsorted(self.indices, index)
        if pos < self.indices.size and self.indices[pos] == index:
            return self.values[pos]
        return np.float64(0.0)

    def __hash__(self) -> int:
        return _hash_entries(self.size, self.indices, self.values)


class Vectors:
    """Factory methods of local vectors; prefer these (or numpy arrays, lists)
    to building DenseVector and SparseVector directly.

    Examples
    --------
    >>> Vectors.dense(1, 2, 3)
    DenseVector([1.0, 2.0, 3.0])
    >>> Vectors.sparse(4, [(1, 1.0), (3, 5.5)])
    SparseVector(4, {1: 1.0, 3: 5.5})
    """

    @staticmethod
    def sparse(size: int, *args: Any) -> SparseVector:
        """A sparse vector: a dict, a list of (index, value) pairs, or indices and values."""
        return SparseVector(size, *args)

    @staticmethod
    def dense(*elements: Any) -> DenseVector:
        """A dense vector from numbers, or from one list, tuple or numpy array."""
        if len(elements) == 1 and not isinstance(elements[0], (float, int)):
            elements = elements[0]
        return DenseVector(elements)

    @staticmethod
    def stringify(vector: Vector) -> str:
        """``str(vector)``: the form ``Vectors.parse`` reads back."""
        return str(vector)

    @staticmethod
    def squared_distance(v1: Any, v2: Any) -> np.float64:
        """Squared Euclidean distance between two vectors (or anything vector-like)."""
        return _convert_to_vector(v1).squared_distance(_convert_to_vector(v2))

    @staticmethod
    def norm(vector: Any, p: Union[float, str]) -> np.float64:
        """The p-norm of a vector."""
        return _convert_to_vector(vector).norm(p)

    @staticmethod
    def parse(s: str) -> Vector:
        """Parses ``"[1.0,2.0]"`` (dense) or ``"(2,[1],[2.0])"`` (sparse)."""
        if s.find("(") == -1 and s.find("[") != -1:
            return DenseVector.parse(s)
        if s.find("(") != -1:
            return SparseVector.parse(s)
        raise ValueError("Cannot find tokens '[' or '(' from the input string.")

    @staticmethod
    def zeros(size: int) -> DenseVector:
        """A dense vector of zeros."""
        return DenseVector(np.zeros(size))

    @staticmethod
    def _equals(v1_indices: Sequence[int], v1_values: Sequence[float],
                v2_indices: Sequence[int], v2_values: Sequence[float]) -> bool:
        """True when two (indices, values) vectors hold the same nonzero entries."""
        a = {int(i): v for i, v in zip(v1_indices, v1_values) if v != 0}
        b = {int(i): v for i, v in zip(v2_indices, v2_values) if v != 0}
        return a == b

