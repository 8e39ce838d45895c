"""Ember: a cluster computing engine that runs PySpark RDD programs.

>>> from ember import SparkContext
>>> sc = SparkContext("local[2]", "wordcount")  # doctest: +SKIP
"""

from ember.conf import SparkConf
from ember.context import SparkContext
from ember.errors import ClusterStartError, EmberError, GatewayError, JobFailedError
from ember.rdd import RDD
from ember.taskcontext import TaskContext

__all__ = ["SparkConf", "SparkContext", "RDD", "TaskContext", "EmberError", "GatewayError",
           "JobFailedError", "ClusterStartError"]
__version__ = "0.1.0"
