"""`pyspark.conf` under ember-submit."""

from ember.conf import SparkConf  # noqa: F401
