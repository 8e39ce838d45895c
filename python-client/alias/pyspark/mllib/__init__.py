"""`pyspark.mllib` under ember-submit: Ember's MLlib (``ember.mllib``).

Each submodule here stands for the ember.mllib module of the same name.
"""

from ember.mllib import __all__  # noqa: F401
