"""K-means (Lloyd's algorithm) over cached points, as in Spark's example.

    build/bin/ember-submit --master local[2] examples/kmeans.py POINTS K [ITERATIONS]

POINTS is a text file of space-separated coordinates, one point per line
(examples/gen_data.py points FILE writes one).
"""

import sys
import time

from pyspark import SparkContext


def parse(line):
    return tuple(float(x) for x in line.split())


def closest(point, centers):
    best, best_dist = 0, float("inf")
    for i, center in enumerate(centers):
        dist = sum((a - b) ** 2 for a, b in zip(point, center))
        if dist < best_dist:
            best, best_dist = i, dist
    return best


def add_points(a, b):
    return tuple(x + y for x, y in zip(a[0], b[0])), a[1] + b[1]


def main(argv):
    if len(argv) < 3:
        print("usage: kmeans.py POINTS K [ITERATIONS]", file=sys.stderr)
        return 2
    k = int(argv[2])
    iterations = int(argv[3]) if len(argv) > 3 else 10
    sc = SparkContext(appName="kmeans")
    points = sc.textFile(argv[1], minPartitions=max(sc.defaultParallelism, 4)).map(parse).cache()
    centers = points.takeSample(False, k, 42)
    for i in range(iterations):
        started = time.time()
        current = centers
        sums = (points.map(lambda p: (closest(p, current), (p, 1)))
                      .reduceByKey(add_points)
                      .collectAsMap())
        centers = [tuple(x / sums[j][1] for x in sums[j][0]) if j in sums else current[j]
                   for j in range(k)]
        shift = max(sum((a - b) ** 2 for a, b in zip(c0, c1)) ** 0.5
                    for c0, c1 in zip(current, centers))
        print(f"iteration {i + 1}: {time.time() - started:.2f} s, largest center shift {shift:.4f}",
              flush=True)
    for center in sorted(centers):
        print("center", " ".join(f"{x:.3f}" for x in center))
    sc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
