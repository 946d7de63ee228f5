"""`latent-anomaly train`: every stage from healthy scans to a model bundle, cached in a work folder.

Stages (each writes its outputs to the work folder; a stage whose outputs exist is skipped
unless forced, so a run can resume, and the GPU-heavy encoder stage can run on another machine
from the cached arrays):

1. brainmask  - train the 4 mm brain-extraction U-Net on IXI train heads (validation Dice logged);
                for an own cohort (``source``, no brain labels) copy the reference model's network
2. preprocess - run the bundle's preprocessing on train and validation scans -> cache/*.npz
                (one cache file per scan first, so an interrupted stage resumes where it stopped)
   outliers   - with ``outlier_removal`` (``--outlier-removal``): remove lesion scans by the reference model's
                cross-fitted latent statistic, before any training (``latent_outliers``)
3. encoder    - self-supervised encoder training on the cached train arrays (any family; optional
                outlier removal; data-parallel under torchrun, see ``distributed``)
4. scorers    - encode, fit every configured scorer, calibrate thresholds on validation scans
5. bundle     - write the bundle (safetensors + JSON + template NIfTI + SHA256 manifest)
6. calibration - conformal calibration sets by cross-fitting over the train and validation scans, added to the
                bundle, so its detect summaries have p-values (``calibration_stage``)

Each stage reports a progress bar (or lines) with an ETA.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..case import Case
from ..encode.families import build_encoder
from ..evaluation import datasets
from ..preprocess.brainmask_net import build_net as build_brainmask_net
from ..progress import BatchProgress
from .config import STAGES, TrainConfig
from .cpu_memory import keep_freed_memory
from .distributed import from_environment
from .own_cohort import CohortSource

Log = Callable[[str], None]


def _silent(message: str) -> None:
    return None


def _save_state(path: Path, module: torch.nn.Module) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(path))


def _load_state(path: Path, module: torch.nn.Module) -> torch.nn.Module:
    from safetensors.torch import load_file

    module.load_state_dict(load_file(str(path)))
    return module.eval()


class TrainingRun:
    def __init__(
        self,
        config: TrainConfig,
        workdir: Path,
        data_root: Path | None = None,
        device: str = "cpu",
        log: Log = print,
        max_cases: int | None = None,
        source: CohortSource | None = None,
        progress_mode: str = "none",
    ):
        self.config = config
        self.source = source
        self.progress_mode = progress_mode
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_root = data_root or datasets.data_root()
        self.device = device
        self.log = log
        self.max_cases = max_cases
        self.split_file = (
            datasets.REPO_ROOT / config.split if not Path(config.split).is_absolute() else Path(config.split)
        )

    # -- helpers --------------------------------------------------------------------------
    def cases(self, part: str, every: bool = False) -> list[Case]:
        """The part's scans, less those the outliers stage removed (unless ``every``)."""
        from .latent_outliers import removed_ids

        if self.source is not None:
            cases = self.source.cases(part, self.workdir, self.config.seed)
        else:
            cases = datasets.ixi_cases(part, self.data_root, self.split_file)
        cases = cases[: self.max_cases] if self.max_cases else cases
        removed = set() if every else removed_ids(self.workdir)
        return [c for c in cases if c.case_id not in removed]

    @property
    def sequence(self) -> str:
        return self.source.sequence if self.source is not None else "T1"

    def progress(self, stage: str, total: int) -> BatchProgress:
        """A per-stage progress display with an ETA (bar on a terminal, lines otherwise, or none)."""
        return BatchProgress(total, self.progress_mode, label=stage)

    def path(self, name: str) -> Path:
        return self.workdir / name

    def _metrics(self) -> dict[str, Any]:
        path = self.path("metrics.json")
        return json.loads(path.read_text()) if path.exists() else {}

    def metrics(self) -> dict[str, Any]:
        """Everything the stages recorded so far (``metrics.json`` of the work folder)."""
        return self._metrics()

    def _update_metrics(self, key: str, value: Any) -> None:
        if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only the first process writes
            return
        metrics = self._metrics()
        metrics[key] = value
        self.path("metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")

    def template(self):  # -> Template (SimpleITK is imported only by the stages that need it)
        from ..preprocess.template import build_template

        if self.source is not None:
            return self.source.template(self.config.preprocess.grid)
        return build_template(datasets.templates_dir(self.data_root), self.config.preprocess.grid)

    def brainmask_net(self) -> torch.nn.Module:
        return _load_state(self.path("brainmask.safetensors"), build_brainmask_net(self.config.preprocess.brainmask))

    def encoder(self) -> torch.nn.Module:
        return _load_state(self.path("encoder.safetensors"), build_encoder(self.config.encoder))

    # -- stages ---------------------------------------------------------------------------
    def run(self, stages: Sequence[str] = STAGES, force: bool = False, out: Path | None = None) -> Path | None:
        for stage in stages:
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        result = None
        for stage in STAGES:
            if stage not in stages:
                continue
            t0 = time.time()
            self.log(f"== stage {stage}")
            if stage == "bundle":
                result = self.write_bundle(out or self.path("bundle"))
            elif stage == "calibration":
                result = self.calibrate(out or self.path("bundle"))
            else:
                getattr(self, f"stage_{stage}")(force)
            self._update_metrics(f"seconds_{stage}", round(time.time() - t0, 1))
        return result

    def stage_brainmask(self, force: bool) -> None:
        from .brainmask_trainer import cached_pairs, train_brainmask

        if self.path("brainmask.safetensors").exists() and not force:
            self.log("brain mask network exists; skipping (use --force to retrain)")
            return
        if self.source is not None:
            origin = self.source.install_brainmask(self.path("brainmask.safetensors"), self.config.preprocess.brainmask)
            self.log(f"brain mask network: copied from the reference model {origin} (no brain labels to train one)")
            self._update_metrics("brainmask", {"copied_from": origin})
            return
        cfg = self.config.preprocess.brainmask
        train = cached_pairs(self.cases("train"), cfg, self.path("cache/brainmask_train.npz"), force)
        val = cached_pairs(self.cases("val"), cfg, self.path("cache/brainmask_val.npz"), force)
        net, metrics = train_brainmask(train, val, cfg, self.config.brainmask_train, self.device, self.log)
        _save_state(self.path("brainmask.safetensors"), net)
        self._update_metrics(
            "brainmask",
            {k: v for k, v in metrics.items() if k != "loss_history"} | {"final_loss": metrics["loss_history"][-1]},
        )

    def stage_preprocess(self, force: bool) -> None:
        from ..io.read import read_image
        from ..preprocess.chain import Preprocessor

        self.path("cache/scans").mkdir(parents=True, exist_ok=True)
        preprocessor = Preprocessor(self.config.preprocess, self.template(), self.brainmask_net())
        skull = self.source.skull if self.source is not None else "auto"
        for part in ("train", "val"):
            target = self.path(f"cache/{part}.npz")
            if target.exists() and not force:
                self.log(f"{target} exists; skipping")
                continue
            cases = self.cases(part)
            progress = self.progress(f"preprocess {part}", len(cases))
            images, masks, ids, info = [], [], [], []
            for case in cases:
                scan_cache = self.path(f"cache/scans/{case.case_id}.npz")
                if scan_cache.exists() and not force:  # done before an interruption
                    progress.skipped(1)
                else:
                    with torch.inference_mode():
                        pre = preprocessor.run(read_image(case.images[self.sequence.lower()]), skull)
                    details = json.dumps(pre.info | {"skull_stripped": pre.skull_stripped}, default=float)
                    np.savez_compressed(
                        scan_cache, image=pre.image.astype(np.float16), mask=pre.mask, info=np.asarray(details)
                    )
                    progress.case_done(case.case_id, "preprocessed")
                cached = np.load(scan_cache)
                images.append(cached["image"])
                masks.append(cached["mask"])
                ids.append(case.case_id)
                info.append(json.loads(str(cached["info"])))
            np.savez_compressed(target, images=np.stack(images), masks=np.stack(masks), ids=np.asarray(ids))
            self.path(f"cache/{part}_info.json").write_text(json.dumps(dict(zip(ids, info)), indent=1, default=float))

    def load_cache(self, part: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The part's preprocessed scans, less those the outliers stage removed."""
        from .latent_outliers import removed_ids

        data = np.load(self.path(f"cache/{part}.npz"))
        ids = [str(v) for v in data["ids"]]
        keep = [i for i, case in enumerate(ids) if case not in removed_ids(self.workdir)]
        return data["images"][keep].astype(np.float32), data["masks"][keep].astype(bool), [ids[i] for i in keep]

    def stage_outliers(self, force: bool) -> None:
        from .latent_outliers import stage_outliers

        stage_outliers(self, force)

    def stage_encoder(self, force: bool) -> None:
        from .encoder_trainer import train_encoder

        if self.path("encoder.safetensors").exists() and not force:
            self.log("encoder exists; skipping (use --force to retrain)")
            return
        context = from_environment(self.device)
        # A training process on the CPU: reuse freed memory instead of page-faulting every step (cpu_memory).
        reuse_memory = not context.device.startswith("cuda") and keep_freed_memory()
        images, masks, ids = self.load_cache("train")
        progress = self.progress("encoder", self.config.encoder_train.epochs) if context.rank == 0 else None

        def on_epoch(done: int, planned: int, losses: dict) -> None:
            if progress is not None:
                progress.total = planned  # grows when outlier removal restarts training
                progress.case_done(f"epoch {done}", " ".join(f"{k} {v:.4f}" for k, v in losses.items()))

        log = self.log if context.rank == 0 else _silent
        model, metrics = train_encoder(
            images, masks, self.config.encoder, self.config.encoder_train, self.device, log, on_epoch, context,
            checkpoint=self.path("encoder_checkpoint"),  # an interrupted stage resumes after its last epoch
        )
        if context.rank != 0:
            return
        _save_state(self.path("encoder.safetensors"), model)
        shutil.rmtree(self.path("encoder_checkpoint"), ignore_errors=True)
        self._update_metrics(
            "encoder",
            {
                "train_seconds": metrics["train_seconds"],
                "device": metrics["device"],
                "processes": metrics["processes"],
                "cpu_memory_reuse": reuse_memory,
                "final_losses": metrics["loss_history"][-1],
                "loss_history": metrics["loss_history"],
                "removed_as_outliers": [ids[i] for i in metrics["removed"]],
                "outlier_rounds": [
                    {
                        **r,
                        "removed": [ids[i] for i in r["removed"]],
                        "losses": {ids[int(k)]: v for k, v in r["losses"].items()},
                    }
                    for r in metrics["outlier_rounds"]
                ],
            },
        )

    def stage_scorers(self, force: bool) -> None:
        from .scorer_stage import stage_scorers

        stage_scorers(self, force, self.progress("scorers", len(self.config.scorers)))

    def training_data(self) -> dict[str, Any]:
        from .bundle_stage import training_data

        return training_data(self)

    def write_bundle(self, out: Path) -> Path:
        from .bundle_stage import write_bundle

        return write_bundle(self, out)

    def calibrate(self, out: Path) -> Path:
        from .calibration_stage import stage_calibration

        return stage_calibration(self, out)
