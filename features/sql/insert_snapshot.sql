-- insert_snapshot: appends the rows of customer_features.sql for snapshot $as_of to the feature table.
-- Grain: one row per known customer (snapshot_date, customer_id). Placeholders: the table (a validated,
-- quoted identifier), its column list (the window-named output columns of these feature parameters, which
-- the query returns in that order) and the features query (the text of customer_features.sql), filled in
-- by features/customer_features.py; values are bound parameters. Columns of other window settings stay
-- null for this snapshot.
insert into {table} ({columns})
{features}
