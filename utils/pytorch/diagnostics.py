"""Dead filters in PyTorch: stream a data set through the model and count how often each channel
of one layer fires. :mod:`utils.tensorflow.diagnostics` has the same function for Keras.

The mechanism is a forward hook that *reduces* the layer's output on the spot::

    def hook(module, inputs, output):                  # output: [N, C, H, W]
        stats.update_reduced(output.mean((2, 3)), output.amax((2, 3)))

    handle = model.conv2.register_forward_hook(hook)
    with torch.no_grad():
        for batch in batches:
            model(batch)
    handle.remove()

Only two ``[N, C]`` summaries per batch leave the hook, so memory does not grow with the number
of images (a list of every feature map would: 5,000 digits x 8 maps of 26x26 is 108 MB for the
digit CNN's conv1, and gigabytes for a real network).

Nothing after the scanned layer is needed, so the hook ends the forward pass there (it raises a
private exception that the scan catches): a scan of an early layer costs less than inference.
The Keras version gets the same for free, because its sub-model ends at the layer.
"""

from __future__ import annotations

import torch
from torch import nn

from utils.pytorch.capture import get_module, to_input
from utils.stats import ChannelStats, DeadFilterScan, count_batches, dead_filters, iter_batches

__all__ = ["scan_dead_filters"]


class _LayerDone(Exception):
    """Raised by the scan's hook to skip the rest of the forward pass."""


def scan_dead_filters(model: nn.Module, layer: str, images, *, batch_size: int = 256,
                      fire_threshold: float = 0.0, min_fraction: float = 0.01, top_k: int = 0,
                      progress: bool = True) -> DeadFilterScan:
    """Stream ``images`` through ``model`` and report the channels of ``layer`` that (almost)
    never fire.

    Args:
        model: any ``nn.Module``; it runs in eval mode under ``torch.no_grad`` (its training flag
            is restored afterwards).
        layer: a module name (see ``layer_names(model)``), usually a conv or its ReLU.
        images: NumPy ``[N, H, W, C]`` (the course's neutral batch), a tensor ``[N, C, H, W]``,
            or an iterable of batches (e.g. a ``DataLoader``).
        batch_size: images per forward pass (NumPy / tensor input).
        fire_threshold: a channel fires on an image when its largest value there is above this.
        min_fraction: a channel is dead when it fires on at most this share of the images.
        top_k: also keep, per channel, the indices of the ``top_k`` images that excite it most
            (``result.stats.top_images(channel)``).
        progress: show a tqdm progress bar.

    The forward pass stops right after ``layer`` (later layers cannot change its output); a
    module that runs several times per forward pass is scanned at its first call.

    Returns:
        :class:`utils.stats.DeadFilterScan` with ``.dead`` (channel indices), ``.stats``
        (per-channel mean, fire_fraction, max) and ``.summary()``.
    """
    # the plain text bar: works in a terminal and a notebook, needs no widgets
    from tqdm import tqdm

    module = get_module(model, layer)
    stats = ChannelStats(fire_threshold=fire_threshold, top_k=top_k)

    def hook(_module, _inputs, output):
        if isinstance(output, (tuple, list)):
            output = output[0]
        out = output.detach()
        if out.ndim == 4:  # [N, C, H, W]: reduce over positions before leaving the hook
            # [N, C, H*W]. contiguous(): oneDNN may hand back a channels-last tensor, on which
            # amax over H, W is ~5x slower than copying it to NCHW first (no copy if it is NCHW)
            flat = out.contiguous().flatten(2)
            means, maxes = flat.mean(dim=2), flat.amax(dim=2)
        elif out.ndim == 2:  # [N, C]: a dense layer
            means = maxes = out
        else:
            raise ValueError(f"layer {layer!r} returned shape {tuple(out.shape)}; expected "
                             "[N, C, H, W] or [N, C]")
        stats.update_reduced(means.double().cpu().numpy(), maxes.double().cpu().numpy())
        raise _LayerDone  # the rest of the network is not needed

    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            batches = iter_batches(images, batch_size, to_input)
            for x in tqdm(batches, total=count_batches(images, batch_size), disable=not progress,
                          desc=f"scan {layer}", unit="batch", leave=False):
                try:
                    model(x.to(device))
                except _LayerDone:
                    pass
                else:
                    raise RuntimeError(f"layer {layer!r} did not run in the forward pass")
    finally:
        handle.remove()
        model.train(was_training)
    if not stats.count:
        raise ValueError("no images to scan: the input was empty")
    return DeadFilterScan(layer=layer, framework="pytorch", stats=stats,
                          dead=dead_filters(stats, min_fraction=min_fraction),
                          fire_threshold=float(fire_threshold), min_fraction=float(min_fraction))
