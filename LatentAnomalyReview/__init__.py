"""Browser review of `detect` and `batch` results with 3D Slicer's own rendering (trame-slicer).

``latent-anomaly review RESULTS`` starts :func:`LatentAnomalyReview.server.serve`. Only ``app``, ``scene`` and
``server`` import ``slicer`` / ``trame``; ``results``, ``case_data`` and ``files`` are plain Python so the command
can check its input (and tests can run) before the optional ``review`` extra is loaded.
"""

REQUIRED_MODULES = ("slicer", "trame_slicer", "trame", "vtk")
INSTALL_HINT = "review needs the review extra: pip install 'latent-anomaly[review]'"
