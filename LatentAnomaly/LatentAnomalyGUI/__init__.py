"""Pieces of the LatentAnomaly Slicer module, split so that most of them import without Slicer.

Only ``widget.py``, ``parameters.py`` and ``qt_runner.py`` need Slicer's GUI (Qt) at import time. The scene parts
(``nodes.py``, ``display.py``, ``scene.py``, ``review.py``, ``export.py``, ``pictures.py``, ``standalone.py``) work on
any MRML scene and import ``slicer``/``vtk`` inside their methods: ``tests/slicer`` runs them on Slicer's core
libraries (pip ``slicer-core``). Everything else is plain Python tested in ``tests/gui``.
"""
