-- segment_migrations: one row per (snapshot_date, segmentation, from_segment, to_segment) counting the
-- customers who moved between the previous snapshot $prev and $as_of. Customers only in one snapshot
-- move from '(none)' / to '(none)'; unchanged customers appear with from = to.
with prev as (
    select * from customer_segments where snapshot_date = $prev
),

curr as (
    select * from customer_segments where snapshot_date = $as_of
),

pairs as (
    select
        coalesce(c.customer_id, p.customer_id) as customer_id,
        p.rfm_segment as p_rfm, c.rfm_segment as c_rfm,
        p.lifecycle_stage as p_stage, c.lifecycle_stage as c_stage,
        p.value_tier as p_tier, c.value_tier as c_tier,
        p.overall_grade as p_grade, c.overall_grade as c_grade,
        cast(p.cluster_id as varchar) as p_cluster, cast(c.cluster_id as varchar) as c_cluster,
        p.customer_id is null as is_new, c.customer_id is null as is_gone
    from prev p
    full outer join curr c on p.customer_id = c.customer_id
),

long as (
    select 'rfm_segment' as segmentation, p_rfm as from_value, c_rfm as to_value, is_new, is_gone from pairs
    union all
    select 'lifecycle_stage', p_stage, c_stage, is_new, is_gone from pairs
    union all
    select 'value_tier', p_tier, c_tier, is_new, is_gone from pairs
    union all
    select 'overall_grade', p_grade, c_grade, is_new, is_gone from pairs
    union all
    select 'cluster', p_cluster, c_cluster, is_new, is_gone from pairs
),

labelled as (
    select
        segmentation,
        case when is_new then '(none)' else coalesce(from_value, 'unassigned') end as from_segment,
        case when is_gone then '(none)' else coalesce(to_value, 'unassigned') end as to_segment
    from long
),

final as (
    select
        cast($as_of as date) as snapshot_date,
        cast($prev as date) as previous_snapshot_date,
        segmentation,
        from_segment,
        to_segment,
        count(*) as customers
    from labelled
    group by segmentation, from_segment, to_segment
)

select * from final
order by segmentation, from_segment, to_segment
