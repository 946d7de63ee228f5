"""Build the ``LatentAnomalyLib.cli`` command lines the module runs out of process.

Inference runs in a separate ``PythonSlicer`` process so that torch is never imported into
Slicer's GUI process and a crash, a hang or an out-of-memory error cannot take Slicer down.
The argument list is built here, in plain Python, so that it can be checked without Slicer;
invalid parameters are refused here with a clear ``ValueError`` instead of an argparse error
from the child process.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Mapping
from pathlib import Path

CLI_MODULE = "LatentAnomalyLib.cli"
DEVICES = ("auto", "cpu", "cuda")
SKULL_MODES = ("auto", "stripped", "skull")
_SCORER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")

PathLike = str | os.PathLike[str]
DEFAULT_ALPHA = 0.05  # LatentAnomalyLib.score.conformal.DEFAULT_ALPHA (the module never imports the library)


def _path_argument(value: PathLike | None, what: str) -> str:
    """A path as a command-line argument; a leading ``-`` gets ``./`` so argparse cannot take it for an option."""
    if value is None:
        raise ValueError(f"{what} is required")
    text = os.fspath(value)
    if not text.strip():
        raise ValueError(f"{what} is empty")
    if text.startswith("-"):
        text = os.path.join(".", text)
    return text


def validate_threshold(threshold: object) -> float:
    """The voxel threshold as a float; refuse booleans, text, NaN, infinities and values at or below 0 (the heatmap is
    0 outside the brain: a negative threshold would label the background), as the CLI's ``--threshold`` does."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    value = float(threshold)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"threshold must be a finite number above 0, got {value!r}")
    return value


def validate_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def validate_scorer(scorer: str | None) -> str | None:
    """``None``/empty means the bundle's default scorer; anything else must look like a scorer name."""
    if scorer is None or not scorer.strip():
        return None
    name = scorer.strip()
    if not _SCORER_NAME.fullmatch(name):
        raise ValueError(f"scorer name {scorer!r} is not valid (letters, digits, '_', '.', '-')")
    return name


def build_detect_command(
    python: PathLike,
    input_path: PathLike,
    output_dir: PathLike,
    model_dir: PathLike | None = None,
    scorer: str | None = None,
    device: str = "auto",
    skull: str = "auto",
    threshold: float | None = None,
    alpha: float = 0.05,
    age: float | None = None,
) -> list[str]:
    """``python -m LatentAnomalyLib.cli detect INPUT --out OUT --progress lines ...`` as an argument list.

    ``model_dir=None`` lets the CLI use its bundled default model, ``scorer=None`` the bundle's
    default scorer, ``threshold=None`` the calibrated voxel threshold and ``age=None`` p-values against every
    calibration scan; ``alpha`` is the subject flag's false-positive rate.
    """
    args = [
        _path_argument(python, "Python executable"),
        "-m",
        CLI_MODULE,
        "detect",
        _path_argument(input_path, "input scan"),
        "--out",
        _path_argument(output_dir, "output folder"),
        "--progress",
        "lines",
        "--device",
        validate_choice(device, DEVICES, "device"),
        "--skull",
        validate_choice(skull, SKULL_MODES, "skull mode"),
    ]
    if model_dir is not None and os.fspath(model_dir).strip():
        args += ["--model", _path_argument(model_dir, "model folder")]
    name = validate_scorer(scorer)
    if name is not None:
        args += ["--scorer", name]
    if threshold is not None:
        args += ["--threshold", repr(validate_threshold(threshold))]
    alpha = validate_number(alpha, "alpha", 0.0, 1.0, inclusive=False)
    if alpha != DEFAULT_ALPHA:  # the command line's own default otherwise
        args += ["--alpha", repr(alpha)]
    if age is not None:
        args += ["--age", repr(validate_number(age, "age", 0.0, 130.0, inclusive=True))]
    return args


def validate_number(value: object, what: str, low: float, high: float, inclusive: bool) -> float:
    """A finite real number within [low, high] (or (low, high) when not ``inclusive``), as the CLI requires."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    number = float(value)
    inside = low <= number <= high if inclusive else low < number < high
    if not (math.isfinite(number) and inside):
        bounds = f"from {low:g} to {high:g}" if inclusive else f"strictly between {low:g} and {high:g}"
        raise ValueError(f"{what} must be a number {bounds}, got {value!r}")
    return number


def build_info_command(python: PathLike, model_dir: PathLike | None = None) -> list[str]:
    """``python -m LatentAnomalyLib.cli info [--model DIR] --json``: the bundle's name, scorers and thresholds."""
    args = [_path_argument(python, "Python executable"), "-m", CLI_MODULE, "info"]
    if model_dir is not None and os.fspath(model_dir).strip():
        args += ["--model", _path_argument(model_dir, "model folder")]
    return [*args, "--json"]


def cli_environment(library_root: PathLike | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ``library_root`` first on ``PYTHONPATH`` and unbuffered output.

    Slicer adds an extension's module folder to ``sys.path`` of its own process only; a
    ``PythonSlicer`` child would not find ``LatentAnomalyLib`` without this. Unbuffered output
    makes progress lines arrive when they are printed, not when a buffer fills.
    """
    env = dict(os.environ if base is None else base)
    if library_root is not None:
        root = os.fspath(Path(library_root))
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
        env["PYTHONPATH"] = os.pathsep.join([root, *parts])
    env["PYTHONUNBUFFERED"] = "1"
    return env
