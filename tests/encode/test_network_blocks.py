"""The plain-torch network blocks equal MONAI's: same state-dict keys, same initialisation, same outputs bit for bit."""

from __future__ import annotations

import pytest
import torch

from LatentAnomalyLib.encode import blocks
from LatentAnomalyLib.encode.conv_ae import _conv, _res
from LatentAnomalyLib.preprocess.brainmask_net import BrainMaskConfig, build_net
from tests.conftest import MODEL

monai_blocks = pytest.importorskip("monai.networks.blocks")
monai_nets = pytest.importorskip("monai.networks.nets")

NORM = ("instance", {"affine": True})
ACT = ("leakyrelu", {"negative_slope": 0.1})


def _pair(make_ours, make_monai, seed: int = 7) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    ours = make_ours()
    torch.manual_seed(seed)
    theirs = make_monai()
    return ours, theirs


def _same_parameters(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    mine, other = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(other)
    for key in mine:
        assert torch.equal(mine[key], other[key]), key


def _same_outputs(ours: torch.nn.Module, theirs: torch.nn.Module, shape: tuple[int, ...], train: bool) -> None:
    ours.train(train)
    theirs.train(train)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(ours(x.clone()), theirs(x.clone()))


ENCODER_BLOCKS = {
    "conv stride 2": (
        lambda: _conv(1, 16, stride=2),
        lambda: monai_blocks.Convolution(3, 1, 16, strides=2, kernel_size=3, norm=NORM, act=ACT),
        (1, 1, 18, 20, 16),
    ),
    "conv 1x1x1": (
        lambda: _conv(32, 64, kernel=1),
        lambda: monai_blocks.Convolution(3, 32, 64, strides=1, kernel_size=1, norm=NORM, act=ACT),
        (1, 32, 6, 5, 4),
    ),
    "residual unit": (
        lambda: _res(16),
        lambda: monai_blocks.ResidualUnit(3, 16, 16, subunits=2, norm=NORM, act=ACT),
        (2, 16, 9, 8, 7),
    ),
}


@pytest.mark.parametrize("name", list(ENCODER_BLOCKS))
@pytest.mark.parametrize("train", [False, True])
def test_encoder_blocks_equal_monai(name, train):
    make_ours, make_monai, shape = ENCODER_BLOCKS[name]
    ours, theirs = _pair(make_ours, make_monai)
    _same_parameters(ours, theirs)
    _same_outputs(ours, theirs, shape, train)


@pytest.mark.parametrize("train", [False, True])
def test_basic_unet_equals_monai(train):
    config = BrainMaskConfig()
    ours, theirs = _pair(
        lambda: build_net(config),
        lambda: monai_nets.BasicUNet(spatial_dims=3, in_channels=1, out_channels=1, features=config.features),
    )
    _same_parameters(ours, theirs)
    _same_outputs(ours, theirs, (1, 1, 32, 48, 32), train)
    _same_outputs(ours, theirs, (1, 1, 30, 34, 18), train)  # sizes not divisible by 16: the replicate padding


def test_bundled_weights_load_into_both_and_give_the_same_brain_probability():
    from LatentAnomalyLib.bundle.format import Bundle

    bundle = Bundle.load(MODEL)
    weights = bundle.state_dict("brainmask.safetensors")
    config = BrainMaskConfig()
    ours = build_net(config)
    theirs = monai_nets.BasicUNet(spatial_dims=3, in_channels=1, out_channels=1, features=config.features)
    ours.load_state_dict(weights)  # strict: every key of the bundle, no more
    theirs.load_state_dict(weights)
    x = torch.rand(1, 1, 48, 48, 48, generator=torch.Generator().manual_seed(0))
    _same_outputs(ours.eval(), theirs.eval(), tuple(x.shape), train=False)


def test_blocks_do_not_import_monai():
    import subprocess
    import sys

    code = (
        "import sys; from LatentAnomalyLib.bundle.model import Model; from LatentAnomalyLib.pipeline import Detector; "
        "Model.load(); print('monai' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_unet_needs_six_features():
    with pytest.raises(ValueError, match="six feature sizes"):
        blocks.BasicUNet(1, 1, (8, 16, 32))
