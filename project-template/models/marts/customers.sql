-- One row per customer, with their order history summarised.
with customer_orders as (
    select
        customer_id,
        min(order_date) as first_order,
        max(order_date) as most_recent_order,
        count(*) as number_of_orders
    from {{ref "stg_orders"}}
    group by customer_id
),

-- payments reach customers through stg_orders, so orders before start_date
-- are left out here exactly as they are in the orders mart
customer_payments as (
    select
        o.customer_id,
        sum(p.amount) as lifetime_value
    from {{ref "stg_payments"}} as p
    join {{ref "stg_orders"}} as o on o.order_id = p.order_id
    group by o.customer_id
)

select
    c.customer_id,
    c.first_name,
    c.last_name,
    c.email,
    c.country,
    c.signup_date,
    co.first_order,
    co.most_recent_order,
    -- customers who never ordered are kept, with zero orders and value
    coalesce(co.number_of_orders, 0) as number_of_orders,
    coalesce(cp.lifetime_value, 0) as lifetime_value
from {{ref "stg_customers"}} as c
left join customer_orders as co on co.customer_id = c.customer_id
left join customer_payments as cp on cp.customer_id = c.customer_id
