"""`pyspark.statcounter` under ember-submit."""

from ember.statcounter import StatCounter  # noqa: F401
