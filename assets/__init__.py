"""Thin Dagster asset and check definitions; the logic lives in features/, models/, segments/."""
