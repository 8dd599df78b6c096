-- One row per payment; amounts are stored in cents upstream.
select
    payment_id,
    order_id,
    payment_method,
    amount_cents,
    {{> cents_to_dollars column="amount_cents"}} as amount
from {{ref "raw_payments"}}
