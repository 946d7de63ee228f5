"""Scorers, their registry and the conformal p-values (LatentAnomalyLib.score)."""
