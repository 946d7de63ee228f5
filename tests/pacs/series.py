"""MR series made from the committed sample scans, as a scanner (or an anonymiser) would write them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def write_series(
    image: sitk.Image,
    folder: Path,
    description: str = "t1_mprage_sag",
    study: str | None = None,
    drop: Sequence[str] = (),
    seed: str = "",
) -> dict[str, str]:
    """Write ``image`` as an MR DICOM series (one file per slice, named out of slice order); ``drop`` lists attributes
    left out (e.g. SliceThickness, as anonymisers do). Returns the study, series and frame-of-reference UIDs."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True)
    uids = {"study": study or generate_uid(), "series": generate_uid(), "frame": generate_uid()}
    array = np.rint(sitk.GetArrayFromImage(image)).astype(np.int16)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    n = array.shape[0]
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uids["study"], uids["series"], uids["frame"]
        ds.Modality, ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "MR", "Doe^Jane", "P1", "", "F"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = (
            "20260101",
            "120000",
            "1",
            "A1",
            "",
        )
        ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = 7, k + 1, "test"
        ds.SeriesDescription = description
        ds.ImagePositionPatient = [f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [f"{image.GetSpacing()[1]:.6f}", f"{image.GetSpacing()[0]:.6f}"]
        ds.SliceThickness = f"{image.GetSpacing()[2]:.6f}"
        ds.Rows, ds.Columns = array.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = array[k].tobytes()
        for keyword in drop:
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(folder / f"IM{(k * 37) % n:04d}.dcm", enforce_file_format=True)
    return uids


def seg_on_labelmap(seg, labelmap: sitk.Image, sources: dict[str, object]) -> np.ndarray:
    """The SEG's segment 1 on the label map's grid, each frame placed through the source instance it was derived from
    (its referenced SOP Instance UID) and checked against that instance's position."""
    volume = np.zeros(sitk.GetArrayViewFromImage(labelmap).shape, np.uint8)
    pixels = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    for frame, item in zip(pixels, seg.PerFrameFunctionalGroupsSequence):
        uid = str(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        position = [float(v) for v in sources[uid].ImagePositionPatient]
        assert np.allclose([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient], position, atol=1e-3)
        index = labelmap.TransformPhysicalPointToContinuousIndex(position)
        assert np.allclose(index[:2], 0, atol=1e-3) and abs(index[2] - round(index[2])) < 1e-3
        volume[round(index[2])] = frame
    return volume
