-- grade_table: the A/B/C grade of every distinct monetary, frequency and engagement value of the `features`
-- view (one snapshot). Grain: one row per (basis, value). Placeholder engagement_score (in braces): the sum of the
-- configured engagement columns (validated, quoted identifiers filled in by engines/segmentation.py).
--
-- Same rules as models/grades.py (parity-tested). Values are sorted largest first and each tie group is
-- graded by the cumulative share at its END: A if within $a_num / $a_den, B if within $b_num / $b_den,
-- else C; the first (largest) group is always A; values <= 0 are C. Shares are compared exactly by
-- cross-multiplying integers: monetary is graded in integer cents, which scales the cumulative and total
-- sums alike. Pareto ($pareto true) accumulates value * customers of the positive values; quantile
-- accumulates customers. Monetary and frequency grade buyers only; engagement grades every customer.
with

graded_values as (
    select 'monetary' as basis, cast(monetary * 100 as bigint) as value
    from features
    where coalesce(is_buyer, false) and monetary is not null
    union all
    select 'frequency' as basis, cast(frequency as bigint) as value
    from features
    where coalesce(is_buyer, false) and frequency is not null
    union all
    select 'engagement' as basis, cast({engagement_score} as bigint) as value
    from features
),

distinct_values as (
    select
        basis,
        value,
        count(*) as customers
    from graded_values
    group by basis, value
),

weighted as (
    select
        basis,
        value,
        case
            when not $pareto then customers
            when value > 0 then value * customers
            else 0
        end as weight
    from distinct_values
),

running as (
    select
        basis,
        value,
        sum(weight) over (
            partition by basis order by value desc rows between unbounded preceding and current row
        ) as cumulative,
        sum(weight) over (partition by basis) as total,
        row_number() over (partition by basis order by value desc) as value_rank
    from weighted
),

final as (
    select
        basis,
        value,
        case
            when value <= 0 then 'C'
            when value_rank = 1 or cumulative * $a_den <= total * $a_num then 'A'
            when cumulative * $b_den <= total * $b_num then 'B'
            else 'C'
        end as grade
    from running
)

select * from final
order by basis, value
