"""The files of one detection beyond the images: the DICOM SEG (LatentAnomalyLib.outputs)."""
