"""Input and output files: reading scans (NIfTI, NRRD, MetaImage, DICOM series) with their header and DICOM
checks, atomic writes, and the locked, staged publication of one detection's output folder."""
