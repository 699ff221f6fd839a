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
        -- p."<column>" as "p_<name>", c."<column>" as "c_<name>" per tracked segmentation (as varchar)
        /*PAIR_COLUMNS*/
        p.customer_id is null as is_new,
        c.customer_id is null as is_gone
    from prev p
    full outer join curr c on p.customer_id = c.customer_id
),

long as (
    -- One branch per segmentation tracked in migrations (models/registry.py), generated from validated
    -- identifiers: select '<name>', "p_<name>", "c_<name>", is_new, is_gone from pairs
    /*SEGMENTATIONS*/
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
