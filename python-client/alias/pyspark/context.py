"""`pyspark.context` under ember-submit."""

from ember.context import SparkContext  # noqa: F401
