"""Dagster Definitions, jobs, schedules, sensors and resources."""
