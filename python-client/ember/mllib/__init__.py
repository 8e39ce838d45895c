"""MLlib on Ember: PySpark's RDD-based machine learning API (``pyspark.mllib``).

Training runs on the cluster: the input is converted once into numpy blocks
(a few MiB of rows each) that stay cached in the workers' Python processes;
every pass computes per-partition sums with numpy there and combines them with
``treeAggregate``, so only model-sized values travel to the driver.

Modules: ``linalg`` (vectors), ``clustering`` (KMeans), ``regression``
(LabeledPoint, linear models trained with SGD), ``classification`` (logistic
regression and SVMs trained with SGD), ``stat`` (column statistics,
correlations) and ``util`` (LIBSVM files, save/load).

>>> from ember.mllib.clustering import KMeans  # doctest: +SKIP
>>> KMeans.train(sc.parallelize([[0.0], [1.0], [9.0], [10.0]]), 2, seed=1).k  # doctest: +SKIP
2
"""

import numpy  # noqa: F401  (MLlib needs numpy, as PySpark's does)

__all__ = ["classification", "clustering", "linalg", "regression", "stat", "util"]
