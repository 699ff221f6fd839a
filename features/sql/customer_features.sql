-- customer_features: behavioural, purchase, feedback and preference features as of snapshot date $as_of.
-- Grain: one row per known customer (customer_id), ordered by customer_id.
--
-- A customer is known when a non-null customer_id appears in orders (any status), browsing or feedback
-- with a local date <= $as_of, or in customers with signup_date null or <= $as_of. Only events whose
-- local business date is <= $as_of count; nothing reads the wall clock.
--
-- Windows: "in the last N days" means date > $as_of - N days and date <= $as_of; every $start_*
-- parameter is that exclusive lower bound ($as_of - N days), computed by the caller. A purchase made
-- exactly N days before $as_of (recency N) is therefore outside the N-day window.
-- $lookback_start is null for "all history" (frequency, monetary and the spend preferences only).
-- Exception: the reactivation gap uses the lifecycle's "within N days" (recency <= N, boundary included):
-- $reactivation_start = $as_of - lifecycle.active_days is an INCLUSIVE lower bound.
--
-- Behaviour columns for the two configurable windows come out as *_w1 / *_w2 and the complaint count as
-- complaints_window; the caller names them (e.g. sessions_30d) by position. Portable SQL (PRODUCT.md
-- section 6): money stays DECIMAL(18,2), day arithmetic is date_diff('day', a, b) on DATEs, medians and
-- "top" picks use row_number() with explicit tie-breakers. Distinct orders and sessions are counted by
-- aggregating to order and session level first (two plain group-bys instead of count(distinct)).
with

orders_to_date as (
    select
        customer_id,
        order_id,
        order_date,
        amount,
        status,
        channel,
        store_id,
        category,
        (cast($lookback_start as date) is null or order_date > $lookback_start) as in_lookback
    from orders
    where customer_id is not null
      and order_date <= $as_of
),

browsing_to_date as (
    select
        customer_id,
        session_id,
        event_date,
        event_type,
        category,
        duration_s
    from browsing
    where customer_id is not null
      and event_date <= $as_of
),

feedback_to_date as (
    select
        customer_id,
        feedback_id,
        submitted_ts,
        submitted_date,
        kind,
        rating,
        nps
    from feedback
    where customer_id is not null
      and submitted_date <= $as_of
),

-- customers who had signed up by $as_of (or whose signup is unknown); one record per customer_id
customer_records as (
    select
        customer_id,
        signup_date,
        region,
        city,
        source_channel,
        birth_year,
        gender,
        row_number() over (
            partition by customer_id
            order by signup_ts asc nulls last, _file asc nulls last, _line asc nulls last
        ) as record_rank
    from customers
    where customer_id is not null
      and (signup_date is null or signup_date <= $as_of)
),

current_records as (
    select
        customer_id,
        signup_date,
        region,
        city,
        source_channel,
        birth_year,
        gender
    from customer_records
    where record_rank = 1
),

-- ---------------------------------------------------------------------------------------- purchases
-- one row per (customer, order); an order is in the last N days when one of its completed lines is
order_level as (
    select
        customer_id,
        order_id,
        min(order_date) as first_line_date,
        min(case when status = 'completed' then order_date end) as first_completed_date,
        max(case when status = 'completed' then order_date end) as last_completed_date,
        max(case when status = 'completed' and in_lookback then 1 else 0 end) as completed_in_lookback,
        max(case when status = 'cancelled' and in_lookback then 1 else 0 end) as cancelled_in_lookback,
        sum(case when status = 'completed' and in_lookback then amount end) as gross_sales,
        sum(case when status = 'refunded' and in_lookback then amount end) as refund_amount
    from orders_to_date
    group by customer_id, order_id
),

order_summary as (
    select
        customer_id,
        min(first_line_date) as first_order_date,
        sum(completed_in_lookback) as frequency,
        sum(gross_sales) as gross_sales,
        sum(refund_amount) as refund_amount,
        sum(cancelled_in_lookback) as cancelled_orders,
        min(first_completed_date) as first_purchase_date,
        max(last_completed_date) as last_purchase_date,
        count(case when last_completed_date > $start_30 then 1 end) as orders_30d,
        count(case when last_completed_date > $start_90 then 1 end) as orders_90d,
        count(case when last_completed_date > $start_365 then 1 end) as orders_365d
    from order_level
    group by customer_id
),

purchase_amounts as (
    select
        customer_id,
        cast(frequency as bigint) as frequency,
        cast(coalesce(gross_sales, 0) as decimal(18, 2)) as gross_sales,
        cast(coalesce(refund_amount, 0) as decimal(18, 2)) as refund_amount,
        cast(coalesce(gross_sales, 0) - coalesce(refund_amount, 0) as decimal(18, 2)) as monetary,
        cast(cast(coalesce(gross_sales, 0) - coalesce(refund_amount, 0) as decimal(18, 2)) * 100 as bigint)
            as monetary_cents,
        cast(cancelled_orders as bigint) as cancelled_orders,
        first_purchase_date,
        last_purchase_date,
        orders_30d,
        orders_90d,
        orders_365d
    from order_summary
),

