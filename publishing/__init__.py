"""Publishing: atomic Parquet tables, the BI catalog, the report, CRM exports and the data dictionary."""
