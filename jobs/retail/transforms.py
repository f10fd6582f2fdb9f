"""Python transforms of the retail example (``python: transforms:customer_value``).

lakeforge imports this module from the pipeline's folder and calls the function with the
session and the declared inputs, each read at the version pinned for this run.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def customer_value(spark: SparkSession, inputs: dict[str, DataFrame]) -> DataFrame:
    """Orders, completed spend and last order time per current customer."""
    orders = inputs["silver.orders"]
    customers = inputs["silver.customers"].where(F.col("is_current"))
    per_customer = orders.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("orders"),
        F.sum(F.when(F.col("status") == "completed", F.col("amount")))
        .cast("decimal(14,2)")
        .alias("spend"),
        F.max("order_ts").alias("last_order_ts"),
    )
    return (
        customers.select("customer_id", "name", "segment", "country")
        .join(per_customer, "customer_id", "left")
        .fillna({"orders": 0})
    )
