-- One row per customer, cleaned up from the raw seed.
select
    customer_id,
    first_name,
    last_name,
    -- emails arrive in mixed case; lowercase them so they compare and join
    lower(email) as email,
    country,
    cast(signup_date as date) as signup_date
from {{ref "raw_customers"}}
