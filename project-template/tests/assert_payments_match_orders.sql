-- Singular test: returns the rows that are wrong. Every dollar paid must land
-- in exactly one order of the orders mart, so the two totals must agree.
select paid.total as paid_total, booked.total as booked_total
from (select coalesce(sum(amount), 0) as total from {{ref "stg_payments"}} as p
      where p.order_id in (select order_id from {{ref "stg_orders"}})) as paid
cross join (select coalesce(sum(amount), 0) as total from {{ref "orders"}}) as booked
where paid.total <> booked.total
