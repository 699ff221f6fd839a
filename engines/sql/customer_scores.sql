-- customer_scores: RFM scores, engagement score, A/B/C grades and lifecycle stage of every customer of the
-- `features` view, from the distinct-value tables rfm_score_table and grade_table. Grain: one row per
-- customer (customer_id), ordered by customer_id. Placeholder engagement_score as in grade_table.sql.
--
-- Same rules as models/rfm.py, models/grades.py and models/lifecycle.py (parity-tested):
--   scores and the monetary/frequency/overall grades for buyers only; fm_score = (F + M + 1) div 2;
--   overall grade = round-half-up mean of the points (A 3, B 2, C 1) of the bases switched on by
--   $overall_monetary / $overall_frequency / $overall_engagement, among those present.
--   lifecycle, first match: prospect (not a buyer or no recency), new (first purchase <= $new_days ago),
--   reactivated (recency <= $active_days and a gap > $churn_days), active (recency <= $active_days),
--   at_risk (recency <= $churn_days), churned.
with

customers as (
    select
        customer_id,
        snapshot_date,
        coalesce(is_buyer, false) as is_buyer,
        recency_days,
        frequency,
        monetary,
        first_purchase_date,
        reactivation_gap_days,
        cast({engagement_score} as bigint) as engagement_score
    from features
),

scored as (
    select
        customers.*,
        case when customers.is_buyer then recency.score end as r_score,
        case when customers.is_buyer then frequency_scores.score end as f_score,
        case when customers.is_buyer then monetary_scores.score end as m_score,
        case when customers.is_buyer then monetary_grades.grade end as monetary_grade,
        case when customers.is_buyer then frequency_grades.grade end as frequency_grade,
        engagement_grades.grade as engagement_grade
    from customers
    left join rfm_score_table as recency
        on recency.metric = 'recency_days'
        and recency.value = cast(customers.recency_days as decimal(18, 2))
    left join rfm_score_table as frequency_scores
        on frequency_scores.metric = 'frequency'
        and frequency_scores.value = cast(customers.frequency as decimal(18, 2))
    left join rfm_score_table as monetary_scores
        on monetary_scores.metric = 'monetary'
        and monetary_scores.value = cast(customers.monetary as decimal(18, 2))
    left join grade_table as monetary_grades
        on monetary_grades.basis = 'monetary'
        and monetary_grades.value = cast(customers.monetary * 100 as bigint)
    left join grade_table as frequency_grades
        on frequency_grades.basis = 'frequency'
        and frequency_grades.value = cast(customers.frequency as bigint)
    left join grade_table as engagement_grades
        on engagement_grades.basis = 'engagement'
        and engagement_grades.value = customers.engagement_score
),

points as (
    select
        *,
        case when $overall_monetary then
            case monetary_grade when 'A' then 3 when 'B' then 2 when 'C' then 1 end
        end as monetary_points,
        case when $overall_frequency then
            case frequency_grade when 'A' then 3 when 'B' then 2 when 'C' then 1 end
        end as frequency_points,
        case when $overall_engagement then
            case engagement_grade when 'A' then 3 when 'B' then 2 when 'C' then 1 end
        end as engagement_points
    from scored
),

totals as (
    select
        *,
        coalesce(monetary_points, 0) + coalesce(frequency_points, 0) + coalesce(engagement_points, 0)
            as point_total,
        case when monetary_points is null then 0 else 1 end
        + case when frequency_points is null then 0 else 1 end
        + case when engagement_points is null then 0 else 1 end as point_count
    from points
),

final as (
    select
        customer_id,
        r_score,
        f_score,
        m_score,
        cast((f_score + m_score + 1) // 2 as bigint) as fm_score,
        engagement_score,
        monetary_grade,
        frequency_grade,
        engagement_grade,
        case
            when not is_buyer or point_count = 0 then null
            when (2 * point_total + point_count) // (2 * point_count) >= 3 then 'A'
            when (2 * point_total + point_count) // (2 * point_count) = 2 then 'B'
            else 'C'
        end as overall_grade,
        case
            when not is_buyer or recency_days is null then 'prospect'
            when date_diff('day', first_purchase_date, snapshot_date) <= $new_days then 'new'
            when recency_days <= $active_days and reactivation_gap_days > $churn_days then 'reactivated'
            when recency_days <= $active_days then 'active'
            when recency_days <= $churn_days then 'at_risk'
            else 'churned'
        end as lifecycle_stage
    from totals
)

select * from final
order by customer_id
