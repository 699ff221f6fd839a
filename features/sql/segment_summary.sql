-- segment_summary: one row per (snapshot_date, segmentation, segment) for snapshot $as_of.
-- Every segmentation column of customer_segments is summarised the same way; customers without a
-- value (e.g. non-buyers for RFM segments) are counted as 'unassigned' so shares sum to 1.
with base as (
    select * from customer_segments where snapshot_date = $as_of
),

long as (
    select 'rfm_segment' as segmentation, rfm_segment as segment, monetary, frequency, recency_days from base
    union all
    select 'value_class', value_class, monetary, frequency, recency_days from base
    union all
    select 'monetary_grade', monetary_grade, monetary, frequency, recency_days from base
    union all
    select 'frequency_grade', frequency_grade, monetary, frequency, recency_days from base
    union all
    select 'engagement_grade', engagement_grade, monetary, frequency, recency_days from base
    union all
    select 'overall_grade', overall_grade, monetary, frequency, recency_days from base
    union all
    select 'lifecycle_stage', lifecycle_stage, monetary, frequency, recency_days from base
    union all
    select 'value_tier', value_tier, monetary, frequency, recency_days from base
    union all
    select 'cluster', cast(cluster_id as varchar), monetary, frequency, recency_days from base
),

grouped as (
    select
        segmentation,
        coalesce(segment, 'unassigned') as segment,
        count(*) as customers,
        cast(sum(monetary) as decimal(18, 2)) as revenue,
        cast(avg(monetary) as decimal(18, 2)) as avg_monetary,
        avg(cast(frequency as double)) as avg_frequency,
        avg(cast(recency_days as double)) as avg_recency_days
    from long
    group by segmentation, coalesce(segment, 'unassigned')
),

final as (
    select
        cast($as_of as date) as snapshot_date,
        segmentation,
        segment,
        customers,
        cast(customers as double) / sum(customers) over (partition by segmentation) as share,
        revenue,
        avg_monetary,
        avg_frequency,
        avg_recency_days
    from grouped
)

select * from final
order by segmentation, segment
