"""Occlusion sensitivity in PyTorch (lesson 12); the shared parts are in :mod:`utils.occlusion`."""

from __future__ import annotations

from torch import nn

from utils.occlusion import OcclusionResult, run_occlusion
from utils.pytorch.models import predict

__all__ = ["OcclusionResult", "occlusion"]


def occlusion(model: nn.Module, images, class_index=None, *, patch: int = 32, stride: int = 16, fill=None,
              score: str = "probability", batch_size: int = 64, preprocessing: str = "efficientnet_lite0",
              progress: bool | None = None) -> OcclusionResult:
    """How far a class score falls when a grey square hides each region of each image.

    Args:
        model: a classifier returning logits, on any device, in any float dtype (run in eval
            mode, restored afterwards, without gradients, TF32 off).
        images: NumPy batch ``[N, H, W, C]`` as :func:`utils.preprocess.preprocess` makes it.
        class_index: ``None`` each image's top-1 class; an ``int`` for all; one per image.
        patch, stride: side of the square and its step, in pixels (see
            :func:`utils.occlusion.patch_positions`): ``rows x cols`` forward passes per image.
        fill: the square's value in the model's *input* space: a number, one per channel, or
            ``[N, C]`` one per image; ``None``: a mid-grey pixel (127) scaled as ``preprocessing``.
        score: ``"probability"`` (softmax, as Zeiler and Fergus: also falls when a rival class
            gains) or ``"logit"`` (the score Grad-CAM explains; does not saturate near p = 1).
        batch_size: occluded images per forward pass.
        progress: a tqdm bar (``None``: from 1,000 forward passes on).

    Returns:
        :class:`utils.occlusion.OcclusionResult` ``(maps, pixel_maps, class_indices, baseline)``.
    """
    return run_occlusion(lambda batch: predict(model, batch), images, class_index, patch, stride,
                         fill, score, batch_size, preprocessing, progress)
