-- clv_summary: per-buyer summary for the BTYD models (BG/NBD purchase model, Gamma-Gamma spend model)
-- observed up to $cutoff, plus the purchases made after it up to $as_of (the calibration holdout).
-- Grain: one row per customer with at least one completed purchase dated <= $cutoff, ordered by customer_id.
--
-- The models' own definitions (pymc-marketing / lifetimes), in days, on purchase DAYS (local business
-- dates with a completed line; several orders on one day are one purchase):
--   frequency          = purchase days - 1 (REPEAT purchases; not the distinct orders of customer_features)
--   recency            = days from the first to the last purchase day (age at last purchase; not days since)
--   t_days             = days from the first purchase day to $cutoff (the model's T)
--   monetary_value     = mean completed spend per repeat purchase day (the first day left out), 0 without repeats
--   holdout_purchases  = purchase days in ($cutoff, $as_of]; 0 when $cutoff = $as_of
-- Spend is completed line amounts (refunds are dated when they happen and are not matched to a day).
-- Portable SQL: day arithmetic with date_diff on DATEs, money summed as DECIMAL and divided once.
with

purchase_days as (
    select
        customer_id,
        order_date as purchase_date,
        sum(amount) as day_spend
    from orders
    where customer_id is not null
      and status = 'completed'
      and order_date <= $as_of
    group by customer_id, order_date
),

observed as (
    select
        customer_id,
        purchase_date,
        day_spend
    from purchase_days
    where purchase_date <= $cutoff
),

bounds as (
    select
        customer_id,
        min(purchase_date) as first_date,
        max(purchase_date) as last_date,
        count(*) as purchase_day_count
    from observed
    group by customer_id
),

repeat_spend as (
    select
        observed.customer_id,
        sum(observed.day_spend) as repeat_spend
    from observed
    inner join bounds
        on observed.customer_id = bounds.customer_id
       and observed.purchase_date > bounds.first_date
    group by observed.customer_id
),

holdout as (
    select
        customer_id,
        count(*) as holdout_purchases
    from purchase_days
    where purchase_date > $cutoff
    group by customer_id
),

final as (
    select
        bounds.customer_id,
        cast(bounds.purchase_day_count - 1 as bigint) as frequency,
        cast(date_diff('day', bounds.first_date, bounds.last_date) as bigint) as recency,
        cast(date_diff('day', bounds.first_date, cast($cutoff as date)) as bigint) as t_days,
        case
            when bounds.purchase_day_count > 1
                then cast(repeat_spend.repeat_spend as double) / cast(bounds.purchase_day_count - 1 as double)
            else cast(0 as double)
        end as monetary_value,
        cast(coalesce(holdout.holdout_purchases, 0) as bigint) as holdout_purchases
    from bounds
    left join repeat_spend on bounds.customer_id = repeat_spend.customer_id
    left join holdout on bounds.customer_id = holdout.customer_id
)

select * from final
order by customer_id
