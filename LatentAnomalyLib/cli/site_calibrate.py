"""`latent-anomaly calibrate`: a model's p-values calibrated on a site's own healthy scans (a new bundle).

The library does the work (:func:`LatentAnomalyLib.training.site_calibration.calibrate_site`); this door reads the
scans (a folder or a CSV with a ``path`` column, as ``batch`` does), the optional ages, checks the options, and
reports the scans left out on stderr and in ``<out>.left-out.csv``. (``python -m LatentAnomalyLib.cli.calibrate``
is the maintainers' tool that rebuilds the bundled model's IXI cross-fit; this command is the user's.)
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from ..errors import InputError
from .options import DEVICES, SKULL_MODES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="calibrate a model's p-values on your site's healthy scans",
        description="Write a copy of a model whose p-values, voxel threshold and age bands come from your own "
        "healthy scans (split conformal: the encoder and scorers are unchanged). SCANS: a folder of scans (NIfTI, "
        "NRRD, MHA, one DICOM series per sub-folder) or a CSV with a 'path' column (optional 'case_id', 'age'). "
        "Use healthy scans of one scanner and protocol, none of them a scan you will test.",
    )
    p.add_argument("--scans", required=True, help="the site's healthy scans: a folder or a CSV with a 'path' column")
    p.add_argument("--out", required=True, help="the new bundle folder (must not exist, unless --overwrite)")
    p.add_argument("--model", help="the bundle to calibrate (default: the bundled T1 model)")
    p.add_argument("--ages", help="CSV of ages in years: columns case_id (or MRID) and age (or Age)")
    p.add_argument("--alpha", type=float, default=0.05, help="the alpha the sets must reach (default 0.05)")
    p.add_argument("--description", help="the site in a few words, shown beside every p-value (default: the folder)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--skull", default="auto", choices=SKULL_MODES)
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    p.add_argument(
        "--subject-statistic", choices=("combined", "region_peak"),
        help="the subject rule of the new bundle (default: the model's; the bundled model's combined needs 39 scans "
        "for alpha 0.05, region_peak 19)",
    )


def read_ages(path: Path) -> dict[str, float]:
    """Ages by case id from a CSV (``case_id`` or ``MRID``, ``age`` or ``Age``); rows without an age left out."""
    from ..score.age_bands import check_age

    if not path.is_file():
        raise InputError(f"--ages {path}: no such file")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        id_col = next((c for c in ("case_id", "MRID", "id") if c in fields), None)
        age_col = next((c for c in ("age", "Age") if c in fields), None)
        if id_col is None or age_col is None:
            raise InputError(f"--ages {path}: needs a case_id (or MRID) column and an age (or Age) column")
        ages = {}
        for line, row in enumerate(reader, start=2):
            text = (row.get(age_col) or "").strip()
            if not text:
                continue
            try:
                ages[(row.get(id_col) or "").strip()] = check_age(float(text))
            except ValueError:
                raise InputError(f"--ages {path} row {line}: age {text!r} is not a number of years") from None
    return ages


def run(args: argparse.Namespace) -> int:
    from ..cohort.inputs import discover
    from ..encode.devices import resolve_device
    from ..score.conformal import check_alpha
    from ..training.site_calibration import calibrate_site

    try:
        alpha = check_alpha(args.alpha)
    except ValueError as error:
        raise InputError(f"--alpha: {error}") from None
    scans, out = Path(args.scans), Path(args.out)
    if not scans.exists():
        raise InputError(f"--scans {scans}: no such folder or file")
    if args.model and out.resolve() == Path(args.model).resolve():
        raise InputError("--out must differ from --model: the model you calibrate is never modified")
    occupied = any(out.iterdir()) if out.is_dir() else out.exists()
    if occupied and not args.overwrite:
        raise InputError(f"--out {out} exists; choose a new folder or pass --overwrite")
    cases, notes = discover([str(scans)])
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    ages = {c.case_id: float(c.age) for c in cases if c.age is not None}
    ages.update(read_ages(Path(args.ages)) if args.ages else {})
    device, message = resolve_device(args.device)
    if message:
        print(f"note: {message}", file=sys.stderr)
    description = (args.description or scans.resolve().stem).strip()
    if not description:
        raise InputError("--description must not be empty")
    result = calibrate_site(
        Path(args.model) if args.model else None, cases, out, description, alpha, ages or None, device, args.skull,
        log=lambda s: print(s, flush=True), subject_statistic=args.subject_statistic,
    )
    if result.rejected:
        listing = out.with_name(out.name + ".left-out.csv")
        with open(listing, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["case_id", "path", "reason"])
            writer.writerows([r.case_id, r.path, r.reason] for r in result.rejected)
        print(f"warning: {len(result.rejected)} scan(s) failed the input checks and were left out (listed in "
              f"{listing}):", file=sys.stderr)
        for r in result.rejected:
            print(f"  {r.case_id}: {r.reason}", file=sys.stderr)
    known = sum(cid in ages for cid in result.used)
    print(f"calibrated on {len(result.used)} healthy scans of {description} ({known} with an age); voxel threshold "
          f"{result.voxel_threshold:.3f}; smallest p-value {result.smallest_p_value:.4f}")
    print(f"wrote bundle {result.bundle} (version {result.version})")
    return 0
