"""Encoding: the encoder networks of each family (:mod:`.families`) and where they run, with the CUDA-to-CPU
fallback (:mod:`.devices`)."""
