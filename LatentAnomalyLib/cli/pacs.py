"""`latent-anomaly pacs`: analyse the T1 series of a DICOMweb PACS and store the DICOM SEG and SR back into it."""

from __future__ import annotations

import argparse

from .options import DEVICES, alpha_value

EXIT_SOME_FAILED = 3


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pacs",
        help="analyse the T1 series of a PACS (DICOMweb) and store the results back",
        description=(
            "Find MR series in a DICOMweb service (QIDO-RS), retrieve them (WADO-RS), run the detection of `detect` "
            "and store a DICOM SEG of the label map and a DICOM SR of the measurements into the same study (STOW-RS). "
            "State in --out: a series is processed once, even across restarts; failures are recorded with their "
            "reason. Credentials: --credentials FILE (JSON) or the environment variables LATENT_ANOMALY_PACS_USER and "
            "LATENT_ANOMALY_PACS_PASSWORD (basic) or LATENT_ANOMALY_PACS_TOKEN (bearer). See docs/pacs.md. "
            "Exit code 3 if any series failed."
        ),
    )
    p.add_argument("url", help="DICOMweb service root, e.g. https://pacs.example.org/dicom-web")
    p.add_argument("--out", required=True, help="state folder: state/, results/<SeriesInstanceUID>/")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="process what is there now, then stop (the default)")
    mode.add_argument("--watch", type=positive_seconds, metavar="SECONDS", help="look for new series every SECONDS")
    p.add_argument("--study", help="only this StudyInstanceUID")
    p.add_argument(
        "--series-match",
        action="append",
        metavar="FIELD=REGEX",
        help="analyse a series only when DICOM attribute FIELD matches REGEX (FIELD!=REGEX: must not match; "
        "case-insensitive; repeat for several, all must hold). Default: usual T1 series descriptions (MPRAGE, SPGR, "
        "TFE, T1w...) that do not name another contrast (docs/pacs.md)",
    )
    p.add_argument(
        "--alpha",
        type=alpha_value,
        default=0.05,
        help="false-positive rate for healthy scans: a scan is flagged when its p-value is at most alpha (default 0.05)",
    )
    p.add_argument("--workers", type=int, default=1, help="series analysed at the same time (default 1)")
    p.add_argument("--credentials", metavar="FILE", help='JSON file: {"user": ..., "password": ...} or {"token": ...}')
    p.add_argument("--model", help="model bundle folder (default: the bundled T1 model)")
    p.add_argument("--scorer", help="scorer in the bundle (default: the bundle's default)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument(
        "--retry-for",
        type=positive_seconds,
        default=600.0,
        metavar="SECONDS",
        help="how long to keep retrying an unreachable PACS, with back-off, before giving up (default 600)",
    )
    p.add_argument(
        "--key-slices",
        action="store_true",
        help="also store a secondary-capture image of the key slices with the heatmap overlay (for viewers that show "
        "neither DICOM SEG nor SR)",
    )
    p.add_argument("--retry-failed", action="store_true", help="try again the series an earlier run recorded as failed")


def run(args: argparse.Namespace) -> int:
    from ..pacs.run import PacsOptions, run_pacs

    report = run_pacs(
        PacsOptions(
            url=args.url,
            out=args.out,
            watch_s=args.watch,
            study=args.study,
            series_match=args.series_match or (),
            alpha=args.alpha,
            workers=args.workers,
            credentials=args.credentials,
            model=args.model,
            device=args.device,
            scorer=args.scorer,
            retry_for_s=args.retry_for,
            retry_failed=args.retry_failed,
            key_slices=args.key_slices,
        )
    )
    print(
        f"{report['found']} series matched ({report['refused']} MR series not matched): {report['done']} done, "
        f"{report['already']} done before, {report['failed']} failed; state in {args.out}"
    )
    return 0 if report["failed"] == 0 else EXIT_SOME_FAILED
