"""Data-parallel encoder training under torchrun (two CPU processes, gloo): the loss curve of one process.

Run as a script by torchrun once (``__main__`` below), the module trains the tiny problem of every family in every
process and each process writes its loss history and a digest of its final weights; the test compares it with a single-process run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
# Relative tolerance per family, from measured gaps. The plain objective is the same sum split in two
# (measured < 1%). The siamese variance floor is a batch statistic, computed over each process's half
# (measured up to 5% by epoch 4). The VQ codebook starts from, and restarts unused codes at, vectors
# of the first process's half of the batch; discrete code assignments drift more (measured up to 13%).
# The VAE's processes each draw the whole batch's sampling noise and keep their share (VariationalAutoEncoder.noise_share).
TOLERANCE = {"ae": 0.02, "siamese": 0.07, "vae": 0.02, "vqvae": 0.15}


def _problem() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    z, y, x = np.mgrid[:16, :16, :16]
    images, masks = [], []
    for _ in range(8):
        c = 7.5 + rng.normal(scale=0.7, size=3)
        r = ((z - c[0]) / 6) ** 2 + ((y - c[1]) / 6.5) ** 2 + ((x - c[2]) / 5.5) ** 2
        images.append(((0.6 + 0.4 * (1 - r)) * (r < 1)).astype(np.float32))
        masks.append(r < 1)
    return np.stack(images), np.stack(masks)


def _train(family: str, context=None) -> tuple:
    from LatentAnomalyLib.encode.families import EncoderConfig
    from LatentAnomalyLib.training.encoder_trainer import EncoderTrainConfig, train_encoder

    images, masks = _problem()
    config = EncoderConfig(family=family, channels=(4, 8, 8), latent_channels=4, codebook_size=8)
    return train_encoder(
        images, masks, config, EncoderTrainConfig(epochs=4, batch_size=4), log=lambda s: None, context=context
    )


def _worker(families: list[str], out: str) -> None:
    """Train each family in turn (each run seeds itself) and write ``{out}.{family}.{rank}``."""
    import torch.distributed as dist

    from LatentAnomalyLib.training.distributed import from_environment

    context = from_environment("cpu")
    for family in families:
        model, metrics = _train(family, context)
        digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()
        result = {"history": metrics["loss_history"], "processes": metrics["processes"], "weights": digest}
        Path(f"{out}.{family}.{context.rank}").write_text(json.dumps(result))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory) -> Path:
    """One torchrun launch (two processes) that trains every family; the results' path prefix."""
    out = tmp_path_factory.mktemp("ddp") / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    families = ",".join(sorted(TOLERANCE))
    done = subprocess.run(
        [*command, __file__, families, str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(TOLERANCE))
def test_two_processes_follow_the_single_process_loss_curve(ddp_runs, family):
    ddp, other = (json.loads(Path(f"{ddp_runs}.{family}.{rank}").read_text()) for rank in (0, 1))
    assert ddp["processes"] == 2
    assert ddp["weights"] == other["weights"]  # both processes end with the same weights and buffers
    assert ddp["history"] == other["history"]  # and log the same (all-reduced) losses
    single = _train(family)[1]["loss_history"]
    assert len(ddp["history"]) == len(single) == 4
    for one, two in zip(single, ddp["history"]):
        assert set(one) == set(two)
        for key in one:
            assert two[key] == pytest.approx(one[key], rel=TOLERANCE[family]), (key, single, ddp)
    assert single[-1]["reconstruction"] < single[0]["reconstruction"]  # it is learning, not a flat curve


if __name__ == "__main__":
    _worker(sys.argv[1].split(","), sys.argv[2])
