-- segment_summary_by_group: one row per (snapshot_date, group_by, group_value, segmentation, segment) for
-- snapshot $as_of: segment sizes within each region (or other grouping column of customer_segments).
-- Customers without a group value count under 'unknown', without a segment under 'unassigned'.
with base as (
    select * from customer_segments where snapshot_date = $as_of
),

long as (
    -- One branch per (grouping column, summarized segmentation), generated from validated identifiers:
    -- select '<group>', cast("<group>" as varchar), '<name>', cast("<column>" as varchar), monetary from base
    /*BRANCHES*/
),

grouped as (
    select
        group_by,
        coalesce(group_value, 'unknown') as group_value,
        segmentation,
        coalesce(segment, 'unassigned') as segment,
        count(*) as customers,
        cast(sum(monetary) as decimal(18, 2)) as revenue
    from long
    group by group_by, coalesce(group_value, 'unknown'), segmentation, coalesce(segment, 'unassigned')
),

final as (
    select
        cast($as_of as date) as snapshot_date,
        group_by,
        group_value,
        segmentation,
        segment,
        customers,
        cast(customers as double)
        / sum(customers) over (partition by group_by, group_value, segmentation) as share,
        revenue
    from grouped
)

select * from final
order by group_by, group_value, segmentation, segment
