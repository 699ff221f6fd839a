"""Ingestion: landing files checked against the input contracts and loaded into the warehouse."""
