"""Evaluation against ground truth: cases and the research datasets, methods, metrics, synthetic lesions, and the
files and HTML report of an evaluation (``latent-anomaly evaluate``)."""
