"""MLlib on Ember (ember.mllib, pyspark.mllib under ember-submit): vectors,
KMeans, SGD-trained linear models, column statistics, model files, and the two
examples; training aggregates on the cluster instead of collecting the data."""

from __future__ import annotations

import pickle
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN_DIR, REPO, Gateway
from ember import RDD, SparkContext
from ember.mllib.classification import (LogisticRegressionModel, LogisticRegressionWithSGD,
                                        SVMWithSGD)
from ember.mllib.clustering import KMeans, KMeansModel
from ember.mllib.linalg import DenseVector, SparseVector, Vectors, _convert_to_vector
from ember.mllib.regression import LabeledPoint, LinearRegressionModel, LinearRegressionWithSGD
from ember.mllib.stat import Statistics

# Blobs: 5 centers at least 10 apart in 3 dimensions, unit spread, 4000 points each.
# The mean of 4000 unit Gaussians is off by about 1/sqrt(4000) = 0.016 per
# coordinate, so a recovered center within CENTER_TOLERANCE of its true center
# is the blob's center.
CENTER_TOLERANCE = 0.1
BLOB_CENTERS = np.array([[0.0, 0.0, 0.0], [12.0, 0.0, 0.0], [0.0, 12.0, 0.0],
                         [0.0, 0.0, 12.0], [12.0, 12.0, 12.0]])
ACCURACY_THRESHOLD = 0.95


