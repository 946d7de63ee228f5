"""LatentAnomaly: unsupervised anomaly detection in brain MRI from healthy scans only.

The library never imports 3D Slicer; the Slicer module in ``LatentAnomaly/`` calls its CLI.
"""

__version__ = "0.1.0"
