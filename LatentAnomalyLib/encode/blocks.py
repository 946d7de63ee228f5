"""The network blocks detection runs, in plain torch, the same modules MONAI 1.6 builds for them.

``import monai`` loads every MONAI subpackage (transforms, data, apps, ...) and takes about 2 s on
top of torch, for a handful of layers. These classes build, for the configurations the bundles
use, exactly the layers ``monai.networks.blocks.Convolution`` / ``ResidualUnit`` and
``monai.networks.nets.BasicUNet`` build: same layer types and arguments, same order of creation
(hence the same random initialisation under one seed), same submodule names (hence the same
state-dict keys as the bundles' safetensors) and the same forward arithmetic, so outputs are
bit-identical (``tests/encode/test_network_blocks.py`` compares them with MONAI's). Training still uses
MONAI for its transforms and losses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ADN(nn.Sequential):
    """Instance norm (affine) -> optional dropout -> LeakyReLU: MONAI's ``ADN`` with ordering ``NDA``."""

    def __init__(self, channels: int, negative_slope: float, inplace: bool = False, dropout: float | None = None):
        super().__init__()
        self.add_module("N", nn.InstanceNorm3d(channels, affine=True))
        if dropout is not None:
            self.add_module("D", nn.Dropout(dropout))
        self.add_module("A", nn.LeakyReLU(negative_slope, inplace=inplace))


class Convolution(nn.Sequential):
    """3D convolution with 'same' padding followed by :class:`ADN` (MONAI's ``Convolution``, 3D, NDA)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        negative_slope: float = 0.1,
        inplace: bool = False,
        dropout: float | None = None,
    ):
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.add_module("conv", nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=padding))
        self.add_module("adn", ADN(out_channels, negative_slope, inplace, dropout))


class ResidualUnit(nn.Module):
    """Two stride-1 :class:`Convolution` units plus the identity (MONAI's ``ResidualUnit``, same channels)."""

    def __init__(self, channels: int, subunits: int = 2, negative_slope: float = 0.1):
        super().__init__()
        self.conv = nn.Sequential()
        for index in range(max(1, subunits)):
            self.conv.add_module(f"unit{index}", Convolution(channels, channels, negative_slope=negative_slope))
        self.residual = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        cx = self.conv(x)
        return cx + res


# BasicUNet's defaults: LeakyReLU(0.1, inplace), instance norm (affine), dropout 0.0, deconvolution upsampling.
UNET_SLOPE, UNET_DROPOUT = 0.1, 0.0


class TwoConv(nn.Sequential):
    """Two 3x3x3 :class:`Convolution` blocks (MONAI's ``basic_unet.TwoConv``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        options = {"negative_slope": UNET_SLOPE, "inplace": True, "dropout": UNET_DROPOUT}
        self.add_module("conv_0", Convolution(in_channels, out_channels, **options))
        self.add_module("conv_1", Convolution(out_channels, out_channels, **options))


class Down(nn.Sequential):
    """Max-pool by 2, then :class:`TwoConv` (MONAI's ``basic_unet.Down``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.add_module("max_pooling", nn.MaxPool3d(kernel_size=2))
        self.add_module("convs", TwoConv(in_channels, out_channels))


class Deconvolution(nn.Sequential):
    """MONAI's ``UpSample`` in ``deconv`` mode: a stride-2 transposed convolution named ``deconv``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.add_module("deconv", nn.ConvTranspose3d(in_channels, out_channels, kernel_size=2, stride=2))


class UpCat(nn.Module):
    """Upsample, pad to the skip connection's size, concatenate, :class:`TwoConv` (``basic_unet.UpCat``)."""

    def __init__(self, in_channels: int, cat_channels: int, out_channels: int, halves: bool = True):
        super().__init__()
        up_channels = in_channels // 2 if halves else in_channels
        self.upsample = Deconvolution(in_channels, up_channels)
        self.convs = TwoConv(cat_channels + up_channels, out_channels)

    def forward(self, x: torch.Tensor, x_e: torch.Tensor) -> torch.Tensor:
        x_0 = self.upsample(x)
        dimensions = len(x.shape) - 2
        pad = [0] * (dimensions * 2)
        for i in range(dimensions):
            if x_e.shape[-i - 1] != x_0.shape[-i - 1]:
                pad[i * 2 + 1] = 1
        x_0 = nn.functional.pad(x_0, pad, "replicate")
        return self.convs(torch.cat([x_e, x_0], dim=1))


class BasicUNet(nn.Module):
    """MONAI's 3D ``BasicUNet`` with its default layers: four levels down, four up, a 1x1x1 output conv."""

    def __init__(self, in_channels: int, out_channels: int, features: Sequence[int]):
        super().__init__()
        fea = tuple(int(f) for f in features)
        if len(fea) != 6:
            raise ValueError(f"BasicUNet needs six feature sizes, got {fea}")
        self.conv_0 = TwoConv(in_channels, fea[0])
        self.down_1 = Down(fea[0], fea[1])
        self.down_2 = Down(fea[1], fea[2])
        self.down_3 = Down(fea[2], fea[3])
        self.down_4 = Down(fea[3], fea[4])
        self.upcat_4 = UpCat(fea[4], fea[3], fea[3])
        self.upcat_3 = UpCat(fea[3], fea[2], fea[2])
        self.upcat_2 = UpCat(fea[2], fea[1], fea[1])
        self.upcat_1 = UpCat(fea[1], fea[0], fea[5], halves=False)
        self.final_conv = nn.Conv3d(fea[5], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.conv_0(x)
        x1 = self.down_1(x0)
        x2 = self.down_2(x1)
        x3 = self.down_3(x2)
        x4 = self.down_4(x3)
        u4 = self.upcat_4(x4, x3)
        u3 = self.upcat_3(u4, x2)
        u2 = self.upcat_2(u3, x1)
        u1 = self.upcat_1(u2, x0)
        return self.final_conv(u1)
