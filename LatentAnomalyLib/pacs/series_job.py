"""One source series through the PACS door: retrieve, check, detect, make the SEG and SR, store them, record it.

The order is chosen so that nothing reaches the PACS for a series that fails: everything that decides whether a SEG
can be made is checked on the retrieved headers before the detection, the SEG and SR are made locally, and only then
are they stored, in one STOW-RS request, skipping any the PACS already holds (an earlier attempt killed after
storing). The detection is ``outputs.detection.detect_file``, the same as ``latent-anomaly detect``; its files stay in
``<out>/results/<SeriesInstanceUID>/`` with ``measurements.sr.dcm``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LatentAnomalyError
from .dicomweb import DicomWebClient, PacsAuthError, PacsError, PacsUnavailable
from .state import RunState
from .uids import ResultUids, result_uids

SR_NAME = "measurements.sr.dcm"
SC_NAME = "key_slices.sc.dcm"


@dataclass(frozen=True)
class DetectSettings:
    """What the detection of every series uses (the options of ``detect`` that the PACS door offers)."""

    alpha: float = 0.05
    device: str = "auto"
    scorer: str | None = None
    key_slices: bool = False


@dataclass(frozen=True)
class SeriesRef:
    """A series found in the PACS: its study and series UIDs."""

    study: str
    series: str


class SeriesJob:
    """Processes series one at a time (one instance per worker thread; the model is shared and read-only)."""

    def __init__(
        self,
        client: DicomWebClient,
        state: RunState,
        model: Any,
        settings: DetectSettings,
        log: Callable[[str], None],
    ) -> None:
        self.client, self.state, self.model, self.settings, self.log = client, state, model, settings, log

    def uids(self, series: str) -> ResultUids:
        scorer = self.settings.scorer or self.model.default_scorer
        return result_uids(series, self.model.name, self.model.version, scorer, self.settings.alpha)

    def in_pacs(self, ref: SeriesRef, uids: ResultUids) -> list[str]:
        """The kinds (seg, sr) of this series' results that the PACS already holds."""
        found = []
        for kind, uid in uids.series(self.settings.key_slices).items():
            if self.client.search_series({"SeriesInstanceUID": uid}, study=ref.study):
                found.append(kind)
        return found

    def run(self, ref: SeriesRef) -> str:
        """Process ``ref``; return "done" or "failed" (recorded in the state). A PACS that stays unreachable or
        refuses the credentials ends the run instead (nothing is recorded, so the series is done on the next one)."""
        work = self.state.folder / "work" / ref.series
        try:
            timings: dict[str, float] = {}
            stored, found = self._process(ref, work, timings)
        except (PacsAuthError, PacsUnavailable):
            raise
        except (LatentAnomalyError, FileNotFoundError) as error:
            return self._failed(ref, str(error))
        except Exception as error:  # a bug must not stop the other series; the reason is kept
            return self._failed(ref, f"unexpected failure ({type(error).__name__}: {error})")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.state.done(ref.series, ref.study, stored, found, timings)
        what = f"stored {', '.join(stored)}" if stored else "already in the PACS"
        self.log(f"series {ref.series}: done ({what})")
        return "done"

    def _failed(self, ref: SeriesRef, reason: str) -> str:
        reason = " ".join(reason.split())
        self.state.failed(ref.series, ref.study, reason)
        self.log(f"series {ref.series}: failed: {reason}")
        return "failed"

    def _process(self, ref: SeriesRef, work: Path, timings: dict[str, float]) -> tuple[list[str], list[str]]:
        """Stored and already-present series UIDs; ``timings`` gets the seconds of each step (for the state record)."""
        clock = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal clock
            timings[step] = round(time.perf_counter() - clock, 3)
            clock = time.perf_counter()

        uids = self.uids(ref.series)
        found = self.in_pacs(ref, uids)
        series = uids.series(self.settings.key_slices)
        lap("ask_pacs")
        if len(found) == len(series):
            return [], list(series.values())
        files = self._retrieve(ref, work / "dicom")
        lap("retrieve")
        results = self._detect(ref, files, work, uids, lap)
        objects = {"seg": results / "labelmap.seg.dcm", "sr": results / SR_NAME, "sc": results / SC_NAME}
        missing = [kind for kind in series if kind not in found]
        self.client.store(ref.study, [objects[kind].read_bytes() for kind in missing])
        lap("store")
        return [series[k] for k in missing], [series[k] for k in found]

    def _retrieve(self, ref: SeriesRef, folder: Path) -> list[Path]:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        files = []
        for number, data in enumerate(self.client.retrieve_series(ref.study, ref.series)):
            path = folder / f"{number:05d}.dcm"
            path.write_bytes(data)
            files.append(path)
        if not files:
            raise PacsError(f"series {ref.series}: the PACS returned no instances")
        return files

    def _detect(
        self, ref: SeriesRef, files: list[Path], work: Path, uids: ResultUids, lap: Callable[[str], None]
    ) -> Path:
        import pydicom

        from ..io.publish import output_folder
        from ..io.write import atomic_path
        from ..outputs.detection import RESULT_NAMES, detect_file
        from ..outputs.dicom_sources import SegUnavailable, seg_sources
        from ..outputs.dicom_sr import build_report
        from ..outputs.library_messages import library_messages

        try:
            sources = seg_sources(files)  # before the detection: a series that cannot carry a SEG is refused now
        except SegUnavailable as error:
            raise SegUnavailable(f"cannot make a DICOM SEG: {error}") from None
        lap("check_seg_sources")
        results = self.state.folder / "results" / ref.series
        with output_folder(results, True, {*RESULT_NAMES, SR_NAME, SC_NAME}, inputs=(work,)) as staging:
            summary = detect_file(
                work / "dicom", staging, final_dir=results, model=self.model, device=self.settings.device,
                scorer=self.settings.scorer, alpha=self.settings.alpha, progress="none",
                dicom_uids=(uids.seg_series, uids.seg_instance), dicom_seg_sources=sources,
            )  # fmt: skip
            lap("detect")
            if not (staging / "labelmap.seg.dcm").is_file():
                raise SegUnavailable(f"cannot make a DICOM SEG: {'; '.join(summary['warnings'])}")
            with library_messages(sources.notes):
                seg = pydicom.dcmread(staging / "labelmap.seg.dcm")
                report = build_report(summary, sources.datasets, seg, uids.sr_series, uids.sr_instance)
                with atomic_path(staging / SR_NAME) as tmp:
                    report.save_as(tmp)
                if self.settings.key_slices:
                    self._key_slices(staging, work / "dicom", sources.datasets[0], summary, uids)
        lap("report")
        return results

    def _key_slices(self, staging: Path, scan: Path, reference: Any, summary: dict[str, Any], uids: ResultUids) -> None:
        """The key-slices capture (``--key-slices``) of the scan and the detection's maps, beside the SEG and SR."""
        import SimpleITK as sitk

        from ..io.read import read_image
        from ..io.write import atomic_path
        from ..outputs.key_slices import key_slices_capture, key_slices_picture

        maps = [sitk.ReadImage(str(staging / f"{name}.nii.gz")) for name in ("heatmap", "labelmap")]
        picture = key_slices_picture(read_image(scan), *maps, float(summary["voxel_threshold"]))
        number = 1002 + int(getattr(reference, "SeriesNumber", 0) or 0)
        capture = key_slices_capture(picture, reference, uids.sc_series, uids.sc_instance, number)
        with atomic_path(staging / SC_NAME) as tmp:
            capture.save_as(tmp)
