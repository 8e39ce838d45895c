"""`pyspark.mllib.stat` under ember-submit: the module ember.mllib.stat itself, so a
function that uses the module (``import pyspark.mllib.stat as m``) pickles it by a
name the workers can import."""

import sys

from ember.mllib import stat

sys.modules[__name__] = stat