-- aov = monetary / frequency rounded half away from zero to cents, in exact integer arithmetic
-- (DuckDB divides decimals in double precision; the quotient of two integers below 2^53 floors exactly)
purchase_metrics as (
    select
        customer_id,
        frequency,
        monetary,
        gross_sales,
        refund_amount,
        case
            when frequency > 0 then cast(
                cast(
                    (case when monetary_cents < 0 then -1 else 1 end)
                    * cast(
                        floor(cast(2 * abs(monetary_cents) + frequency as double) / cast(2 * frequency as double))
                        as bigint
                    )
                    as decimal(18, 0)
                ) * cast(0.01 as decimal(3, 2))
                as decimal(18, 2)
            )
        end as aov,
        first_purchase_date,
        last_purchase_date,
        orders_30d,
        orders_90d,
        orders_365d,
        cancelled_orders
    from purchase_amounts
),

purchase_days as (
    select
        customer_id,
        order_date as purchase_date
    from orders_to_date
    where status = 'completed'
    group by customer_id, order_date
),

purchase_gaps as (
    select
        customer_id,
        purchase_date,
        date_diff(
            'day',
            lag(purchase_date) over (partition by customer_id order by purchase_date),
            purchase_date
        ) as gap_days
    from purchase_days
),

ranked_gaps as (
    select
        customer_id,
        gap_days,
        row_number() over (partition by customer_id order by gap_days) as gap_rank,
        count(*) over (partition by customer_id) as gap_count
    from purchase_gaps
    where gap_days is not null
),

-- middle element(s) of the sorted gaps: 2 * rank in (n, n + 1, n + 2) picks one for odd n, two for even n
median_gaps as (
    select
        customer_id,
        avg(cast(gap_days as double)) as median_days_between_purchases
    from ranked_gaps
    where 2 * gap_rank in (gap_count, gap_count + 1, gap_count + 2)
    group by customer_id
),

-- largest gap ending in a purchase within the lifecycle's active window: recency <= active_days, i.e.
-- purchase_date >= $reactivation_start = $as_of - active_days (boundary included, like `active`)
reactivation_gaps as (
    select
        customer_id,
        max(gap_days) as reactivation_gap_days
    from purchase_gaps
    where gap_days is not null
      and purchase_date >= $reactivation_start
    group by customer_id
),

-- ---------------------------------------------------------------------------------------- behaviour
-- one row per (customer, session); a session is in a window when one of its events is
session_level as (
    select
        customer_id,
        session_id,
        min(event_date) as first_event_date,
        max(event_date) as last_event_date,
        count(case when event_date > $w1_start and event_type = 'page_view' then 1 end) as page_views_w1,
        count(case when event_date > $w1_start and event_type = 'product_view' then 1 end)
            as product_views_w1,
        count(case when event_date > $w1_start and event_type = 'search' then 1 end) as searches_w1,
        count(case when event_date > $w1_start and event_type = 'add_to_cart' then 1 end) as add_to_carts_w1,
        sum(case when event_date > $w1_start then duration_s end) as time_online_s_w1,
        count(case when event_date > $w2_start and event_type = 'page_view' then 1 end) as page_views_w2,
        count(case when event_date > $w2_start and event_type = 'product_view' then 1 end)
            as product_views_w2,
        count(case when event_date > $w2_start and event_type = 'search' then 1 end) as searches_w2,
        count(case when event_date > $w2_start and event_type = 'add_to_cart' then 1 end) as add_to_carts_w2,
        sum(case when event_date > $w2_start then duration_s end) as time_online_s_w2,
        max(case when event_date > $start_90 and event_type = 'add_to_cart' then 1 else 0 end) as has_cart_90d
    from browsing_to_date
    group by customer_id, session_id
),

browsing_summary as (
    select
        customer_id,
        min(first_event_date) as first_visit_date,
        max(last_event_date) as last_visit_date,
        count(case when last_event_date > $w1_start then 1 end) as sessions_w1,
        sum(page_views_w1) as page_views_w1,
        sum(product_views_w1) as product_views_w1,
        sum(searches_w1) as searches_w1,
        sum(add_to_carts_w1) as add_to_carts_w1,
        sum(time_online_s_w1) as time_online_s_w1,
        count(case when last_event_date > $w2_start then 1 end) as sessions_w2,
        sum(page_views_w2) as page_views_w2,
        sum(product_views_w2) as product_views_w2,
        sum(searches_w2) as searches_w2,
        sum(add_to_carts_w2) as add_to_carts_w2,
        sum(time_online_s_w2) as time_online_s_w2,
        sum(has_cart_90d) as cart_sessions_90d
    from session_level
    group by customer_id
),

