"""`pyspark.shuffle` under ember-submit."""

from ember.shuffle import (Aggregator, ExternalGroupBy, ExternalList, ExternalMerger,  # noqa: F401
                           ExternalSorter, SimpleAggregator)
