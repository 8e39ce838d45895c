"""`pyspark.mllib.clustering` under ember-submit: the module ember.mllib.clustering itself, so a
function that uses the module (``import pyspark.mllib.clustering as m``) pickles it by a
name the workers can import."""

import sys

from ember.mllib import clustering

sys.modules[__name__] = clustering
