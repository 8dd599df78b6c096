{{config materialized="table"}}
-- One row per order, with what was paid by each payment method.
-- amounts are decimal(16,2) (see macros/cents_to_dollars.hbs), so sums are exact.
with order_payments as (
    select
        order_id,
        sum(case when payment_method = 'credit_card' then amount else 0 end) as credit_card_amount,
        sum(case when payment_method = 'bank_transfer' then amount else 0 end) as bank_transfer_amount,
        sum(case when payment_method = 'gift_card' then amount else 0 end) as gift_card_amount,
        sum(case when payment_method = 'paypal' then amount else 0 end) as paypal_amount,
        sum(amount) as amount
    from {{ref "stg_payments"}}
    group by order_id
)

select
    o.order_id,
    o.customer_id,
    o.order_date,
    o.status,
    -- an order without payments yet still gets a row, with zero amounts
    coalesce(p.credit_card_amount, 0) as credit_card_amount,
    coalesce(p.bank_transfer_amount, 0) as bank_transfer_amount,
    coalesce(p.gift_card_amount, 0) as gift_card_amount,
    coalesce(p.paypal_amount, 0) as paypal_amount,
    coalesce(p.amount, 0) as amount
from {{ref "stg_orders"}} as o
left join order_payments as p on p.order_id = o.order_id
