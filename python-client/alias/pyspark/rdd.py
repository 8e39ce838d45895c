"""`pyspark.rdd` under ember-submit."""

from ember.rdd import RDD, BoundedFloat, Partitioner, PipelinedRDD, portable_hash  # noqa: F401
