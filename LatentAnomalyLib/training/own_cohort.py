"""Training on a user's own cohort: scans from a folder or CSV, no brain labels, a stored split.

Brain labels exist only to train the brain-extraction network; a cohort without them reuses the
reference model's network (the bundled model unless told otherwise) for scans with a skull, or
takes the scans as already skull-stripped (``skull="stripped"``). The model-grid templates come
from the same reference bundle, so nothing from ``../shared/data`` is needed. The train /
validation split is drawn once (seeded) and written to ``split.json`` in the work folder; a
resumed run reads it back, so the split never changes under a run, and the bundle records it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..case import Case
from ..evaluation import datasets

SKULL_MODES = ("auto", "stripped", "skull")


@dataclass(frozen=True)
class CohortSource:
    scans: Path
    sequence: str = "T1"
    skull: str = "auto"
    val_fraction: float = 0.2
    reference_model: Path | None = None

    def reference(self) -> Any:  # -> Model (imported lazily: SimpleITK)
        from ..bundle.model import Model

        return Model.load(self.reference_model)

    def split(self, workdir: Path, seed: int) -> dict[str, list[str]]:
        """The stored split, or a new one written to ``workdir/split.json``; cases must still exist."""
        cases = datasets.cohort_cases(self.scans, self.sequence)
        ids = [c.case_id for c in cases]
        path = Path(workdir) / "split.json"
        if path.exists():
            stored = json.loads(path.read_text())
            missing = sorted(set(stored["train"] + stored["val"]) - set(ids))
            if missing:
                raise ValueError(f"{path}: split names scans no longer in {self.scans}: {', '.join(missing[:3])}")
            return {"train": stored["train"], "val": stored["val"]}
        split = datasets.make_split(ids, self.val_fraction, seed)
        path.write_text(json.dumps({**split, "source": str(self.scans), "seed": seed}, indent=1) + "\n")
        return split

    def cases(self, part: str, workdir: Path, seed: int) -> list[Case]:
        wanted = set(self.split(workdir, seed)[part])
        return [c for c in datasets.cohort_cases(self.scans, self.sequence) if c.case_id in wanted]

    def install_brainmask(self, target: Path, brainmask_config: Any) -> str:
        """Copy the reference model's brain-extraction network to ``target``; its config must be this run's."""
        model = self.reference()
        if model.brainmask_net is None:
            raise ValueError(f"reference model {model.bundle.folder} has no brain-extraction network")
        if asdict(model.preprocess.brainmask) != asdict(brainmask_config):
            raise ValueError(
                "preprocess.brainmask differs from the reference model's; without brain labels the network "
                "cannot be retrained: keep the reference model's brain-mask settings"
            )
        shutil.copyfile(model.bundle.path("brainmask.safetensors"), target)
        return f"{model.name} {model.version}"

    def template(self, grid: Any) -> Any:  # -> Template
        model = self.reference()
        if asdict(model.preprocess.grid) != asdict(grid):
            raise ValueError("preprocess.grid differs from the reference model's; its templates cannot be reused")
        return model.template

    def describe(self, workdir: Path, seed: int) -> dict[str, Any]:
        split = self.split(workdir, seed)
        return {
            "dataset": f"own cohort ({self.sequence})",
            "source": str(self.scans),
            "skull": self.skull,
            "split_file": "split.json (work folder)",
            "train_subjects": split["train"],
            "validation_subjects": split["val"],
        }
