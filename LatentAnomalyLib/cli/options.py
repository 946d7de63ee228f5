"""What the subcommands share: the conformal ``--alpha`` and ``--regions`` of ``detect`` and ``batch``, ``--threshold``,
the choices of ``--device``, ``--skull`` and ``--progress``, the subject verdict line, :class:`UsageError` and
:class:`OneLineParser`."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

from ..errors import LatentAnomalyError

DEVICES = ("auto", "cpu", "cuda")
SKULL_MODES = ("auto", "stripped", "skull")
PROGRESS_MODES = ("auto", "bar", "lines", "none")


class UsageError(LatentAnomalyError):
    """A problem with the command line itself (reported as one ``error:`` line, exit code 2)."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line on stderr and exit code 2, like every other user
    error of the command (argparse's own prints the whole usage first); ``--help`` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {self.prog}: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def threshold_value(text: str) -> float:
    """``--threshold``: a voxel score threshold, a finite number above 0 (the heatmap is 0 outside the brain, so a
    negative threshold would label the background, and 0 every brain voxel with any excess)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0.0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def alpha_value(text: str) -> float:
    """``--alpha``: a false-positive rate strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def age_value(text: str) -> float:
    """``--age``: the patient's age in years (``score.age_bands.check_age``; imported here only when given)."""
    from ..score.age_bands import check_age

    try:
        return check_age(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error) if "age must" in str(error) else f"not a number: {text!r}") from None


def add_conformal_options(p: argparse.ArgumentParser) -> None:
    """``--alpha`` and ``--regions`` (see :mod:`LatentAnomalyLib.score.conformal`)."""
    p.add_argument(
        "--alpha",
        type=alpha_value,
        default=0.05,
        help="false-positive rate for healthy scans like the calibration scans: a scan is flagged when its "
        "p-value is at most alpha; the label map follows the bundle's rule at this alpha (see --regions) "
        "(default 0.05)",
    )
    p.add_argument(
        "--regions",
        choices=("calibrated", "all"),
        help="label map: the calibration's rule (calibrated, the default: every region of a flagged scan, or the "
        "regions with p-value <= alpha, as the bundle states) or every region above the voxel threshold (all; the "
        "default with --threshold or for bundles without calibration sets)",
    )


def subject_text(summary: dict) -> str:
    """The subject verdict: score, p-value and flag (or the threshold, for bundles without p-values)."""
    score = f"subject score {summary['subject_score']:.2f}"
    if summary.get("subject_p_value") is None:
        return f"{score} (threshold {summary['subject_threshold']:.2f})"
    flag = "flagged" if summary["subject_flagged"] else "not flagged"
    if summary.get("subject_region_peak") is not None:
        score += f", largest region peak {summary['subject_region_peak']:.2f}"
    matched = summary.get("age_matching")
    against = (
        f"; against the {matched['n_calibration_scans_in_band']} calibration scans aged {matched['age_band']}"
        if matched
        else ""
    )
    source = (summary.get("conformal") or {}).get("calibration_source")
    against += f"; calibration: {source}" if source else ""
    decision = summary.get("subject_decision")
    if decision:  # the statistics are another map's than the one shown (model 1.10.0's decision scorer)
        score = f"{decision['scorer']}: {score}"
    return f"{score}, p-value {summary['subject_p_value']:.3f} ({flag} at alpha {summary['alpha']:g}{against})"
