"""`latent-anomaly train`: its options, configuration overrides and the own-cohort source, handed to the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from .options import DEVICES, PROGRESS_MODES, SKULL_MODES

REPO_ROOT = Path(__file__).resolve().parents[2]  # relative --config paths also resolve here


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model bundle on healthy scans",
        description="Train a model bundle from a configuration file, on the IXI split of the research data or "
        "on your own healthy scans (--scans).",
    )
    p.add_argument(
        "--config", default="configs/default_t1.json", help="training configuration (JSON; default: %(default)s)"
    )
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--workdir", help="folder for stage outputs and caches (default: <out>.work)")
    p.add_argument(
        "--stages", default="all", help="comma-separated subset of: brainmask,preprocess,outliers,encoder,scorers,bundle,calibration"
    )
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--data", help="data root (default: $LATENT_ANOMALY_DATA or ../shared/data)")
    p.add_argument("--force", action="store_true", help="redo stages whose outputs exist")
    p.add_argument("--max-cases", type=int, help="use only the first N scans of each split part (smoke tests)")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a configuration entry, e.g. encoder_train.epochs=2",
    )
    p.add_argument("--scans", help="your own healthy scans: a folder of images or a CSV with a 'path' column")
    p.add_argument("--sequence", default="T1", help="the scans' sequence, recorded in the bundle (default: T1)")
    p.add_argument(
        "--skull",
        default="auto",
        choices=SKULL_MODES,
        help="with --scans: skull-stripped scans or not (auto: decided per scan; skull: the reference model's "
        "brain-extraction network)",
    )
    p.add_argument("--val-fraction", type=float, default=0.2, help="with --scans: validation share (default 0.2)")
    p.add_argument("--reference-model", help="with --scans: bundle whose brain-mask network and templates to reuse")
    p.add_argument(
        "--outlier-removal",
        nargs="?",
        const="latent",
        choices=("latent", "loss"),
        help="remove lesion scans from the training set: 'latent' (the default when given alone) by the reference "
        "model's cross-fitted latent statistic before training (docs/site-calibration.md); 'loss' by the "
        "reconstruction loss during training, then restart (Behrendt et al. 2022)",
    )
    p.add_argument("--outlier-z", type=float, help="latent: robust z-score above which a scan is removed (3.5)")
    p.add_argument("--outlier-gamma", type=float, help="loss: threshold gamma x the mean loss (default 1.5)")
    p.add_argument("--progress", default="auto", choices=PROGRESS_MODES)


def _apply_overrides(raw: dict, overrides: Sequence[str]) -> dict:
    for item in overrides:
        if "=" not in item:
            raise InputError(f"--override needs KEY=JSON, got {item!r}")
        key, value = item.split("=", 1)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parsed
    return raw


def run(args: argparse.Namespace) -> int:
    """Build a bundle from a configuration (and, with ``--scans``, the user's own healthy scans)."""
    from ..encode.devices import resolve_device
    from ..io.text_files import MAX_JSON_BYTES, read_text_limited
    from ..training.config import STAGES, TrainConfig
    from ..training.run import TrainingRun

    config_path = Path(args.config)
    if not config_path.is_file() and not config_path.is_absolute() and (REPO_ROOT / config_path).is_file():
        config_path = REPO_ROOT / config_path  # the default, from outside the checkout
    if not config_path.is_file():
        raise InputError(f"{config_path}: no such configuration file")
    try:
        raw = json.loads(read_text_limited(config_path, MAX_JSON_BYTES, "configuration file"))
    except json.JSONDecodeError as error:
        raise InputError(f"{config_path}: invalid JSON ({error.msg} at line {error.lineno})") from None
    overrides = list(args.override) + ["encoder_train.outlier_removal=true"] * (args.outlier_removal == "loss")
    if args.outlier_removal == "latent":
        z = args.outlier_z if args.outlier_z is not None else 3.5
        overrides.append(f'outlier_removal={{"criterion": "latent", "z": {z}}}')
    overrides += [f"encoder_train.outlier_gamma={args.outlier_gamma}"] if args.outlier_gamma is not None else []
    try:
        config = TrainConfig.from_dict(_apply_overrides(raw, overrides))
    except (ValueError, TypeError) as error:
        raise InputError(f"{config_path}: {error}") from None
    stages = STAGES if args.stages == "all" else tuple(s.strip() for s in args.stages.split(","))
    device, message = resolve_device(args.device)
    if message:
        print(f"note: {message}", file=sys.stderr)
    out = Path(args.out)
    workdir = Path(args.workdir) if args.workdir else out.with_name(out.name + ".work")
    run = TrainingRun(
        config,
        workdir,
        Path(args.data) if args.data else None,
        device,
        log=lambda s: print(s, flush=True),
        max_cases=args.max_cases,
        source=_cohort_source(args, workdir, config.seed),
        progress_mode=args.progress,
    )
    result = run.run(stages, force=args.force, out=out)
    if result:
        print(f"wrote bundle {result}")
    return 0


def _cohort_source(args: argparse.Namespace, workdir: Path, seed: int) -> object:
    """``--scans``: the own-cohort source, its split drawn (or read back) now so bad input fails first."""
    from ..training.own_cohort import CohortSource

    if not args.scans:
        return None
    source = CohortSource(
        Path(args.scans),
        args.sequence,
        args.skull,
        args.val_fraction,
        Path(args.reference_model) if args.reference_model else None,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        source.split(workdir, seed)
    except ValueError as error:
        raise InputError(str(error)) from None
    return source
