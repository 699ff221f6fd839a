-- segment_summary: one row per (snapshot_date, segmentation, segment) for snapshot $as_of.
-- Every summarized segmentation of the registry is summarised the same way; customers without a
-- value (e.g. non-buyers for RFM segments) are counted as 'unassigned' so shares sum to 1.
with base as (
    select * from customer_segments where snapshot_date = $as_of
),

long as (
    -- One branch per summarized segmentation of the registry (models/registry.py), generated from
    -- validated identifiers: select '<name>', cast("<column>" as varchar), monetary, ... from base
    /*SEGMENTATIONS*/
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
