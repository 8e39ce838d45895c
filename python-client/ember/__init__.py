"""Ember: a cluster computing engine that runs PySpark RDD programs.

>>> from ember import SparkContext
>>> sc = SparkContext("local[2]", "wordcount")  # doctest: +SKIP
"""

from ember.conf import SparkConf
from ember.context import InheritableThread, SparkContext
from ember.errors import (ClusterStartError, EmberError, GatewayError, JobCancelledError,
                          JobFailedError)
from ember.rdd import RDD
from ember.resultiterable import ResultIterable
from ember.statcounter import StatCounter
from ember.storagelevel import StorageLevel
from ember.taskcontext import TaskContext

__all__ = ["SparkConf", "SparkContext", "RDD", "TaskContext", "StorageLevel", "StatCounter",
           "ResultIterable", "InheritableThread", "EmberError", "GatewayError",
           "JobFailedError", "JobCancelledError", "ClusterStartError"]
__version__ = "0.1.0"
