"""`pyspark.mllib.linalg` under ember-submit: the module ember.mllib.linalg itself, so a
function that uses the module (``import pyspark.mllib.linalg as m``) pickles it by a
name the workers can import."""

import sys

from ember.mllib import linalg

sys.modules[__name__] = linalg
