"""scikit-learn on Ember: a linear classifier trained partition by partition.

Each partition trains its own SGDClassifier with partial_fit (a few passes over
its rows) in mapPartitions; reduce merges the models by averaging coef_ and
intercept_, weighted by rows; the merged model is scored on held-out data on the
cluster, next to the same classifier trained on all the training data in this
one process.

    build/bin/ember-submit --master local[2] examples/sklearn_sgd.py \\
        [--samples 40000] [--features 20] [--partitions 4] [--epochs 5]

Needs Debian's python3-sklearn on the driver and the workers.
"""

import argparse
import sys
import time

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split

from pyspark import SparkContext

CLASSES = np.array([0, 1])
SEED = 7


def new_classifier(seed):
    return SGDClassifier(alpha=1e-3, random_state=seed)


def fit(model, X, y, epochs, seed):
    """partial_fit over the rows `epochs` times, shuffled each time."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        model.partial_fit(X[order], y[order], classes=CLASSES)
    return model


def train_partition(epochs, index, rows):
    rows = list(rows)
    if not rows:
        return
    X = np.array([x for x, _ in rows])
    y = np.array([label for _, label in rows])
    model = fit(new_classifier(SEED + index), X, y, epochs, SEED + index)
    yield model.coef_, model.intercept_, len(y)


def average(a, b):
    """Row-weighted average of two (coef_, intercept_, rows): associative, commutative."""
    coef_a, intercept_a, n_a = a
    coef_b, intercept_b, n_b = b
    n = n_a + n_b
    return (coef_a * n_a + coef_b * n_b) / n, (intercept_a * n_a + intercept_b * n_b) / n, n


def merged_classifier(coef, intercept):
    model = new_classifier(SEED)
    model.coef_, model.intercept_, model.classes_ = coef, intercept, CLASSES
    model.n_features_in_ = coef.shape[1]
    return model


def accuracy_on_cluster(model, test_rdd):
    def score(rows):
        rows = list(rows)
        if rows:
            X = np.array([x for x, _ in rows])
            y = np.array([label for _, label in rows])
            yield int((model.predict(X) == y).sum()), len(y)
    correct, total = test_rdd.mapPartitions(score).reduce(lambda a, b: (a[0] + b[0], a[1] + b[1]))
    return correct / total


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv[1:])

    X, y = make_classification(n_samples=args.samples, n_features=args.features,
                               n_informative=args.features // 2, n_redundant=args.features // 4,
                               class_sep=1.5, flip_y=0.01, random_state=SEED)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=SEED)

    sc = SparkContext(appName="sklearn-sgd")
    train = sc.parallelize(list(zip(X_train, y_train)), args.partitions).cache()
    test = sc.parallelize(list(zip(X_test, y_test)), args.partitions)

    started = time.time()
    coef, intercept, rows = (train.mapPartitionsWithIndex(
        lambda i, it: train_partition(args.epochs, i, it)).reduce(average))
    merged = merged_classifier(coef, intercept)
    print(f"trained {args.partitions} partition models on {rows} rows and merged them "
          f"in {time.time() - started:.2f} s")
    merged_accuracy = accuracy_on_cluster(merged, test)

    single = fit(new_classifier(SEED), X_train, y_train, args.epochs, SEED)
    single_accuracy = single.score(X_test, y_test)
    print(f"merged model accuracy on held-out data: {merged_accuracy:.4f}")
    print(f"single-process model accuracy on held-out data: {single_accuracy:.4f}")
    sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
