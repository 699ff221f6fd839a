-- floor_aggregates: the per-customer aggregates both floors compute, as of snapshot date $as_of.
-- Grain: one row per customer seen in any source (customer_id), written to the temp table floor_features.
--
-- Preceded by the four source relations (floor_sources_landing.sql or floor_sources_warehouse.sql):
-- orders_src(customer_id, order_id, status, amount, order_date), browsing_src(customer_id, session_id,
-- event_type, duration_s, event_date), feedback_src(customer_id, kind, rating, submitted_date) and
-- customers_src(customer_id, region, source_channel, signup_date). The columns follow the heavy part of
-- features/sql/customer_features.sql (purchase RFM inputs and windows, behaviour windows, feedback), with
-- none of the contract checks, quarantine, lineage or scoring: the least work any pipeline must do.
-- $start_30, $start_90 and $start_365 are the exclusive lower bounds of the windows ($as_of - N days).
orders_to_date as (
    select customer_id, order_id, status, amount, order_date
    from orders_src
    where customer_id is not null and customer_id <> '' and order_date <= $as_of
),

purchases as (
    select
        customer_id,
        count(distinct case when status = 'completed' then order_id end) as frequency,
        coalesce(sum(case when status = 'completed' then amount end), 0)
            - coalesce(sum(case when status = 'refunded' then amount end), 0) as monetary,
        min(case when status = 'completed' then order_date end) as first_purchase_date,
        max(case when status = 'completed' then order_date end) as last_purchase_date,
        count(distinct case when status = 'completed' and order_date > $start_30 then order_id end) as orders_30d,
        count(distinct case when status = 'completed' and order_date > $start_90 then order_id end) as orders_90d,
        count(distinct case when status = 'completed' and order_date > $start_365 then order_id end) as orders_365d
    from orders_to_date
    group by customer_id
),

behaviour as (
    select
        customer_id,
        count(distinct session_id) as sessions,
        count(distinct case when event_date > $start_30 then session_id end) as sessions_30d,
        count(distinct case when event_date > $start_90 then session_id end) as sessions_90d,
        count(case when event_type = 'page_view' and event_date > $start_90 then 1 end) as page_views_90d,
        count(case when event_type = 'product_view' and event_date > $start_90 then 1 end) as product_views_90d,
        count(case when event_type = 'search' and event_date > $start_90 then 1 end) as searches_90d,
        count(case when event_type = 'add_to_cart' and event_date > $start_90 then 1 end) as add_to_carts_90d,
        sum(case when event_date > $start_90 then duration_s end) as seconds_online_90d,
        max(event_date) as last_visit_date
    from browsing_src
    where customer_id is not null and customer_id <> '' and event_date <= $as_of
    group by customer_id
),

opinions as (
    select
        customer_id,
        count(*) as feedback_count,
        avg(rating) as avg_rating,
        count(case when kind = 'complaint' and submitted_date > $start_90 then 1 end) as complaints_90d,
        max(submitted_date) as last_feedback_date
    from feedback_src
    where customer_id is not null and customer_id <> '' and submitted_date <= $as_of
    group by customer_id
),

records as (
    select customer_id, min(region) as region, min(source_channel) as source_channel, min(signup_date) as signup_date
    from customers_src
    where customer_id is not null and (signup_date is null or signup_date <= $as_of)
    group by customer_id
)

select
    customer_id,
    p.frequency,
    p.monetary,
    p.first_purchase_date,
    p.last_purchase_date,
    date_diff('day', p.last_purchase_date, cast($as_of as date)) as recency_days,
    p.orders_30d,
    p.orders_90d,
    p.orders_365d,
    b.sessions,
    b.sessions_30d,
    b.sessions_90d,
    b.page_views_90d,
    b.product_views_90d,
    b.searches_90d,
    b.add_to_carts_90d,
    b.seconds_online_90d,
    b.last_visit_date,
    f.feedback_count,
    f.avg_rating,
    f.complaints_90d,
    f.last_feedback_date,
    r.region,
    r.source_channel,
    r.signup_date
from purchases as p
full join behaviour as b using (customer_id)
full join opinions as f using (customer_id)
full join records as r using (customer_id)
