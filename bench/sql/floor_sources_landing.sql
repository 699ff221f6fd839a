-- floor_sources_landing: the four source relations of the load floor, read straight from the landing files.
-- Grain: one row per landing-file row that parses (DuckDB's typed CSV/Parquet readers; rows that do not
-- parse are skipped, not accounted for). $orders_files, $feedback_files, $customers_files (CSV, .gz read
-- transparently) and $browsing_files (Parquet) are lists of paths. Timestamps are naive local business
-- time, as the sample data writes them, so the business date is the timestamp's date.
orders_src as (
    select customer_id, order_id, status, amount, cast(order_ts as date) as order_date
    from read_csv(
        $orders_files, header = true, ignore_errors = true, timestampformat = '%Y-%m-%d %H:%M:%S',
        types = {'order_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'order_ts': 'TIMESTAMP',
                 'amount': 'DECIMAL(18,2)', 'status': 'VARCHAR'}
    )
),

browsing_src as (
    select customer_id, session_id, event_type, duration_s, cast(event_ts as date) as event_date
    from read_parquet($browsing_files)
),

feedback_src as (
    select customer_id, kind, rating, cast(submitted_ts as date) as submitted_date
    from read_csv(
        $feedback_files, header = true, ignore_errors = true, timestampformat = '%Y-%m-%d %H:%M:%S',
        types = {'customer_id': 'VARCHAR', 'submitted_ts': 'TIMESTAMP', 'kind': 'VARCHAR', 'rating': 'INTEGER'}
    )
),

customers_src as (
    select customer_id, region, source_channel, cast(signup_ts as date) as signup_date
    from read_csv(
        $customers_files, header = true, ignore_errors = true, timestampformat = '%Y-%m-%d %H:%M:%S',
        types = {'customer_id': 'VARCHAR', 'signup_ts': 'TIMESTAMP', 'region': 'VARCHAR',
                 'source_channel': 'VARCHAR'}
    )
)
