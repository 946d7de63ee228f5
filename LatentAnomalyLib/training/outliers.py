"""Outlier removal for impure training sets (Behrendt et al., ISBI 2022).

A few lesion scans hidden in a "healthy" training set teach the model their lesions. Because
they are rare, the model reconstructs them worse than the healthy majority while it learns:
every ``every`` epochs, scans whose latest reconstruction loss (their last batch of the
window; early epochs mostly measure the untrained network) exceeds ``gamma`` times the mean over
all scans are dropped, and training restarts from a fresh
initialisation on the remaining scans (at most ``rounds`` times). The loss is the per-scan
reconstruction term of the training objective (the same for every encoder family).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class OutlierFilter:
    """Collects per-scan losses over a window of epochs and decides which scans to drop."""

    gamma: float = 1.5
    every: int = 5
    rounds: int = 1
    done_rounds: int = 0
    window: dict[int, float] = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)

    def record(self, indices: np.ndarray, losses: np.ndarray) -> None:
        """Per-scan losses of one batch (indices into the full training set)."""
        for i, value in zip(indices.tolist(), losses.tolist()):
            self.window[int(i)] = float(value)

    def due(self, epoch_in_round: int) -> bool:
        return self.done_rounds < self.rounds and epoch_in_round > 0 and epoch_in_round % self.every == 0

    def decide(self, active: np.ndarray) -> np.ndarray:
        """Indices (of the full set) to drop now: latest loss > gamma x the mean over active scans."""
        seen = [i for i in active.tolist() if i in self.window]
        means = np.asarray([self.window[i] for i in seen], dtype=float)
        self.window = {}
        self.done_rounds += 1
        if not len(means):
            return np.zeros(0, dtype=int)
        threshold = self.gamma * float(means.mean())
        drop = np.asarray([i for i, m in zip(seen, means) if m > threshold], dtype=int)
        self.log.append(
            {
                "round": self.done_rounds,
                "threshold": threshold,
                "mean_loss": float(means.mean()),
                "removed": drop.tolist(),
                "losses": {str(i): float(m) for i, m in zip(seen, means)},
            }
        )
        return drop

    def state(self) -> dict:
        """What a training checkpoint keeps of the filter (JSON-ready)."""
        return {"done_rounds": self.done_rounds, "window": {str(k): v for k, v in self.window.items()}, "log": self.log}

    def restore(self, state: dict) -> None:
        self.done_rounds = int(state["done_rounds"])
        self.window = {int(k): float(v) for k, v in state["window"].items()}
        self.log = list(state["log"])
