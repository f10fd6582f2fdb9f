"""Runtime: Java and jar checks, the jar cache, SparkSession from a profile, the pipeline
lock, Spark error translation. Below steps; the executor that runs steps is in pipeline/.

Only modules under here (and io/, steps/) import pyspark, and only inside functions or
behind TYPE_CHECKING, so the CLI's config commands never start a JVM.
"""
