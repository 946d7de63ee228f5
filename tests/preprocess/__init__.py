"""The preprocessing chain and the input-kind check (LatentAnomalyLib.preprocess)."""
