-- insert_snapshot: appends the rows of customer_features.sql for snapshot $as_of to the feature table, by
-- position. Grain: one row per known customer (snapshot_date, customer_id). Placeholders: the table (a
-- validated, quoted identifier) and the features query (the text of customer_features.sql), filled in by
-- features/customer_features.py; values are bound parameters.
insert into {table}
{features}
