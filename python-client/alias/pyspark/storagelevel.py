"""`pyspark.storagelevel` under ember-submit."""

from ember.storagelevel import StorageLevel  # noqa: F401
