"""Preprocessing, shared by training and detection: brain mask, affine registration to the template, the model
grid, intensity normalisation (the reversible chain in :mod:`.chain`) and the input-kind check after it."""
