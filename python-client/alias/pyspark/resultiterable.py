"""`pyspark.resultiterable` under ember-submit."""

from ember.resultiterable import ResultIterable  # noqa: F401