browsed_categories as (
    select
        customer_id,
        category,
        count(*) as interest_events
    from browsing_to_date
    where event_date > $start_90
      and event_type in ('product_view', 'add_to_cart')
      and category is not null
    group by customer_id, category
),

top_browsed_categories as (
    select
        customer_id,
        category as top_browsed_category_90d
    from (
        select
            customer_id,
            category,
            row_number() over (
                partition by customer_id order by interest_events desc, category asc
            ) as category_rank
        from browsed_categories
    ) as ranked
    where category_rank = 1
),

-- ----------------------------------------------------------------------------------------- feedback
feedback_summary as (
    select
        customer_id,
        count(*) as feedback_count,
        avg(cast(rating as double)) as avg_rating,
        count(case when kind = 'complaint' and submitted_date > $complaint_start then 1 end)
            as complaints_window,
        min(submitted_date) as first_feedback_date,
        max(submitted_date) as last_feedback_date
    from feedback_to_date
    group by customer_id
),

latest_nps as (
    select
        customer_id,
        nps as last_nps
    from (
        select
            customer_id,
            nps,
            row_number() over (
                partition by customer_id order by submitted_ts desc, feedback_id desc
            ) as nps_rank
        from feedback_to_date
        where nps is not null
    ) as ranked
    where nps_rank = 1
),

-- -------------------------------------------------------------------------------------- preferences
-- net spend per category in the lookback window; uncategorized lines form their own (unnamed) bucket
category_spend as (
    select
        customer_id,
        category,
        sum(case when status = 'completed' then amount else -amount end) as net_spend
    from orders_to_date
    where in_lookback
      and status in ('completed', 'refunded')
    group by customer_id, category
),

positive_spend as (
    select
        customer_id,
        sum(net_spend) as positive_net_spend
    from category_spend
    where net_spend > 0
    group by customer_id
),

top_categories as (
    select
        ranked.customer_id,
        ranked.category as top_category,
        cast(ranked.net_spend as double) / cast(positive_spend.positive_net_spend as double)
            as top_category_share
    from (
        select
            customer_id,
            category,
            net_spend,
            row_number() over (partition by customer_id order by net_spend desc, category asc) as category_rank
        from category_spend
        where category is not null
          and net_spend > 0
    ) as ranked
    inner join positive_spend
        on ranked.customer_id = positive_spend.customer_id
    where ranked.category_rank = 1
),

channel_spend as (
    select
        customer_id,
        channel,
        sum(amount) as completed_spend
    from orders_to_date
    where in_lookback
      and status = 'completed'
    group by customer_id, channel
),

channel_shares as (
    select
        customer_id,
        case
            when sum(completed_spend) > 0 then
                cast(sum(case when channel in ('online', 'app') then completed_spend else 0 end) as double)
                / cast(sum(completed_spend) as double)
        end as online_share,
        case
            when sum(completed_spend) > 0 then
                cast(sum(case when channel = 'offline' then completed_spend else 0 end) as double)
                / cast(sum(completed_spend) as double)
        end as offline_share
    from channel_spend
    group by customer_id
),

preferred_channels as (
    select
        customer_id,
        channel as preferred_channel
    from (
        select
            customer_id,
            channel,
            row_number() over (
                partition by customer_id order by completed_spend desc, channel asc
            ) as channel_rank
        from channel_spend
        where channel in ('online', 'offline', 'app')
          and completed_spend > 0
    ) as ranked
    where channel_rank = 1
),

-- net spend per store in the lookback window (as category_spend); lines without a store (online) never count
store_spend as (
    select
        customer_id,
        store_id,
        sum(case when status = 'completed' then amount else -amount end) as net_spend
    from orders_to_date
    where in_lookback
      and status in ('completed', 'refunded')
      and store_id is not null
    group by customer_id, store_id
),

-- home store: the store with the most positive net spend, ties to the smallest store_id
home_stores as (
    select
        customer_id,
        store_id as home_store
    from (
        select
            customer_id,
            store_id,
            row_number() over (partition by customer_id order by net_spend desc, store_id asc) as store_rank
        from store_spend
        where net_spend > 0
    ) as ranked
    where store_rank = 1
),

-- -------------------------------------------------------------------------------- known customers
first_activity as (
    select customer_id, first_order_date as first_date from order_summary
    union all
    select customer_id, first_visit_date as first_date from browsing_summary
    union all
    select customer_id, first_feedback_date as first_date from feedback_summary
    union all
    select customer_id, signup_date as first_date from current_records
),

