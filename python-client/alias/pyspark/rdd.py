"""`pyspark.rdd` under ember-submit."""

from ember.rdd import RDD  # noqa: F401
