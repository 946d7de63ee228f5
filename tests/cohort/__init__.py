"""Batch internals: case ids and worker processes (LatentAnomalyLib.cohort)."""
