"""`pyspark.rddsampler` under ember-submit."""

from ember.rddsampler import (RDDRangeSampler, RDDSampler, RDDSamplerBase,  # noqa: F401
                              RDDStratifiedSampler)
