-- value_levels: high or low on each axis (r, f, m) of the value map for every customer of `customer_scores`,
-- whose metrics come from `features`. Grain: one row per customer (customer_id).
--
-- The rule is models.pipeline.value_level_rules, decided once per snapshot on the scored buyers and bound
-- here per axis: the axis is high when its value (the score when $<axis>_on_score, else the metric in exact
-- integer units: days, orders, cents) compares to $<axis>_bound by $<axis>_op ('>=', '>' or '<'). A null
-- score (not a scored buyer) gives a null level; a null bound (no scored buyers) gives low. Values are
-- compared as DOUBLE: integers below 2^53 and the bound (an integer, or a median ending in .5) exactly.
with

axis_values as (
    select
        scores.customer_id,
        scores.r_score,
        scores.f_score,
        scores.m_score,
        cast(case when $r_on_score then scores.r_score else features.recency_days end as double) as r_value,
        cast(case when $f_on_score then scores.f_score else features.frequency end as double) as f_value,
        cast(
            case when $m_on_score then cast(scores.m_score as bigint) else cast(features.monetary * 100 as bigint) end
            as double
        ) as m_value
    from customer_scores as scores
    inner join features on features.customer_id = scores.customer_id
)

select
    customer_id,
    case
        when r_score is null then null
        when $r_op = '>=' and r_value >= $r_bound then 'high'
        when $r_op = '>' and r_value > $r_bound then 'high'
        when $r_op = '<' and r_value < $r_bound then 'high'
        else 'low'
    end as r,
    case
        when f_score is null then null
        when $f_op = '>=' and f_value >= $f_bound then 'high'
        when $f_op = '>' and f_value > $f_bound then 'high'
        when $f_op = '<' and f_value < $f_bound then 'high'
        else 'low'
    end as f,
    case
        when m_score is null then null
        when $m_op = '>=' and m_value >= $m_bound then 'high'
        when $m_op = '>' and m_value > $m_bound then 'high'
        when $m_op = '<' and m_value < $m_bound then 'high'
        else 'low'
    end as m
from axis_values
