"""Dead filters in PyTorch: stream a data set through the model and count how often each channel
of one layer fires. Each batch's output is reduced at once to per-channel means and maxima
``[N, C]`` (``ChannelStats.update_reduced``), so memory does not grow with the number of images,
and each forward pass stops at the layer (``run_until``), so scanning an early layer is cheap.
"""

from __future__ import annotations

import torch
from torch import nn

from utils.pytorch._blocks import (
    eval_mode,
    exact_float32,
    get_module,
    model_input,
    run_until,
    to_input,
)
from utils.stats import ChannelStats, DeadFilterScan, count_batches, dead_filters, iter_batches

__all__ = ["scan_dead_filters"]


def scan_dead_filters(model: nn.Module, layer: str, images, *, batch_size: int = 256,
                      fire_threshold: float = 0.0, min_fraction: float = 0.01, top_k: int = 0,
                      progress: bool = True) -> DeadFilterScan:
    """Stream ``images`` through ``model`` and report the channels of ``layer`` that (almost)
    never fire.

    Args:
        model: any ``nn.Module`` on any device; run in eval mode, ``no_grad``, TF32 off.
        layer: a module name, usually a conv or its ReLU (a module that runs several times is
            scanned at its first call).
        images: NumPy ``[N, H, W, C]``, a tensor ``[N, C, H, W]`` or an iterable of batches
            (e.g. a ``DataLoader``).
        batch_size: images per forward pass (NumPy / tensor input).
        fire_threshold: a channel fires on an image when its largest value there is above this;
            it is dead when it fires on at most ``min_fraction`` of the images.
        top_k: also keep each channel's ``top_k`` images (``result.stats.top_images(channel)``).
        progress: show a tqdm progress bar.

    Returns:
        :class:`utils.stats.DeadFilterScan`: ``.dead`` (channels), ``.stats``, ``.summary()``.
    """
    # the plain text bar: works in a terminal and a notebook, needs no widgets
    from tqdm import tqdm

    module = get_module(model, layer)
    stats = ChannelStats(fire_threshold=fire_threshold, top_k=top_k)
    with eval_mode(model), exact_float32(), torch.no_grad():
        batches = iter_batches(images, batch_size, to_input)
        for x in tqdm(batches, total=count_batches(images, batch_size), disable=not progress,
                      desc=f"scan {layer}", unit="batch", leave=False):
            means, maxes = _reduce(run_until(model, module, model_input(model, x)), layer)
            stats.update_reduced(means.double().cpu().numpy(), maxes.double().cpu().numpy())
    if not stats.count:
        raise ValueError("no images to scan: the input was empty")
    return DeadFilterScan(layer=layer, framework="pytorch", stats=stats,
                          dead=dead_filters(stats, min_fraction=min_fraction),
                          fire_threshold=float(fire_threshold), min_fraction=float(min_fraction))


def _reduce(output, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's output -> per-image, per-channel ``(means, maxes)``, each ``[N, C]``."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.ndim == 4:  # [N, C, H, W]: reduce over positions
        # [N, C, H*W]. contiguous(): oneDNN may hand back a channels-last tensor, on which amax
        # over H, W is ~5x slower than copying it to NCHW first (no copy if it is NCHW already)
        flat = output.contiguous().flatten(2)
        return flat.mean(dim=2), flat.amax(dim=2)
    if output.ndim == 2:  # [N, C]: a dense layer
        return output, output
    raise ValueError(f"layer {layer!r} returned shape {tuple(output.shape)}; expected [N, C, H, W] or [N, C]")
