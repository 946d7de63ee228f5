"""Third round of the bad-input corpus (issue 27): intensities one voxel could move, NIfTI orientations that readers
place differently, paths that cannot be followed, contrast-inverted scans. Generated in a temporary folder;
``HOSTILE_CASES`` maps a name to (make the input, words the one error line must hold)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

SAMPLES = Path(__file__).resolve().parents[2] / "Testing" / "Data"
IXI = SAMPLES / "IXI_sample_T1.nii.gz"
MSLUB = SAMPLES / "MSLUB_patient07_T1.nii.gz"


def sample_array(path: Path = IXI) -> tuple[np.ndarray, sitk.Image]:
    image = sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32)
    return sitk.GetArrayFromImage(image), image


def write_like(array: np.ndarray, reference: sitk.Image, path: Path) -> Path:
    out = sitk.GetImageFromArray(array.astype(np.float32))
    out.CopyInformation(reference)
    sitk.WriteImage(out, str(path))
    return path


def with_spikes(tmp: Path, name: str, value: float, count: int, path: Path = IXI) -> Path:
    """The sample with ``count`` voxels, spread over the head, set to ``value``."""
    array, image = sample_array(path)
    flat = array.reshape(-1)
    flat[np.linspace(flat.size // 4, 3 * flat.size // 4, count).astype(int)] = value
    return write_like(array, image, tmp / name)


def _inverted(path: Path, inside_only: bool) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        array, image = sample_array(path)
        flipped = array.max() - array
        if inside_only:  # the brain's contrast inverted, the background kept at 0
            flipped = np.where(array > 0, flipped, 0.0)
        return write_like(flipped, image, tmp / f"inverted_{'inside' if inside_only else 'whole'}.nii.gz")

    return build


def _nifti(name: str, qform: np.ndarray | None, sform: np.ndarray | None) -> Callable[[Path], Path]:
    """A 40^3 NIfTI with the given qform and sform (``None``: its code 0)."""

    def build(tmp: Path) -> Path:
        data = np.random.default_rng(0).random((40, 40, 40)).astype(np.float32) * 100
        image = nib.Nifti1Image(data, None)
        image.set_qform(qform if qform is not None else np.eye(4), code=1 if qform is not None else 0)
        image.set_sform(sform if sform is not None else np.eye(4), code=1 if sform is not None else 0)
        nib.save(image, str(tmp / name))
        return tmp / name

    return build


def affine(shear: float = 0.0, angle: float = 0.0, shift: float = 0.0) -> np.ndarray:
    out = np.eye(4)
    out[:3, 3] = [-20.0 + shift, -20.0, -20.0]
    c, s = np.cos(angle), np.sin(angle)
    out[:2, :2] = [[c, -s], [s, c]]
    out[0, 1] += shear
    return out


def _loop(tmp: Path) -> Path:
    (tmp / "a.nii.gz").symlink_to(tmp / "b.nii.gz")
    (tmp / "b.nii.gz").symlink_to(tmp / "a.nii.gz")
    return tmp / "a.nii.gz"


def _self_loop(tmp: Path) -> Path:
    (tmp / "self.nii.gz").symlink_to("self.nii.gz")
    return tmp / "self.nii.gz"


def _through_loop(tmp: Path) -> Path:
    (tmp / "dir").symlink_to(tmp / "dir")
    return tmp / "dir" / "scan.nii.gz"


def _broken_link(tmp: Path) -> Path:
    (tmp / "scan.nii.gz").symlink_to(tmp / "moved" / "scan.nii.gz")
    return tmp / "scan.nii.gz"


def _loop_folder(tmp: Path) -> Path:
    """A DICOM 'folder' that is a link loop."""
    (tmp / "series").symlink_to(tmp / "series")
    return tmp / "series"


def _label_map(tmp: Path) -> Path:
    array, image = sample_array()
    return write_like(np.digitize(array, [1, 800, 1600]).astype(np.float32), image, tmp / "labels.nii.gz")


def _almost_constant(tmp: Path) -> Path:
    array, image = sample_array()
    flat = np.full(array.shape, 100.0, np.float32)
    flat[40:42, 50:52, 50:52] = 900.0  # 8 voxels differ: max > min, but nothing is a scan
    return write_like(flat, image, tmp / "constant.nii.gz")


def _voxel_size(factor: float) -> Callable[[Path], Path]:
    """The sample with a header voxel size ``factor`` times the real one (a brain 1/factor^3 or factor^3 too big)."""

    def build(tmp: Path) -> Path:
        image = sitk.ReadImage(str(IXI))
        image.SetSpacing([s * factor for s in image.GetSpacing()])
        sitk.WriteImage(image, str(tmp / f"voxels_x{factor:g}.nii.gz"))
        return tmp / f"voxels_x{factor:g}.nii.gz"

    return build


def _salt(tmp: Path, value: float) -> Path:
    return with_spikes(tmp, f"salt_{value:g}.nii.gz", value, 5000)


HOSTILE_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    # intensities: more spikes than a few corrupted voxels, a label map, a scan with no intensity range
    "many_spikes_1e30": (lambda t: _salt(t, 1e30), "far outside the rest"),
    "many_negative_spikes": (lambda t: _salt(t, -1e6), "far outside the rest"),
    "label_map_as_scan": (_label_map, "distinct intensities"),
    "almost_constant": (_almost_constant, "same value"),
    # a brain no human has: the header's voxel size is wrong
    "voxel_size_halved": (_voxel_size(0.5), "registration"),  # a 4 mm U-Net grid of 6 cm: a mask, then no fit
    "voxel_size_doubled": (_voxel_size(2.0), "brain mask is"),
    # contrast inverted: whole volume (air turns bright) and inside the head only (grey brighter than white)
    "inverted_whole_skull": (_inverted(IXI, False), "inverted"),
    "inverted_whole_stripped": (_inverted(MSLUB, False), "inverted"),
    "inverted_inside_stripped": (_inverted(MSLUB, True), "contrast-inverted"),
    # NIfTI orientations that readers place differently
    "sheared_sform": (_nifti("shear.nii.gz", affine(), affine(shear=0.3)), "shear"),
    "sheared_sform_without_qform": (_nifti("shear_noq.nii.gz", None, affine(shear=0.3)), "shear"),
    "sform_qform_rotated": (_nifti("rotated.nii.gz", affine(), affine(angle=0.2)), "disagree"),
    "sform_qform_shifted": (_nifti("shifted.nii.gz", affine(), affine(shift=5.0)), "5.0 mm apart"),
    "no_orientation_at_all": (_nifti("analyze_like.nii.gz", None, None), "sets no orientation"),
    # paths that cannot be followed
    "symlink_loop": (_loop, "symbolic link loop"),
    "symlink_to_itself": (_self_loop, "symbolic link loop"),
    "path_through_a_loop": (_through_loop, "symbolic link loop"),
    "broken_symlink": (_broken_link, "broken symbolic link"),
    "folder_link_loop": (_loop_folder, "symbolic link loop"),
}
