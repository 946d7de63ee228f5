"""Batch detection for cohorts: resumable, shardable, one failure never stops the rest."""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from pathlib import Path
from typing import Any

from .io import InputError, image_suffix, write_json

TABLE_COLUMNS = (
    "case_id",
    "status",
    "subject_score",
    "subject_flagged",
    "flagged_volume_ml",
    "flagged_fraction_of_brain",
    "n_components",
    "seconds",
    "input",
    "error",
)


def case_id_for(path: str) -> str:
    """A folder-safe id from a scan path (file name without image suffix)."""
    p = Path(path.rstrip("/"))
    name = p.name[: -len(image_suffix(p))] if image_suffix(p) else p.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "case"


def read_list(path: str) -> list[tuple[str, str]]:
    """(case_id, path) pairs from a CSV with a 'path' column or a plain list of paths."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such list file")
    text = source.read_text()
    first = text.splitlines()[0] if text.strip() else ""
    if "path" in [c.strip() for c in first.split(",")]:
        rows = list(csv.DictReader(text.splitlines()))
        return [(row.get("case_id") or case_id_for(row["path"]), row["path"]) for row in rows if row.get("path")]
    return [
        (case_id_for(line.strip()), line.strip())
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def parse_shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise InputError(f"--shard must look like i/n with 1 <= i <= n, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def run_batch(args: argparse.Namespace) -> dict[str, Any]:
    from .detect_io import detect_file, output_paths
    from .model import Model

    items = [(case_id_for(p), p) for p in args.inputs]
    if args.list:
        items += read_list(args.list)
    if not items:
        raise InputError("no scans given: pass paths or --list")
    ids = [cid for cid, _ in items]
    duplicates = sorted({cid for cid in ids if ids.count(cid) > 1})
    if duplicates:
        raise InputError(f"case ids are not unique ({', '.join(duplicates[:5])}); give a CSV with a case_id column")
    index, count = parse_shard(args.shard)
    items = items[index - 1 :: count]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = Model.load(args.model)
    rows, failures = [], []
    done = skipped = 0
    for number, (case_id, path) in enumerate(items, start=1):
        case_dir = out / case_id
        summary_path = output_paths(case_dir)["summary"]
        t0 = time.perf_counter()
        row: dict[str, Any] = {"case_id": case_id, "input": path}
        if summary_path.exists() and not args.no_resume:
            summary = json.loads(summary_path.read_text())
            if summary.get("model", {}).get("version") == model.version:
                row.update(_row(summary), status="done (earlier run)")
                rows.append(row)
                skipped += 1
                continue
        print(f"[{number}/{len(items)}] {case_id}", flush=True)
        try:
            summary = detect_file(
                path,
                case_dir,
                model=model,
                scorer=args.scorer,
                device=args.device,
                skull=args.skull,
                threshold=args.threshold,
                progress=args.progress,
            )
            row.update(_row(summary), status="done")
            done += 1
        except Exception as error:  # one bad scan must not stop a cohort
            row.update(status="failed", error=str(error).splitlines()[0] if str(error) else type(error).__name__)
            failures.append(f"{case_id}: {row['error']}")
        row["seconds"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
    suffix = "" if args.shard == "1/1" else f"_shard{index}of{count}"
    table = out / f"cohort{suffix}.csv"
    _write_table(rows, table)
    write_json({"rows": rows}, out / f"cohort{suffix}.json")
    return {"done": done, "skipped": skipped, "failed": len(failures), "failures": failures, "table": str(table)}


def _row(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        k: summary.get(k)
        for k in ("subject_score", "subject_flagged", "flagged_volume_ml", "flagged_fraction_of_brain", "n_components")
    }


def _write_table(rows: list[dict[str, Any]], path: Path) -> None:
    import io as _io

    from .io import atomic_path

    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in TABLE_COLUMNS})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())
