-- floor_sources_warehouse: the four source relations of the nightly floor, over the loaded warehouse tables.
-- Grain: one row per loaded row. Business dates are the local dates ingestion stored next to each timestamp
-- (the contracts' local_date columns).
orders_src as (
    select customer_id, order_id, status, amount, order_date
    from orders
),

browsing_src as (
    select customer_id, session_id, event_type, duration_s, event_date
    from browsing
),

feedback_src as (
    select customer_id, kind, rating, submitted_date
    from feedback
),

customers_src as (
    select customer_id, region, source_channel, signup_date
    from customers
)
