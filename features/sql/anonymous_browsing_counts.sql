-- anonymous_browsing_counts: browsing without a customer_id up to snapshot date $as_of (counted, never
-- attributed to a customer). Grain: one row for the whole table.
with

anonymous_events as (
    select
        session_id
    from browsing
    where customer_id is null
      and event_date <= $as_of
),

final as (
    select
        count(*) as events,
        count(distinct session_id) as sessions
    from anonymous_events
)

select * from final
