"""Batch detection over a cohort (``latent-anomaly batch``): which scans, their ids and paths, workers (local
processes or a Dask cluster), resumable per-case records and the ranked score table."""
