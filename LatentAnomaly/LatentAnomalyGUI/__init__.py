"""Pieces of the LatentAnomaly Slicer module, split so that most of them import without Slicer.

Only ``widget.py``, ``parameters.py`` and ``qt_runner.py`` need Slicer/Qt at import time;
``logic.py``, ``scene.py``, ``review.py`` and ``dependencies.py`` import ``slicer`` lazily inside the
methods that need it.
Everything else is plain Python that pytest exercises in ``tests/test_slicer_*.py``.
"""
