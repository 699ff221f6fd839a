-- rfm_score_table: the RFM score (1-5, 5 best) of every distinct recency, frequency and monetary value among
-- the buyers of the `features` view (one snapshot). Grain: one row per (metric, value).
--
-- Distinct-value form (PRODUCT.md section 6): the windows run over the distinct values of each metric, not
-- over every customer, so equal values always share a score and Spark never funnels all customers through
-- one partition. Values are DECIMAL(18,2) for all three metrics so the rows stack; callers join back on
-- cast(<column> as decimal(18, 2)). Same rules as models/rfm.py (parity-tested):
--   quantile ($fixed false): sort the values worst first (recency: most days first), worse = buyers with a
--     strictly worse value, n = scored buyers; score = 1 + floor(5 * worse / n) in integer arithmetic.
--   fixed ($fixed true): $r_1..$r_4 are the inclusive upper bounds of recency scores 5, 4, 3, 2;
--     $f_1..$f_4 and $m_1..$m_4 the inclusive lower bounds of scores 2, 3, 4, 5.
with

buyer_values as (
    select 'recency_days' as metric, cast(recency_days as decimal(18, 2)) as value
    from features
    where coalesce(is_buyer, false) and recency_days is not null
    union all
    select 'frequency' as metric, cast(frequency as decimal(18, 2)) as value
    from features
    where coalesce(is_buyer, false) and frequency is not null
    union all
    select 'monetary' as metric, cast(monetary as decimal(18, 2)) as value
    from features
    where coalesce(is_buyer, false) and monetary is not null
),

distinct_values as (
    select
        metric,
        value,
        count(*) as customers
    from buyer_values
    group by metric, value
),

ranked as (
    select
        metric,
        value,
        customers,
        sum(customers) over (
            partition by metric
            order by case when metric = 'recency_days' then -value else value end
            rows between unbounded preceding and current row
        ) - customers as worse,
        sum(customers) over (partition by metric) as buyers
    from distinct_values
),

final as (
    select
        metric,
        value,
        cast(
            case
                when $fixed and metric = 'recency_days' then
                    case
                        when value <= $r_1 then 5
                        when value <= $r_2 then 4
                        when value <= $r_3 then 3
                        when value <= $r_4 then 2
                        else 1
                    end
                when $fixed and metric = 'frequency' then
                    case
                        when value >= $f_4 then 5
                        when value >= $f_3 then 4
                        when value >= $f_2 then 3
                        when value >= $f_1 then 2
                        else 1
                    end
                when $fixed then
                    case
                        when value >= $m_4 then 5
                        when value >= $m_3 then 4
                        when value >= $m_2 then 3
                        when value >= $m_1 then 2
                        else 1
                    end
                else 1 + (5 * worse) // buyers
            end
            as bigint
        ) as score,
        cast(customers as bigint) as customers
    from ranked
)

select * from final
order by metric, value
