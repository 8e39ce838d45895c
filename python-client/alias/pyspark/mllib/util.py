"""`pyspark.mllib.util` under ember-submit: the module ember.mllib.util itself, so a
function that uses the module (``import pyspark.mllib.util as m``) pickles it by a
name the workers can import."""

import sys

from ember.mllib import util

sys.modules[__name__] = util
