"""K-means with MLlib, as in Spark's clustering guide: parse points, KMeans.train,
the within-set sum of squared errors, save and load the model.

    build/bin/ember-submit --master local[2] examples/kmeans_mllib.py [POINTS K] [--random]

POINTS is a text file of space-separated coordinates, one point per line
(examples/gen_data.py points FILE writes one). Without it, 200000 points around
K=5 well-separated centers in 10 dimensions are generated on the cluster, and
the script prints how far the centers it found are from the true ones. With
--random, two of the k sampled starting points often fall in one blob, a local
minimum Lloyd's iterations keep: why k-means|| is the default.
"""

import sys
import tempfile
import time
from math import sqrt

import numpy as np

from pyspark import SparkContext
from pyspark.mllib.clustering import KMeans, KMeansModel

GENERATED_K, DIMS, POINTS, SPREAD = 5, 10, 200000, 1.0


def true_centers():
    return np.random.default_rng(2024).uniform(-20, 20, size=(GENERATED_K, DIMS))


def blob_points(part, count):
    """The points of one partition: around the true centers, Gaussian noise."""
    rng = np.random.default_rng([2024, part])
    centers = true_centers()
    labels = rng.integers(GENERATED_K, size=count)
    return list(centers[labels] + rng.normal(scale=SPREAD, size=(count, DIMS)))


def parse_vector(line):
    return np.array([float(x) for x in line.split()])


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    mode = "random" if "--random" in argv else "k-means||"
    sc = SparkContext(appName="kmeans-mllib")
    parts = max(sc.defaultParallelism, 4)
    if args:
        k = int(args[1]) if len(args) > 1 else 2
        data = sc.textFile(args[0], minPartitions=parts).map(parse_vector)
    else:
        k = GENERATED_K
        data = sc.parallelize(range(parts), parts).flatMap(
            lambda p: blob_points(p, POINTS // parts))
    data.cache()

    started = time.time()
    clusters = KMeans.train(data, k, maxIterations=10, initializationMode=mode, seed=42)
    print(f"trained in {time.time() - started:.2f} s ({mode} initialization)")
    for center in sorted(clusters.clusterCenters, key=tuple):
        print("center", " ".join(f"{x:.3f}" for x in center))

    def error(point):
        center = clusters.centers[clusters.predict(point)]
        return sqrt(sum([x ** 2 for x in (point - center)]))
    print("Within Set Sum of Error = " + str(data.map(error).reduce(lambda x, y: x + y)))
    print("Within Set Sum of Squared Error = " + str(clusters.computeCost(data)))

    path = tempfile.mkdtemp(prefix="kmeans-model-")
    clusters.save(sc, path)
    same = KMeansModel.load(sc, path)
    print("loaded model predicts the same:",
          same.predict(clusters.centers[0]) == clusters.predict(clusters.centers[0]))
    if not args:
        found = np.array(clusters.clusterCenters)
        worst = max(min(np.linalg.norm(found - c, axis=1)) for c in true_centers())
        print(f"largest distance from a true center to the closest center found: {worst:.4f}")
    sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
