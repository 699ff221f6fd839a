-- cluster_assignment: the nearest KMeans centroid of every customer of the clustering population in the
-- `features` view. Grain: one row per customer in the population (customer_id), ordered by customer_id.
--
-- The centroids were fitted on a bounded sample on the driver (models/clusters.py); the views
-- cluster_scale (one row: fill_<i>, mean_<i>, std_<i> per feature, DOUBLE) and cluster_centers (cluster_id,
-- center_<i> in standardized space, DOUBLE) carry them as data, never as literals. Placeholders (in braces), filled by
-- engines/segmentation.py from validated config: population_columns (the quoted feature columns as
-- feature_<i>), z_columns (z_<i> = (ln(1 + max(filled value, 0)) - mean_<i>) / std_<i>) and distance
-- (the squared Euclidean distance summed in feature order, as numpy does). Ties go to the lowest
-- cluster_id. $all_customers false clusters buyers only.
with

population as (
    select
        customer_id,
        {population_columns}
    from features
    where $all_customers or coalesce(is_buyer, false)
),

standardized as (
    select
        population.customer_id,
        {z_columns}
    from population
    cross join cluster_scale
),

distances as (
    select
        standardized.customer_id,
        cluster_centers.cluster_id,
        {distance} as distance
    from standardized
    cross join cluster_centers
),

ranked as (
    select
        customer_id,
        cluster_id,
        row_number() over (partition by customer_id order by distance asc, cluster_id asc) as cluster_rank
    from distances
)

select
    customer_id,
    cast(cluster_id as bigint) as cluster_id
from ranked
where cluster_rank = 1
order by customer_id
