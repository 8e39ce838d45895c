"""`pyspark.mllib.regression` under ember-submit: the module ember.mllib.regression itself, so a
function that uses the module (``import pyspark.mllib.regression as m``) pickles it by a
name the workers can import."""

import sys

from ember.mllib import regression

sys.modules[__name__] = regression