@pytest.fixture(autouse=True)
def no_future_warnings():
    """The SGD trainers warn as PySpark's do (deprecated since 2.0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def blobs(centers: np.ndarray, per_center: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = np.repeat(centers, per_center, axis=0) + rng.normal(size=(len(centers) * per_center,
                                                                      centers.shape[1]))
    return points[rng.permutation(len(points))]


@pytest.fixture(scope="module")
def blob_points() -> np.ndarray:
    return blobs(BLOB_CENTERS, 4000, seed=11)


@pytest.fixture(scope="module")
def blob_rdd(sc: SparkContext, blob_points: np.ndarray) -> RDD:
    return sc.parallelize(list(blob_points), 4).cache()


def assert_recovers(centers: list, truth: np.ndarray, tolerance: float) -> None:
    found = np.array(centers)
    assert found.shape == truth.shape, f"got {len(found)} centers, want {len(truth)}"
    for center in truth:
        distance = np.linalg.norm(found - center, axis=1).min()
        assert distance <= tolerance, f"no center within {tolerance} of {center}: {found}"


def numpy_cost(points: np.ndarray, centers: list) -> float:
    d2 = ((points[:, None, :] - np.array(centers)[None, :, :]) ** 2).sum(axis=2)
    return float(d2.min(axis=1).sum())


# ---- vectors ------------------------------------------------------------------------

def test_vectors_parse_records_and_compute_like_numpy() -> None:
    dense, sparse = Vectors.dense([1.0, 0.0, 3.0]), Vectors.sparse(3, {0: 2.0, 2: -1.0})
    for record in ([1.0, 0.0, 3.0], (1, 0, 3), np.array([1.0, 0.0, 3.0]), range(1, 2)):
        assert isinstance(_convert_to_vector(record), DenseVector)
    assert _convert_to_vector((1, 0, 3)) == dense
    assert dense.dot(sparse) == sparse.dot(dense) == 2.0 - 3.0
    assert dense.squared_distance(sparse) == sparse.squared_distance(dense) == 1.0 + 0.0 + 16.0
    assert sparse.squared_distance(SparseVector(3, [1], [5.0])) == 4.0 + 25.0 + 1.0
    assert dense.norm(2) == pytest.approx(np.sqrt(10.0)) and sparse.norm(1) == 3.0
    assert sparse.toArray().tolist() == [2.0, 0.0, -1.0] and sparse[2] == -1.0
    assert Vectors.parse(str(dense)) == dense and Vectors.parse(str(sparse)) == sparse
    assert Vectors.dense([2.0, 0.0, -1.0]) == sparse
    assert hash(Vectors.dense([2.0, 0.0, -1.0])) == hash(sparse)
    assert pickle.loads(pickle.dumps(sparse)) == sparse
    assert repr(sparse) == "SparseVector(3, {0: 2.0, 2: -1.0})" and str(dense) == "[1.0,0.0,3.0]"
    with pytest.raises(ValueError, match="dimension mismatch"):
        dense.dot([1.0, 2.0])
    with pytest.raises(TypeError, match="Cannot convert type"):
        _convert_to_vector("1 2 3")


# ---- KMeans -----------------------------------------------------------------------------

def test_kmeans_parallel_init_recovers_blob_centers_and_cost_matches_numpy(
        blob_rdd: RDD, blob_points: np.ndarray) -> None:
    model = KMeans.train(blob_rdd, 5, maxIterations=20, seed=3)
    assert model.k == 5 and all(isinstance(c, np.ndarray) for c in model.clusterCenters)
    assert_recovers(model.clusterCenters, BLOB_CENTERS, CENTER_TOLERANCE)
    want = numpy_cost(blob_points, model.clusterCenters)
    assert model.computeCost(blob_rdd) == pytest.approx(want, rel=1e-9)
    assert model.trainingCost == pytest.approx(want, rel=1e-6)

    predicted = model.predict(blob_rdd).collect()
    nearest = ((blob_points[:, None, :] - np.array(model.clusterCenters)) ** 2).sum(2).argmin(1)
    assert predicted == nearest.tolist()
    assert model.predict(blob_points[7]) == nearest[7]
    assert model.predict(DenseVector(blob_points[7])) == nearest[7]


def test_kmeans_random_init(sc: SparkContext, blob_rdd: RDD, blob_points: np.ndarray) -> None:
    # Two blobs: k=2 random starting points always end in the two blobs' means.
    two = sc.parallelize(list(blobs(BLOB_CENTERS[:2], 3000, seed=5)), 3)
    model = KMeans.train(two, 2, maxIterations=20, initializationMode="random", seed=9)
    assert_recovers(model.clusterCenters, BLOB_CENTERS[:2], CENTER_TOLERANCE)
    # With five blobs two starting points can share a blob (a local minimum Lloyd's
    # algorithm keeps), but training ends where each center is the mean of its points.
    model = KMeans.train(blob_rdd, 5, maxIterations=200, initializationMode="random", seed=2,
                         epsilon=1e-6)
    centers = np.array(model.clusterCenters)
    labels = ((blob_points[:, None, :] - centers) ** 2).sum(2).argmin(1)
    for j in range(5):
        assert np.allclose(blob_points[labels == j].mean(axis=0), centers[j], atol=1e-4)


def test_kmeans_fixed_seed_gives_the_same_model(blob_rdd: RDD) -> None:
    for mode in ("k-means||", "random"):
        first = KMeans.train(blob_rdd, 5, maxIterations=5, initializationMode=mode, seed=42)
        second = KMeans.train(blob_rdd, 5, maxIterations=5, initializationMode=mode, seed=42)
        assert np.array_equal(np.array(first.clusterCenters), np.array(second.clusterCenters))


def test_kmeans_arguments_as_pyspark_takes_them(sc: SparkContext, blob_rdd: RDD) -> None:
    data = sc.parallelize([[0.0, 0.0], [1.0, 1.0], [9.0, 8.0], [8.0, 9.0]], 2)
    with pytest.warns(UserWarning, match="runs"):           # PySpark 2's order and slide
        model = KMeans.train(data, 2, 10, 30, "random", 50)
    assert model.predict([0.0, 0.0]) == model.predict([1.0, 1.0])
    assert model.computeCost(data) == 2.0
    with pytest.warns(UserWarning, match="runs"):
        KMeans.train(data, 2, maxIterations=10, runs=30, initializationMode="random")
    model = KMeans.train(data, 2, 10, "k-means||", 50, 5, 1e-4)   # PySpark 3's order
    assert sorted(c.tolist() for c in model.clusterCenters) == [[0.5, 0.5], [8.5, 8.5]]

    initial = KMeansModel([(-1000.0, -1000.0), (5.0, 5.0), (1000.0, 1000.0)])
    model = KMeans.train(data, 3, maxIterations=0, initialModel=initial)
    assert [c.tolist() for c in model.clusterCenters] == [[-1000, -1000], [5, 5], [1000, 1000]]
    model = KMeans.train(data, 3, maxIterations=10, initialModel=initial)
    assert [c.tolist() for c in model.clusterCenters] == [[-1000, -1000], [4.5, 4.5],
                                                          [1000, 1000]]   # empty ones stay
    with pytest.raises(ValueError, match="mismatched cluster count"):
        KMeans.train(data, 2, initialModel=initial)
    with pytest.raises(ValueError, match="Invalid initialization mode"):
        KMeans.train(data, 2, initializationMode="kmeans++")


def test_kmeans_on_sparse_vectors_and_cosine_distance(sc: SparkContext) -> None:
    sparse = [Vectors.sparse(3, {1: 1.0}), Vectors.sparse(3, {1: 1.1}),
              Vectors.sparse(3, {2: 1.0}), Vectors.sparse(3, {2: 1.1})]
    model = KMeans.train(sc.parallelize(sparse, 2), 2, seed=50, initializationSteps=5)
    assert model.predict(np.array([0.0, 1.0, 0.0])) != model.predict(np.array([0.0, 0.0, 1.0]))
    assert model.predict(sparse[0]) == model.predict(sparse[1])

    rays = [[1.0, 0.1], [10.0, 0.5], [0.2, 3.0], [0.1, 20.0]]   # two directions, any length
    model = KMeans.train(sc.parallelize(rays, 2), 2, seed=1, distanceMeasure="cosine")
    assert model.predict(sc.parallelize(rays, 2)).collect() in ([0, 0, 1, 1], [1, 1, 0, 0])
    assert all(np.linalg.norm(c) == pytest.approx(1.0) for c in model.clusterCenters)


def test_models_save_and_load_round_trip(sc: SparkContext, blob_rdd: RDD,
                                         tmp_path: Path) -> None:
    model = KMeans.train(blob_rdd, 5, maxIterations=3, seed=1)
    model.save(sc, str(tmp_path / "kmeans"))
    same = KMeansModel.load(sc, str(tmp_path / "kmeans"))
    assert np.array_equal(np.array(same.clusterCenters), np.array(model.clusterCenters))
    assert same.trainingCost == model.trainingCost and same.k == 5

    logistic = LogisticRegressionModel([1.5, -2.0], 0.25, 2, 2)
    logistic.setThreshold(0.7)
    logistic.save(sc, str(tmp_path / "logistic"))
    loaded = LogisticRegressionModel.load(sc, str(tmp_path / "logistic"))
    assert loaded.weights == logistic.weights and loaded.intercept == 0.25
    assert loaded.threshold == 0.7 and loaded.numFeatures == 2 and loaded.numClasses == 2

    LinearRegressionModel([3.0], 1.0).save(sc, str(tmp_path / "linear"))
    assert LinearRegressionModel.load(sc, str(tmp_path / "linear")).predict([2.0]) == 7.0
    with pytest.raises(ValueError, match="did not recognize model"):
        KMeansModel.load(sc, str(tmp_path / "linear"))


# ---- linear models ----------------------------------------------------------------------

def separable(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels by the side of a hyperplane; points within 0.2 of it are left out."""
    rng = np.random.default_rng(seed)
    w, b = np.array([1.0, -2.0, 0.5, 0.0, 1.5]), 0.3
    X = rng.uniform(-1.0, 1.0, size=(3 * count, 5))
    margin = X @ w + b
    keep = np.abs(margin) > 0.2
    X, margin = X[keep][:count], margin[keep][:count]
    return X, (margin > 0).astype(float)


