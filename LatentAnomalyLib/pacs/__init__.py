"""The PACS door: DICOMweb in (QIDO-RS, WADO-RS), the detection of ``outputs/detection.py``, DICOM SEG and SR out
(STOW-RS), with resumable state in a folder. Needs the ``dicom`` extra (highdicom, pydicom); HTTP is the standard
library's, so no other dependency is needed.

- :mod:`.credentials`: HTTP basic or bearer credentials from a file or the environment, never the command line;
- :mod:`.dicomweb`: the DICOMweb client (retries with back-off, TLS checked by default, one-line errors);
- :mod:`.selection`: which series are analysed (match rules on Series Description and sequence attributes);
- :mod:`.state`: what was done or failed, so a restart never processes a series twice;
- :mod:`.uids`: UIDs derived from the source series and the model version (a rerun stores the same objects);
- :mod:`.series_job`: one series, from retrieval to the objects stored back;
- :mod:`.run`: the loop over the PACS (``--once`` or ``--watch``).
"""
