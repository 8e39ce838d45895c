"""`pyspark.taskcontext` under ember-submit."""

from ember.taskcontext import TaskContext  # noqa: F401
