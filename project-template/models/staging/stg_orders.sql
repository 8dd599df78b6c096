-- One row per order placed on or after the start_date var.
select
    order_id,
    customer_id,
    cast(order_date as date) as order_date,
    status
from {{ref "raw_orders"}}
-- cast both sides so the comparison is a date comparison on every engine
where cast(order_date as date) >= cast('{{var "start_date"}}' as date)
