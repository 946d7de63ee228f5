"""Reading, header and DICOM checks, atomic writes and the published output folder (LatentAnomalyLib.io), with the refusals of bad inputs through the CLI."""
