MERGE INTO bronze.c04_orders t
USING bronze.c04_orders s ON t.order_id = s.order_id
WHEN MATCHED THEN DELETE
