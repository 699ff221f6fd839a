-- delete_snapshot: removes every row of snapshot date $as_of from the feature table before it is rebuilt.
-- Grain: the rows (snapshot_date, customer_id) of one snapshot. The table placeholder is a validated,
-- quoted identifier filled in by features/customer_features.py; values are bound parameters.
delete from {table}
where snapshot_date = $as_of
