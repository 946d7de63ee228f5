"""The Slicer module (LatentAnomaly/LatentAnomalyGUI) without Slicer: command, logic, runner, review helpers, packaging."""
