"""segments: customer segmentation pipeline (library, CLI and sample data)."""
