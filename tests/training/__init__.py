"""Training pieces: CPU memory, torchrun data parallelism, outlier removal (LatentAnomalyLib.training)."""
