"""How far beyond their robust intensity range do real scans reach? The margin behind ``preprocess/intensity_screen``.

    python benchmarks/intensity_outliers.py [--data ../shared/data]

For every scan here (committed samples, IXI, BraTS T1/T2/FLAIR, MSLUB, other sites) prints, per dataset, the largest
excess of the maximum above the robust range and of the minimum below it, in units of that range
(``(max - p_high) / (p_high - p_low)``, with the screen's own percentiles), and how many scans the screen would
touch (clip or refuse). A screen must leave every one of them alone: their images then go through preprocessing
bit-identical, so the bundled model's calibration is unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from LatentAnomalyLib.preprocess.intensity_screen import (  # noqa: E402
    border_level,
    robust_range,
    screen_intensities,
    tail_jump,
)


def groups(data: Path) -> dict[str, list[Path]]:
    return {
        "samples": sorted((REPO / "Testing" / "Data").glob("*_T1.nii.gz")) + sorted((REPO / "Testing" / "Data").glob("*_FLAIR.nii.gz")),
        "ixi-t1": sorted((data / "ixi-t1" / "t1").glob("*.nii.gz")),
        "brats-t1/t2/flair": sorted(p for p in (data / "brats2018").glob("*/*.nii.gz") if not p.name.endswith("_seg.nii.gz")),
        "mslub": sorted(p for p in (data / "mslub").glob("*/*.nii.gz") if "GOLD" not in p.name),
        "other-sites": sorted((data / "other-sites").glob("**/*.nii.gz")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    print("| dataset | scans | worst (max - p_high) / range | worst (p_low - min) / range | brightest border "
          "(median, share of range) | largest step between tail percentiles | touched by the screen |")
    print("|---|---|---|---|---|---|---|")
    for name, paths in groups(Path(args.data)).items():
        highs, lows, borders, spreads, touched = [], [], [], [], []
        for path in paths:
            image = sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32)
            values = sitk.GetArrayViewFromImage(image)
            low, high = robust_range(values)
            span = max(high - low, 1e-12)
            highs.append((float(values.max()) - high) / span)
            lows.append((low - float(values.min())) / span)
            borders.append(border_level(values, low, high))
            spreads.append(tail_jump(values))
            try:
                _, notes = screen_intensities(image, path)
                if notes:
                    touched.append(path.name)
            except Exception as error:
                touched.append(f"{path.name} ({error})")
        if paths:
            print(
                f"| {name} | {len(paths)} | {max(highs):.2f} | {max(lows):.2f} | {max(borders):.3f} | {max(spreads):.2f} | "
                f"{len(touched)} {touched[:3]} |"
            )


if __name__ == "__main__":
    main()
