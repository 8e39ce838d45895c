"""The `pyspark` alias: under ember-submit, PySpark scripts import Ember.

This folder is on sys.path only when ember-submit (or ember-shell) runs a
script, so a real PySpark installation is never shadowed elsewhere.
"""

from ember import (RDD, InheritableThread, SparkConf, SparkContext, StatCounter,  # noqa: F401
                   StorageLevel, TaskContext)
from ember.accumulators import Accumulator, AccumulatorParam  # noqa: F401
from ember.broadcast import Broadcast  # noqa: F401
from ember.errors import EmberError  # noqa: F401
from ember.pyfiles import SparkFiles  # noqa: F401

__version__ = "3.5.0"
__all__ = ["SparkContext", "SparkConf", "RDD", "TaskContext", "SparkFiles", "StorageLevel",
           "StatCounter", "InheritableThread", "Broadcast", "Accumulator", "AccumulatorParam"]