known_customers as (
    select
        customer_id,
        min(first_date) as first_seen_date
    from first_activity
    group by customer_id
),

-- -------------------------------------------------------------------------------------------- final
final as (
    select
        cast($as_of as date) as snapshot_date,
        known.customer_id,

        coalesce(purchases.frequency, 0) as frequency,
        coalesce(purchases.monetary, cast(0 as decimal(18, 2))) as monetary,
        coalesce(purchases.gross_sales, cast(0 as decimal(18, 2))) as gross_sales,
        coalesce(purchases.refund_amount, cast(0 as decimal(18, 2))) as refund_amount,
        purchases.aov,
        purchases.first_purchase_date,
        purchases.last_purchase_date,
        date_diff('day', purchases.last_purchase_date, cast($as_of as date)) as recency_days,
        date_diff('day', known.first_seen_date, cast($as_of as date)) as tenure_days,
        coalesce(purchases.orders_30d, 0) as orders_30d,
        coalesce(purchases.orders_90d, 0) as orders_90d,
        coalesce(purchases.orders_365d, 0) as orders_365d,
        median_gaps.median_days_between_purchases,
        reactivation_gaps.reactivation_gap_days,
        coalesce(purchases.cancelled_orders, 0) as cancelled_orders,
        -- bought at any time up to D (not only in the lookback window): "prospect" means never bought
        purchases.last_purchase_date is not null as is_buyer,

        coalesce(browsing.sessions_w1, 0) as sessions_w1,
        cast(coalesce(browsing.page_views_w1, 0) as bigint) as page_views_w1,
        cast(coalesce(browsing.product_views_w1, 0) as bigint) as product_views_w1,
        cast(coalesce(browsing.searches_w1, 0) as bigint) as searches_w1,
        cast(coalesce(browsing.add_to_carts_w1, 0) as bigint) as add_to_carts_w1,
        cast(coalesce(browsing.time_online_s_w1, 0) as bigint) as time_online_s_w1,
        coalesce(browsing.sessions_w2, 0) as sessions_w2,
        cast(coalesce(browsing.page_views_w2, 0) as bigint) as page_views_w2,
        cast(coalesce(browsing.product_views_w2, 0) as bigint) as product_views_w2,
        cast(coalesce(browsing.searches_w2, 0) as bigint) as searches_w2,
        cast(coalesce(browsing.add_to_carts_w2, 0) as bigint) as add_to_carts_w2,
        cast(coalesce(browsing.time_online_s_w2, 0) as bigint) as time_online_s_w2,
        date_diff('day', browsing.last_visit_date, cast($as_of as date)) as days_since_last_visit,
        case
            when browsing.cart_sessions_90d > 0 then least(
                cast(coalesce(purchases.orders_90d, 0) as double) / cast(browsing.cart_sessions_90d as double),
                cast(1 as double)
            )
        end as cart_to_order_rate_90d,
        top_browsed.top_browsed_category_90d,

        coalesce(feedback.feedback_count, 0) as feedback_count,
        feedback.avg_rating,
        latest_nps.last_nps,
        case
            when latest_nps.last_nps >= 9 then 'promoter'
            when latest_nps.last_nps >= 7 then 'passive'
            when latest_nps.last_nps >= 0 then 'detractor'
        end as nps_class,
        coalesce(feedback.complaints_window, 0) as complaints_window,
        date_diff('day', feedback.last_feedback_date, cast($as_of as date)) as days_since_last_feedback,

        top_categories.top_category,
        top_categories.top_category_share,
        channel_shares.online_share,
        channel_shares.offline_share,
        preferred_channels.preferred_channel,
        home_stores.home_store,

        records.customer_id is not null as has_customer_record,
        records.signup_date,
        records.region,
        records.city,
        records.source_channel,
        records.birth_year,
        records.gender
    from known_customers as known
    left join purchase_metrics as purchases on known.customer_id = purchases.customer_id
    left join median_gaps on known.customer_id = median_gaps.customer_id
    left join reactivation_gaps on known.customer_id = reactivation_gaps.customer_id
    left join browsing_summary as browsing on known.customer_id = browsing.customer_id
    left join top_browsed_categories as top_browsed on known.customer_id = top_browsed.customer_id
    left join feedback_summary as feedback on known.customer_id = feedback.customer_id
    left join latest_nps on known.customer_id = latest_nps.customer_id
    left join top_categories on known.customer_id = top_categories.customer_id
    left join channel_shares on known.customer_id = channel_shares.customer_id
    left join preferred_channels on known.customer_id = preferred_channels.customer_id
    left join home_stores on known.customer_id = home_stores.customer_id
    left join current_records as records on known.customer_id = records.customer_id
)

select * from final
order by customer_id
