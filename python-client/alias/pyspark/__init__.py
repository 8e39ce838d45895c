"""The `pyspark` alias: under ember-submit, PySpark scripts import Ember.

This folder is on sys.path only when ember-submit (or ember-shell) runs a
script, so a real PySpark installation is never shadowed elsewhere.
"""

from ember import RDD, SparkConf, SparkContext, TaskContext  # noqa: F401
from ember.errors import EmberError  # noqa: F401

__all__ = ["SparkContext", "SparkConf", "RDD", "TaskContext"]
