"""Shared by the output tests."""

from __future__ import annotations

import locale

import pytest


@pytest.fixture(autouse=True)
def _restore_locale():
    """GDCM's DICOM reader may switch the process locale to C; later tests must not read text as ASCII."""
    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)
