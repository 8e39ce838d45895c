"""`pyspark.broadcast` under ember-submit."""

from ember.broadcast import Broadcast  # noqa: F401
