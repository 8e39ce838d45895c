"""`pyspark.accumulators` under ember-submit."""

from ember.accumulators import Accumulator, AccumulatorParam  # noqa: F401