def test_logistic_regression_on_separable_data_is_accurate(sc: SparkContext) -> None:
    X, y = separable(4000, seed=1)
    X_test, y_test = separable(1000, seed=2)
    train = sc.parallelize([LabeledPoint(label, x) for x, label in zip(X, y)], 4)
    model = LogisticRegressionWithSGD.train(train, iterations=100, step=10.0,
                                            miniBatchFraction=0.5, regParam=0.001,
                                            intercept=True)
    predicted = np.array(model.predict(sc.parallelize(list(X_test), 2)).collect())
    accuracy = (predicted == y_test).mean()
    assert accuracy >= ACCURACY_THRESHOLD, f"accuracy {accuracy} on held-out data"
    assert [model.predict(x) for x in X_test[:50]] == predicted[:50].tolist()
    model.clearThreshold()
    assert 0.0 < model.predict(X_test[0]) < 1.0

    l1 = LogisticRegressionWithSGD.train(train, iterations=50, step=10.0, regType="l1",
                                         regParam=0.01)
    svm = SVMWithSGD.train(train, iterations=50, step=1.0, regParam=0.001)
    for other in (l1, svm):
        assert (np.array(other.predict(sc.parallelize(list(X_test), 2)).collect())
                == y_test).mean() >= 0.9
    with pytest.raises(ValueError, match="labels should be 0 or 1"):
        LogisticRegressionWithSGD.train(sc.parallelize([LabeledPoint(2.0, [1.0])]))
    with pytest.raises(TypeError, match="RDD of LabeledPoint"):
        LogisticRegressionWithSGD.train(sc.parallelize([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="regType"):
        LogisticRegressionWithSGD.train(train, regType="l3")


def test_linear_regression_recovers_the_weights(sc: SparkContext) -> None:
    rng = np.random.default_rng(4)
    X = rng.uniform(-1.0, 1.0, size=(3000, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 0.7
    data = sc.parallelize([LabeledPoint(label, x) for x, label in zip(X, y)], 3)
    model = LinearRegressionWithSGD.train(data, iterations=300, step=1.0, intercept=True,
                                          convergenceTol=1e-6)
    assert np.allclose(model.weights.toArray(), [2.0, -1.0, 0.5], atol=0.05), model
    assert model.intercept == pytest.approx(0.7, abs=0.05)
    assert model.predict(sc.parallelize([[0.0, 0.0, 0.0]])).collect() == [model.intercept]


# ---- statistics --------------------------------------------------------------------------

def test_col_stats_and_correlations_equal_numpy(sc: SparkContext) -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(loc=[1.0, -5.0, 100.0, 0.0], scale=[1.0, 2.0, 0.1, 3.0], size=(5000, 4))
    X[rng.random(X.shape) < 0.2] = 0.0
    records = [x.tolist() if i % 4 == 0 else tuple(x) if i % 4 == 1 else
               Vectors.sparse(4, {j: v for j, v in enumerate(x) if v}) if i % 4 == 2 else x
               for i, x in enumerate(X)]
    summary = Statistics.colStats(sc.parallelize(records, 5))
    assert summary.count() == 5000
    assert np.allclose(summary.mean(), X.mean(axis=0), rtol=1e-12)
    assert np.allclose(summary.variance(), X.var(axis=0, ddof=1), rtol=1e-10)
    assert summary.numNonzeros().tolist() == np.count_nonzero(X, axis=0).tolist()
    assert summary.max().tolist() == X.max(axis=0).tolist()
    assert summary.min().tolist() == X.min(axis=0).tolist()
    assert np.allclose(summary.normL1(), np.abs(X).sum(axis=0), rtol=1e-12)
    assert np.allclose(summary.normL2(), np.linalg.norm(X, axis=0), rtol=1e-12)
    assert np.allclose(Statistics.corr(sc.parallelize(list(X), 3)), np.corrcoef(X.T),
                       atol=1e-12)
    x, y = sc.parallelize([1.0, 0.0, -2.0, 4.0], 2), sc.parallelize([4.0, 5.0, 3.0, 9.0], 2)
    assert Statistics.corr(x, y) == pytest.approx(np.corrcoef([1, 0, -2, 4], [4, 5, 3, 9])[0, 1])
    assert Statistics.corr(x, y, method="spearman") == pytest.approx(0.8)


# ---- on the cluster, not on the driver ----------------------------------------------------

def test_training_aggregates_on_the_cluster_and_collects_no_data(
        sc: SparkContext, gateway: Gateway, blob_rdd: RDD, monkeypatch) -> None:
    def refuse(self: RDD, *args: object) -> None:
        raise AssertionError(f"the training data (RDD {self.id}) was brought to the driver")
    data_bytes = len(pickle.dumps(blob_rdd.collect(), 5))
    for name in ("collect", "toLocalIterator", "take"):
        original = getattr(RDD, name)
        monkeypatch.setattr(RDD, name, lambda self, *a, _o=original: refuse(self, *a)
                            if self.id == blob_rdd.id else _o(self, *a))
    app = sc.applicationId
    before = max((j["jobId"] for j in gateway.api(f"/applications/{app}/jobs")), default=-1)
    KMeans.train(blob_rdd, 5, maxIterations=6, epsilon=0.0, seed=2)            # k-means||
    KMeans.train(blob_rdd, 5, maxIterations=6, initializationMode="random", seed=2)
    labeled = blob_rdd.map(lambda p: LabeledPoint(float(p[0] > 6.0), p)).cache()
    LogisticRegressionWithSGD.train(labeled, iterations=5)
    monkeypatch.undo()

    jobs = [j for j in gateway.api(f"/applications/{app}/jobs") if j["jobId"] > before]
    descriptions = [j["description"] for j in jobs]
    # k-means|| converges in a few iterations; random starts (seed 2) use all 6.
    assert sum(d.startswith("treeAggregate: KMeans iteration") for d in descriptions) > 6
    assert sum(d.startswith("treeAggregate: SGD iteration") for d in descriptions) == 5
    kinds = ("treeAggregate: ", "takeSample: KMeans", "collect: KMeans|| initialization",
             "first: check the data")
    assert all(d.startswith(kinds) for d in descriptions), descriptions
    for job in jobs:
        detail = gateway.api(f"/applications/{app}/jobs/{job['jobId']}")
        sent = sum(r["size"] for r in detail.get("results", []))
        assert sent < data_bytes / 100, \
            f"job {job['description']!r} sent {sent} bytes to the driver ({data_bytes} of data)"


# ---- the examples ---------------------------------------------------------------------------

def run_example(*args: str) -> str:
    done = subprocess.run([str(BIN_DIR / "ember-submit"), "--master", "local[2]",
                           *map(str, args)], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def number_after(label: str, output: str) -> float:
    match = re.search(re.escape(label) + r"\s*([0-9.eE+-]+)", output)
    assert match, f"no {label!r} in:\n{output}"
    return float(match.group(1))


def test_kmeans_example_runs_through_the_pyspark_alias() -> None:
    out = run_example(REPO / "examples" / "kmeans_mllib.py")
    assert out.count("\ncenter ") == 5
    assert "loaded model predicts the same: True" in out
    assert number_after("closest center found:", out) < CENTER_TOLERANCE


def test_sklearn_example_merged_model_scores_like_one_trained_in_one_process() -> None:
    out = run_example(REPO / "examples" / "sklearn_sgd.py")
    merged = number_after("merged model accuracy on held-out data:", out)
    single = number_after("single-process model accuracy on held-out data:", out)
    assert merged >= 0.9, out
    assert merged >= single - 0.03, out
