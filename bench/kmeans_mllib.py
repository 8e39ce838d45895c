"""KMeans k=10, 10 iterations, 1M points x 10 dims: Ember (local[2], ember.mllib) against
scikit-learn on one core, from the same starting centers; prints per-iteration times and the
ratio.

    /usr/bin/python3 bench/kmeans_mllib.py      (PARTS=2 to change the partition count)
"""
import logging, os, re, sys, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python-client"))
from ember import SparkContext
from ember.mllib.clustering import KMeans, KMeansModel

N, D, K, ITER = 1_000_000, 10, 10, 10
PARTS = int(os.environ.get("PARTS", "4"))
CENTERS = np.random.default_rng(0).uniform(-10, 10, size=(K, D))

def part(i):
    rng = np.random.default_rng([7, i])
    n = N // PARTS
    labels = rng.integers(K, size=n)
    return CENTERS[labels] + rng.normal(scale=2.0, size=(n, D))

class Times(logging.Handler):
    def __init__(self): super().__init__(); self.times = []
    def emit(self, record):
        m = re.match(r"KMeans iteration (\d+): ([0-9.]+) s", record.getMessage())
        if m: self.times.append(float(m.group(2)))

def main():
    init = np.random.default_rng(3).uniform(-10, 10, size=(K, D))
    handler = Times(); log = logging.getLogger("ember.mllib.clustering"); log.addHandler(handler); log.setLevel(logging.INFO)
    with SparkContext("local[2]", "bench-kmeans") as sc:
        points = sc.parallelize(range(PARTS), PARTS).flatMap(lambda i: list(part(i))).cache()
        t = time.perf_counter(); print("points", points.count(), f"{time.perf_counter()-t:.2f} s to generate and cache")
        t = time.perf_counter()
        model = KMeans.train(points, K, maxIterations=ITER, initialModel=KMeansModel(list(init)), epsilon=0.0)
        total = time.perf_counter() - t
    ember_iters = handler.times
    print("ember per-iteration s:", " ".join(f"{x:.3f}" for x in ember_iters))
    print(f"ember train total {total:.2f} s (incl. building+caching blocks), iterations mean {np.mean(ember_iters):.3f} s, median {np.median(ember_iters):.3f}")
    from threadpoolctl import threadpool_limits
    from sklearn.cluster import KMeans as SK
    X = np.vstack([part(i) for i in range(PARTS)])
    with threadpool_limits(1):
        sk = SK(n_clusters=K, init=init, n_init=1, max_iter=ITER, tol=0.0, algorithm="lloyd")
        t = time.perf_counter(); sk.fit(X); sk_total = time.perf_counter() - t
    print(f"sklearn 1 core: {sk_total:.3f} s for {sk.n_iter_} iterations = {sk_total/sk.n_iter_:.3f} s/iteration")
    print(f"ratio ember/sklearn per iteration (mean): {np.mean(ember_iters)/(sk_total/sk.n_iter_):.2f}")
    ours = np.array(sorted(map(tuple, model.clusterCenters))); theirs = np.array(sorted(map(tuple, sk.cluster_centers_)))
    print("max |center difference|:", np.abs(ours - theirs).max(), "costs", model.trainingCost, sk.inertia_)

main()
