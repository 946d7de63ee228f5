"""Bundle format, trust checks and `latent-anomaly info` (LatentAnomalyLib.bundle)."""
