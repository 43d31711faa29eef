"""Dataset examples in PyTorch: each batch runs only until the layer (``run_until``); the
streaming, the top ``k`` per channel and the patches are in :mod:`utils.dataset_examples`."""

from __future__ import annotations

import torch
from torch import nn

from utils.dataset_examples import DatasetExamples, PhotoCrops, collect
from utils.maximize import pixel_scaling
from utils.pytorch._blocks import eval_mode, exact_float32, get_module, model_input, run_until
from utils.pytorch.receptive_field import receptive_field

__all__ = ["DatasetExamples", "PhotoCrops", "dataset_examples"]


def dataset_examples(model: nn.Module, layer: str, images, channels=None, *, k: int = 9,
                     batch_size: int = 16, preprocessing: str = "efficientnet_lite0",
                     progress: bool = True) -> DatasetExamples:
    """The ``k`` images of ``images`` that excite each channel of ``layer`` most (by the
    channel's largest value in the image), where, and the patch of the image behind it.

    Args:
        model: any ``nn.Module`` (a ``.double()`` copy too); eval mode, ``no_grad``, TF32 off.
        layer: a module name; its output must be maps ``[N, C, h, w]``.
        images: RGB ``uint8 [H, W, 3]`` images of one size, e.g. :class:`PhotoCrops`, fed at
            their own size with ``preprocessing``'s pixel scaling. A sequence (list, array) lets
            the result cut patches; a one-pass iterator gives scores and positions only.
        channels: the channels to report (default all); statistics cover every channel.
        k: examples per channel; ``batch_size``: images per forward pass.
    """
    module, scaling = get_module(model, layer), pixel_scaling(preprocessing)

    def run(batch):
        with eval_mode(model), exact_float32(), torch.no_grad():
            return run_until(model, module, model_input(model, scaling.to_input(batch))).cpu().numpy()

    return collect(images, layer, "pytorch", run, lambda size: receptive_field(model, layer, size),
                   channels, k, batch_size, progress)
