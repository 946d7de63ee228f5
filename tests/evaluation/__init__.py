"""Metrics and the evaluation report (LatentAnomalyLib.evaluation)."""
