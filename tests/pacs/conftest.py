"""Fixtures of the PACS door's tests: a real Orthanc (skipped with the reason when Debian's packages are absent)."""

from __future__ import annotations

import locale
from collections.abc import Iterator

import pytest

from .orthanc import PASSWORD, USER, Orthanc, dicomweb_plugin, orthanc_binary


@pytest.fixture(autouse=True)
def _restore_locale():
    """GDCM's DICOM reader may switch the process locale to C; later tests must not read text as ASCII."""
    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)


@pytest.fixture
def orthanc(tmp_path) -> Iterator[Orthanc]:
    """A started Orthanc with DICOMweb and basic authentication, stopped after the test."""
    if orthanc_binary() is None or dicomweb_plugin() is None:
        pytest.skip("Orthanc or its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)")
    server = Orthanc(tmp_path / "orthanc")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pacs_login(monkeypatch) -> None:
    """The test Orthanc's user and password in the environment, as a hospital's service account would be."""
    monkeypatch.setenv("LATENT_ANOMALY_PACS_USER", USER)
    monkeypatch.setenv("LATENT_ANOMALY_PACS_PASSWORD", PASSWORD)
    monkeypatch.delenv("LATENT_ANOMALY_PACS_TOKEN", raising=False)
