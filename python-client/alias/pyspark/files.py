"""`pyspark.files` under ember-submit."""

from ember.pyfiles import SparkFiles  # noqa: F401
