-- segment_map: the segment of every customer of a per-customer view under one segment map, by a left join
-- against the map's cell table `map_cells` (models.segment_maps.SegmentMap.lookup(): one row per cell, its
-- axis values, segment_key and segment_name). Grain: one row per customer (customer_id), ordered by it.
--
-- Placeholders, filled with identifiers from code and the map's validated axes, never values: source (the
-- view), axis_columns (the column of the view holding each axis of the map, e.g. "r_score" as "r") and
-- cell_match (the equality of every axis, map_input."r" = map_cells."r" and ...). The cells are the rule:
-- a null or out-of-map axis value matches no cell, so key and name are null, exactly as
-- models.segment_maps.apply_segment_map leaves them.
with

map_input as (
    select
        customer_id,
        {axis_columns}
    from {source}
)

select
    map_input.customer_id,
    map_cells.segment_key,
    map_cells.segment_name
from map_input
left join map_cells
    on {cell_match}
order by map_input.customer_id
