"""`latent-anomaly train`: every stage from healthy scans to a model bundle, cached in a work folder.

Stages (each writes its outputs to the work folder; a stage whose outputs exist is skipped
unless forced, so a run can resume, and the GPU-heavy encoder stage can run on another machine
from the cached arrays):

1. brainmask  - train the 4 mm brain-extraction U-Net on IXI train heads (validation Dice logged)
2. preprocess - run the bundle's preprocessing on IXI train and validation scans -> cache/*.npz
3. encoder    - self-supervised encoder training on the cached train arrays
4. scorers    - encode, fit every configured scorer, calibrate thresholds on validation scans
5. bundle     - write the bundle (safetensors + JSON + template NIfTI + SHA256 manifest)
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import datasets
from ..brainmask_net import build_net as build_brainmask_net
from ..bundle import BundleWriter
from ..encoders import build_encoder
from ..scorers import LATENT_SCORERS, EncodedScan, scorer_class
from ..scorers.base import latent_grid_mask, mirror_x
from ..scorers.location import LatentSpace
from .config import STAGES, TrainConfig

Log = Callable[[str], None]
RESIDUAL_FIT_SCANS = 32


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
    ):
        self.config = config
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
    def cases(self, part: str) -> list[datasets.Case]:
        cases = datasets.ixi_cases(part, self.data_root, self.split_file)
        return cases[: self.max_cases] if self.max_cases else cases

    def path(self, name: str) -> Path:
        return self.workdir / name

    def _metrics(self) -> dict[str, Any]:
        path = self.path("metrics.json")
        return json.loads(path.read_text()) if path.exists() else {}

    def _update_metrics(self, key: str, value: Any) -> None:
        metrics = self._metrics()
        metrics[key] = value
        self.path("metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")

    def template(self):  # -> Template (SimpleITK is imported only by the stages that need it)
        from ..template import build_template

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
            else:
                getattr(self, f"stage_{stage}")(force)
            self._update_metrics(f"seconds_{stage}", round(time.time() - t0, 1))
        return result

    def brainmask_cache(self, part: str, force: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """4 mm heads and brain labels, cached as uint8 (the cache is the network's training input)."""
        from .brainmask_trainer import load_cases

        path = self.path(f"cache/brainmask_{part}.npz")
        if force or not path.exists():
            path.parent.mkdir(exist_ok=True)
            pairs = load_cases(self.cases(part), self.config.preprocess.brainmask)
            arrays = {}
            for i, (x, y) in enumerate(pairs):
                arrays[f"x{i}"] = np.round(np.clip(x, 0.0, 1.5) / 1.5 * 255).astype(np.uint8)
                arrays[f"y{i}"] = y.astype(np.uint8)
            np.savez_compressed(path, **arrays)
        data = np.load(path)
        n = len([k for k in data.files if k.startswith("x")])
        return [(data[f"x{i}"].astype(np.float32) / 255 * 1.5, data[f"y{i}"]) for i in range(n)]

    def stage_brainmask(self, force: bool) -> None:
        from .brainmask_trainer import train_brainmask

        if self.path("brainmask.safetensors").exists() and not force:
            self.log("brain mask network exists; skipping (use --force to retrain)")
            return
        cfg = self.config.preprocess.brainmask
        train = self.brainmask_cache("train", force)
        val = self.brainmask_cache("val", force)
        net, metrics = train_brainmask(train, val, cfg, self.config.brainmask_train, self.device, self.log)
        _save_state(self.path("brainmask.safetensors"), net)
        self._update_metrics(
            "brainmask",
            {k: v for k, v in metrics.items() if k != "loss_history"} | {"final_loss": metrics["loss_history"][-1]},
        )

    def stage_preprocess(self, force: bool) -> None:
        from ..io import read_image
        from ..preprocess import Preprocessor

        self.path("cache").mkdir(exist_ok=True)
        preprocessor = Preprocessor(self.config.preprocess, self.template(), self.brainmask_net())
        for part in ("train", "val"):
            target = self.path(f"cache/{part}.npz")
            if target.exists() and not force:
                self.log(f"{target} exists; skipping")
                continue
            images, masks, ids, info = [], [], [], []
            for i, case in enumerate(self.cases(part)):
                with torch.inference_mode():
                    pre = preprocessor.run(read_image(case.images["t1"]))
                images.append(pre.image.astype(np.float16))
                masks.append(pre.mask)
                ids.append(case.case_id)
                info.append(pre.info | {"skull_stripped": pre.skull_stripped})
                self.log(f"preprocess {part} {i + 1}/{len(self.cases(part))} {case.case_id}")
            np.savez_compressed(target, images=np.stack(images), masks=np.stack(masks), ids=np.asarray(ids))
            self.path(f"cache/{part}_info.json").write_text(json.dumps(dict(zip(ids, info)), indent=1, default=float))

    def load_cache(self, part: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        data = np.load(self.path(f"cache/{part}.npz"))
        return data["images"].astype(np.float32), data["masks"].astype(bool), [str(v) for v in data["ids"]]

    def stage_encoder(self, force: bool) -> None:
        from .encoder_trainer import train_encoder

        if self.path("encoder.safetensors").exists() and not force:
            self.log("encoder exists; skipping (use --force to retrain)")
            return
        images, masks, _ = self.load_cache("train")
        model, metrics = train_encoder(
            images, masks, self.config.encoder, self.config.encoder_train, self.device, self.log
        )
        _save_state(self.path("encoder.safetensors"), model)
        self._update_metrics(
            "encoder",
            {
                "train_seconds": metrics["train_seconds"],
                "device": metrics["device"],
                "final_losses": metrics["loss_history"][-1],
            },
        )

    def stage_scorers(self, force: bool) -> None:
        from safetensors.numpy import save_file

        from .calibrate import build_synthetic_set, calibrate_scorer, choose_postprocess, synthetic_validation
        from .encoder_trainer import encode_all

        encoder = self.encoder().to(self.device)
        images, masks, ids = self.load_cache("train")
        val_images, val_masks, val_ids = self.load_cache("val")
        stride = self.config.encoder.stride
        t0 = time.time()
        latents = encode_all(encoder, images, self.device)
        mirrored = encode_all(encoder, mirror_x(images), self.device)
        cells = np.stack([latent_grid_mask(m, stride) for m in masks])
        flat = np.moveaxis(latents, 1, -1)[cells]
        mean, std = flat.mean(axis=0), flat.std(axis=0) + 1e-6
        save_file(
            {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}, str(self.path("latent_stats.safetensors"))
        )

        def standardise(z: np.ndarray) -> np.ndarray:
            return ((z - mean[None, :, None, None, None]) / std[None, :, None, None, None]).astype(np.float32)

        latents, mirrored = standardise(latents), standardise(mirrored)
        val_latents = standardise(encode_all(encoder, val_images, self.device))
        self.log(f"encoded train, mirrored train and validation scans in {time.time() - t0:.0f}s")
        reconstructions = None
        fit_scans = [EncodedScan(img, m, z, subject=sid) for img, m, z, sid in zip(images, masks, latents, ids)]
        fit_scans += [
            EncodedScan(mirror_x(img), mirror_x(m), z, subject=sid)
            for img, m, z, sid in zip(images, masks, mirrored, ids)
        ]
        val_scans = [
            EncodedScan(img, m, z, subject=sid) for img, m, z, sid in zip(val_images, val_masks, val_latents, val_ids)
        ]
        mirror = any(spec.params.get("mirror_average", False) for spec in self.config.scorers)
        if mirror:  # test-time mirroring: calibration must see the same two views detect averages
            for scan, z in zip(val_scans, standardise(encode_all(encoder, mirror_x(val_images), self.device))):
                scan.mirrored_latent = z
        if any("reconstruction" in scorer_class(s.name).needs for s in self.config.scorers):
            # The residual baseline's per-voxel spread is estimated on the first RESIDUAL_FIT_SCANS
            # training scans: the decoder runs at full resolution, the slowest step on a CPU.
            n_fit = min(RESIDUAL_FIT_SCANS, len(images))
            reconstructions = (
                _reconstruct(encoder, images[:n_fit], self.device),
                _reconstruct(encoder, val_images, self.device),
            )
            for scan, (rec, filtered) in zip(fit_scans[:n_fit], reconstructions[0]):
                scan.reconstruction, scan.filtered = rec, filtered
            for scan, (rec, filtered) in zip(val_scans, reconstructions[1]):
                scan.reconstruction, scan.filtered = rec, filtered
        needs_rec = reconstructions is not None
        synthetic = build_synthetic_set(val_scans, encoder, mean, std, self.device, self.config.seed, needs_rec, mirror)
        scorer_dir = self.path("scorers")
        if scorer_dir.exists():
            shutil.rmtree(scorer_dir)
        scorer_dir.mkdir()
        calibration: dict[str, Any] = {
            "voxel_fpr": self.config.calibration.voxel_fpr,
            "subject_fpr": self.config.calibration.subject_fpr,
            "scorers": {},
        }
        fit_metrics = {}
        space = None
        if any(s.name in LATENT_SCORERS for s in self.config.scorers):
            t = time.time()
            space = LatentSpace(self.config.location_config()).fit(fit_scans)
            arrays, meta = space.state()
            save_file(
                {k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(scorer_dir / "latent_space.safetensors")
            )
            (scorer_dir / "latent_space.json").write_text(json.dumps(meta, indent=1) + "\n")
            fit_metrics["latent_space"] = {"fit_seconds": round(time.time() - t, 1), "positions": len(space.positions)}
            self.log(f"latent space: {len(space.positions)} locations fitted in {time.time() - t:.0f}s")
        for spec in self.config.scorers:
            cls = scorer_class(spec.name)
            t = time.time()
            if spec.name in LATENT_SCORERS:
                scorer = cls(self.config.location_config(), standardise=spec.standardise, **spec.params)
                scorer.fit(fit_scans, space=space)
            else:
                scorer = cls(**spec.params)
                n_fit = RESIDUAL_FIT_SCANS if "reconstruction" in cls.needs else len(images)
                scorer.fit(fit_scans[: min(n_fit, len(images))])  # unmirrored training scans
            fit_seconds = time.time() - t
            arrays, meta = scorer.state()
            if arrays:
                save_file(
                    {k: np.ascontiguousarray(v) for k, v in arrays.items()},
                    str(scorer_dir / f"{spec.name}.safetensors"),
                )
            (scorer_dir / f"{spec.name}.json").write_text(json.dumps(meta, indent=1) + "\n")
            post, search = choose_postprocess(scorer, synthetic, spec.postprocess, self.config.postprocess)
            calibration["scorers"][spec.name] = calibrate_scorer(scorer, val_scans, post, self.config.calibration)
            check = synthetic_validation(scorer, synthetic, post)
            fit_metrics[spec.name] = {
                "fit_seconds": round(fit_seconds, 1),
                "synthetic_validation": check,
                "postprocess_search": search,
                "postprocess": post,
            }
            self.log(
                f"scorer {spec.name}: fit {fit_seconds:.0f}s, threshold {calibration['scorers'][spec.name]['voxel_threshold']:.3f}, "
                f"synthetic-lesion validation AUROC {check['auroc']:.3f} AUPRC {check['auprc']:.3f}"
            )
        self.path("calibration.json").write_text(json.dumps(calibration, indent=1) + "\n")
        self._update_metrics("scorers", fit_metrics)

    def write_bundle(self, out: Path) -> Path:
        cfg = self.config
        writer = BundleWriter(out)
        try:
            template = self.template()
            import SimpleITK as sitk

            for name in ("t1", "gm", "wm"):
                target = str(writer.target(f"template_{name}.nii.gz"))
                sitk.WriteImage(template.as_image(name), target, useCompression=True)
            writer.add_file("brainmask.safetensors", self.path("brainmask.safetensors"))
            writer.add_file("encoder.safetensors", self.path("encoder.safetensors"))
            writer.add_file("latent_stats.safetensors", self.path("latent_stats.safetensors"))
            scorers = {}
            if self.path("scorers/latent_space.safetensors").exists():
                writer.add_file("scorers/latent_space.safetensors", self.path("scorers/latent_space.safetensors"))
                writer.add_file("scorers/latent_space.json", self.path("scorers/latent_space.json"))
            for spec in cfg.scorers:
                entry = {"meta": f"scorers/{spec.name}.json"}
                writer.add_file(entry["meta"], self.path(f"scorers/{spec.name}.json"))
                if self.path(f"scorers/{spec.name}.safetensors").exists():
                    entry["arrays"] = f"scorers/{spec.name}.safetensors"
                    writer.add_file(entry["arrays"], self.path(entry["arrays"]))
                scorers[spec.name] = entry
            resolved = cfg.resolved()
            writer.add_json(
                "config.json",
                {
                    "name": cfg.name,
                    "version": cfg.version,
                    "description": cfg.description,
                    "modality": "T1",
                    "preprocess": resolved["preprocess"],
                    "encoder": resolved["encoder"],
                    "template_files": {k: f"template_{k}.nii.gz" for k in ("t1", "gm", "wm")},
                    "scorers": scorers,
                    "latent_space": {"arrays": "scorers/latent_space.safetensors", "meta": "scorers/latent_space.json"}
                    if self.path("scorers/latent_space.safetensors").exists()
                    else None,
                    "default_scorer": cfg.default_scorer,
                    "training": resolved,
                    "training_data": {
                        "dataset": "IXI T1 (healthy)",
                        "split_file": cfg.split,
                        "train_subjects": [c.case_id for c in self.cases("train")],
                        "validation_subjects": [c.case_id for c in self.cases("val")],
                    },
                    "template_attribution": "ICBM 2009a symmetric MNI152 (Fonov et al. 2011), McConnell Brain Imaging Centre",
                },
            )
            writer.add_file("calibration.json", self.path("calibration.json"))
            writer.add_json("metrics.json", self._metrics())
            return writer.finish(cfg.name, cfg.version)
        except BaseException:
            writer.abort()
            raise


@torch.inference_mode()
def _reconstruct(encoder: torch.nn.Module, images: np.ndarray, device: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(reconstruction, prefiltered input) per image: the residual compares these two."""
    out = []
    for image in images:
        x = torch.from_numpy(image)[None, None].to(device)
        out.append((encoder(x)[0][0, 0].float().cpu().numpy(), encoder.prefilter(x)[0, 0].float().cpu().numpy()))
    return out
