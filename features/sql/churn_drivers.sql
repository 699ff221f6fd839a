-- churn_drivers: churn and at-risk rates of buyers by possible driver, with lift against the overall rate.
-- Grain: one row per driver and driver value for snapshot $as_of (plus driver 'all', value 'all'),
-- ordered by driver, driver_value. Reads {source}: customer_segments rows plus recent_complaints (the
-- complaints_<N>d column of the configured complaint window), satisfaction_class and predicted_churn.
--
-- Population: buyers (is_buyer) of the snapshot; prospects cannot churn. churned / at_risk are the
-- lifecycle stages; predicted_churn the model's label (null when not predicted). Rate = count / buyers
-- of the group; lift = group rate / overall rate (null when the overall rate is 0). Drivers:
--   nps_class         promoter | passive | detractor | unknown (no NPS answer)
--   recent_complaint  yes when recent_complaints > 0 (a complaint in the window, default 90 days), else no
--   satisfaction      satisfaction_class: the `satisfaction` classification when customer_segments has it,
--                     else avg_rating >= 4 satisfied, >= 3 neutral, < 3 dissatisfied, unknown without ratings
--   source_channel, region, top_category  from the customer record / purchases, unknown when null
--   cluster           cluster_id (value_label: the cluster's name)
-- Portable SQL: plain group-bys and counts, ratios in double.
with

buyers as (
    select
        lifecycle_stage,
        predicted_churn,
        coalesce(nps_class, 'unknown') as nps_class,
        case when recent_complaints > 0 then 'yes' else 'no' end as recent_complaint,
        coalesce(satisfaction_class, 'unknown') as satisfaction,
        coalesce(source_channel, 'unknown') as source_channel,
        coalesce(region, 'unknown') as region,
        coalesce(top_category, 'unknown') as top_category,
        coalesce(cast(cluster_id as varchar), 'unknown') as cluster,
        cluster_name
    from {source}
    where snapshot_date = $as_of
      and is_buyer
),

by_driver as (
    select 'all' as driver, 'all' as driver_value, 'all' as value_label, lifecycle_stage, predicted_churn
    from buyers
    union all
    select 'nps_class', nps_class, nps_class, lifecycle_stage, predicted_churn from buyers
    union all
    select 'recent_complaint', recent_complaint, recent_complaint, lifecycle_stage, predicted_churn from buyers
    union all
    select 'satisfaction', satisfaction, satisfaction, lifecycle_stage, predicted_churn from buyers
    union all
    select 'source_channel', source_channel, source_channel, lifecycle_stage, predicted_churn from buyers
    union all
    select 'region', region, region, lifecycle_stage, predicted_churn from buyers
    union all
    select 'top_category', top_category, top_category, lifecycle_stage, predicted_churn from buyers
    union all
    select 'cluster', cluster, coalesce(cluster_name, cluster), lifecycle_stage, predicted_churn from buyers
),

grouped as (
    select
        driver,
        driver_value,
        max(value_label) as value_label,
        count(*) as buyers,
        count(case when lifecycle_stage = 'churned' then 1 end) as churned,
        count(case when lifecycle_stage = 'at_risk' then 1 end) as at_risk,
        count(case when predicted_churn = 'churn' then 1 end) as predicted_churners,
        count(predicted_churn) as predicted
    from by_driver
    group by driver, driver_value
),

overall as (
    select
        buyers,
        churned,
        at_risk,
        predicted_churners,
        predicted
    from grouped
    where driver = 'all'
),

final as (
    select
        cast($as_of as date) as snapshot_date,
        grouped.driver,
        grouped.driver_value,
        grouped.value_label,
        grouped.buyers,
        cast(grouped.buyers as double) / cast(overall.buyers as double) as buyer_share,
        grouped.churned,
        grouped.at_risk,
        cast(grouped.churned as double) / cast(grouped.buyers as double) as churn_rate,
        cast(grouped.at_risk as double) / cast(grouped.buyers as double) as at_risk_rate,
        case
            when overall.churned > 0 then
                cast(grouped.churned * overall.buyers as double) / cast(grouped.buyers * overall.churned as double)
        end as churn_lift,
        case
            when overall.at_risk > 0 then
                cast(grouped.at_risk * overall.buyers as double) / cast(grouped.buyers * overall.at_risk as double)
        end as at_risk_lift,
        case
            when grouped.predicted > 0 then cast(grouped.predicted_churners as double) / cast(grouped.predicted as double)
        end as predicted_churn_rate,
        case
            when grouped.predicted > 0 and overall.predicted_churners > 0 then
                cast(grouped.predicted_churners * overall.predicted as double)
                / cast(grouped.predicted * overall.predicted_churners as double)
        end as predicted_churn_lift
    from grouped
    cross join overall
)

select * from final
order by driver, driver_value
