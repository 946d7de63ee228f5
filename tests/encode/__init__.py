"""Encoder families and the plain-torch network blocks (LatentAnomalyLib.encode)."""
