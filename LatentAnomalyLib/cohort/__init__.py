"""Batch detection over a cohort (``latent-anomaly batch``): which scans, their ids and paths, workers, resumable
per-case records, shards and the ranked score table."""
