"""What the PACS door costs over `detect`: `latent-anomaly pacs --once` on one series against a local Orthanc.

    python benchmarks/pacs_overhead.py [--repeats 3] [--device cpu]

Needs Debian's `orthanc` and `orthanc-dicomweb` (as the tests do). The committed IXI sample is written as an MR
series (tests/pacs/series.py) and uploaded to an Orthanc started on 127.0.0.1 with a temporary storage; then, in
turns so that the machine's load hits each alike, three commands run as child processes, wall clock measured:

- `detect SERIES` (the detection itself, from the series folder on disk),
- `detect SERIES --dicom-seg` (the same with the SEG the PACS door also makes),
- `pacs URL --once` with a fresh state folder (QIDO search, WADO retrieval, the same detection and SEG, the SR, the
  STOW store); the SEG and SR it stored are deleted from Orthanc before the next turn, so every turn does the work.

Prints one row per turn and the medians; the target is an overhead of at most 5 s over `detect`. Wall clocks of
separate processes on a shared machine differ by seconds from turn to turn, so the row also gives the steps that
`pacs` timed itself (its state record's `timings_s`: asking the PACS, retrieval, the SEG checks, the detection, the
SEG/SR made and published, the store); "door steps" is their sum without the detection, the door's own cost.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import machine  # noqa: E402

from LatentAnomalyLib.evaluation.outputs import markdown_table  # noqa: E402
from tests.pacs.orthanc import PASSWORD, USER, Orthanc, dicomweb_plugin, orthanc_binary  # noqa: E402
from tests.pacs.series import write_series  # noqa: E402

CLI = [sys.executable, "-m", "LatentAnomalyLib.cli.main"]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[3:5])} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return wall


def remove_results(orthanc: Orthanc) -> None:
    for modality in ("SEG", "SR"):
        for series in orthanc.series_of(modality):
            orthanc.rest(f"/series/{series['ID']}", method="DELETE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if orthanc_binary() is None or dicomweb_plugin() is None:
        raise SystemExit("Orthanc or its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)")
    import SimpleITK as sitk

    env = dict(os.environ, LATENT_ANOMALY_PACS_USER=USER, LATENT_ANOMALY_PACS_PASSWORD=PASSWORD)
    work = Path(tempfile.mkdtemp(prefix="pacs-overhead-"))
    orthanc = Orthanc(work / "orthanc")
    try:
        orthanc.start()
        series = work / "series"
        write_series(sitk.ReadImage(str(REPO / "Testing" / "Data" / "IXI_sample_T1.nii.gz")), series)
        orthanc.upload(series)
        rows = []
        for turn in range(1, args.repeats + 1):
            common = ["--device", args.device, "--progress", "none"]
            detect = timed([*CLI, "detect", str(series), "--out", str(work / f"d{turn}"), *common], env)
            with_seg = timed(
                [*CLI, "detect", str(series), "--out", str(work / f"s{turn}"), *common, "--dicom-seg"], env
            )
            state = work / f"p{turn}"
            pacs = timed([*CLI, "pacs", orthanc.url, "--out", str(state), "--once", "--device", args.device], env)
            records = [json.loads(p.read_text()) for p in (state / "state").glob("*.json")]
            if [r["status"] for r in records] != ["done"] or len(records[0]["stored"]) != 2:
                raise SystemExit(f"pacs did not store the SEG and SR: {records}")
            remove_results(orthanc)
            steps = records[0]["timings_s"]
            rows.append(
                {
                    "turn": str(turn),
                    "detect s": detect,
                    "detect --dicom-seg s": with_seg,
                    "pacs --once s": pacs,
                    "overhead vs detect s": pacs - detect,
                    "overhead vs detect --dicom-seg s": pacs - with_seg,
                    **{f"pacs: {step} s": float(value) for step, value in steps.items()},
                    "door steps s": sum(float(v) for k, v in steps.items() if k != "detect"),
                }
            )
        columns = list(rows[0])
        rows.append({"turn": "median", **{c: statistics.median(r[c] for r in rows) for c in columns[1:]}})
        print(f"pacs --once vs detect on the committed IXI sample as a 90-slice MR series; {machine()}\n")
        print(markdown_table(rows, columns))
    finally:
        orthanc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
