-- Completed-order revenue per customer segment and country, by current customer attributes.
SELECT c.segment,
       c.country,
       COUNT(*)                               AS orders,
       CAST(SUM(o.amount) AS DECIMAL(14,2))   AS revenue
FROM silver.orders o
JOIN silver.customers c ON o.customer_id = c.customer_id AND c.is_current
WHERE o.status = 'completed'
GROUP BY c.segment, c.country
