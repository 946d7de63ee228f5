"""One scan in, three files out: the file-level wrapper around :class:`Detector` used by the CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .io import InputError, geometry, read_image, write_image, write_json
from .progress import ProgressDisplay

OUTPUT_NAMES = ("heatmap", "labelmap")


def output_paths(out_dir: str | Path, image_format: str = "nii.gz") -> dict[str, Path]:
    out = Path(out_dir)
    return {name: out / f"{name}.{image_format}" for name in OUTPUT_NAMES} | {"summary": out / "summary.json"}


def detect_file(
    input_path: str | Path,
    out_dir: str | Path,
    model_path: str | Path | None = None,
    scorer: str | None = None,
    device: str = "auto",
    skull: str = "auto",
    threshold: float | None = None,
    image_format: str = "nii.gz",
    progress: str = "auto",
    model: Any = None,
) -> dict[str, Any]:
    """Detect anomalies in ``input_path`` and write heatmap, label map and summary into ``out_dir``."""
    from .model import Model
    from .pipeline import DetectOptions, Detector

    t_start = time.perf_counter()
    paths = output_paths(out_dir, image_format)
    source = Path(input_path).resolve()
    for path in paths.values():
        if path.resolve() == source:
            raise InputError(f"{path}: output would overwrite the input scan; choose another --out folder")
    display = ProgressDisplay(progress)
    display("read", 0.0)
    t = time.perf_counter()
    image = read_image(input_path)
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    if model is None:
        model = Model.load(model_path)
    load_s = time.perf_counter() - t
    detector = Detector(
        model, DetectOptions(scorer=scorer, skull=skull, device=device, threshold=threshold), progress=display
    )
    result = detector.detect(image)
    t = time.perf_counter()
    write_image(result.heatmap, paths["heatmap"])
    write_image(result.labelmap, paths["labelmap"])
    write_s = time.perf_counter() - t
    summary = result.summary
    summary["input"] = {"path": str(input_path), "geometry": geometry(image)}
    summary["outputs"] = {k: str(v) for k, v in paths.items()}
    summary["timings_s"] = {
        "read": round(read_s, 3),
        "load_model": round(load_s, 3),
        **summary["timings_s"],
        "write": round(write_s, 3),
        "total": round(time.perf_counter() - t_start, 3),
    }
    write_json(summary, paths["summary"])
    return summary
