"""`pyspark.mllib.classification` under ember-submit: the module ember.mllib.classification itself, so a
function that uses the module (``import pyspark.mllib.classification as m``) pickles it by a
name the workers can import."""

import sys

from ember.mllib import classification

sys.modules[__name__] = classification
