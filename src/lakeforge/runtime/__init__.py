"""Runtime: Java and jar checks, SparkSession from a profile, and the run executor.

Only modules under here (and io/, steps/) import pyspark, and only inside functions or
behind TYPE_CHECKING, so the CLI's config commands never start a JVM.
"""
