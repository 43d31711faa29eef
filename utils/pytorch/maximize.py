"""Activation maximisation in PyTorch: gradient ascent on the pixels of an input image.

The raw mechanism (lesson 9)::

    image = torch.zeros(1, 3, 96, 96, requires_grad=True)
    for step in range(40):
        maps = output_of(layer, model, image)                 # a forward hook keeps it
        objective = maps[0, channel].mean() - smoothness * total_variation(image)
        grad, = torch.autograd.grad(objective, image)
        with torch.no_grad():
            image += lr * grad / grad.abs().mean()            # a step of fixed average size

:func:`maximize_activation` is that loop with a seeded starting image, jitter, clipping to real
pixel values and a progress bar. The forward pass stops at ``layer`` (its hook raises), so a stem
channel costs only the stem. :mod:`utils.tensorflow.maximize` mirrors it; the shared parts are in
:mod:`utils.maximize`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.maximize import (
    DEFAULTS,
    MaximizationResult,
    check_settings,
    jitter_shifts,
    pixel_scaling,
    progress_bar,
    show_progress,
    starting_image,
)
from utils.pytorch.capture import get_module

__all__ = ["MaximizationResult", "channel_activation", "maximize_activation"]


class _Reached(Exception):
    """Raised by the hook to end the forward pass once the wanted layer has run."""


def _output_of(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on ``x`` up to ``module`` and return that module's output (with its graph)."""
    kept = []

    def hook(_module, _inputs, output):
        kept.append(output)
        raise _Reached  # the layers after this one are not needed

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not kept:
        raise RuntimeError("the layer did not run in the forward pass")
    out = kept[0]
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        raise ValueError(f"expected feature maps [N, C, h, w], got {getattr(out, 'shape', type(out))}")
    return out


def _total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between vertical and horizontal neighbours (``[N, C, H, W]``)."""
    down = image[:, :, 1:, :] - image[:, :, :-1, :]
    right = image[:, :, :, 1:] - image[:, :, :, :-1]
    return down.pow(2).mean() + right.pow(2).mean()


def _image_tensor(x_hwc: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x_hwc.transpose(2, 0, 1)[None])).to(device)


def maximize_activation(
    model: nn.Module,
    layer: str,
    channel: int,
    *,
    steps: int = DEFAULTS["steps"],
    lr: float = DEFAULTS["lr"],
    size: int = DEFAULTS["size"],
    jitter: int = DEFAULTS["jitter"],
    smoothness: float = DEFAULTS["smoothness"],
    seed: int = DEFAULTS["seed"],
    start=None,
    preprocessing: str = "efficientnet_lite0",
    progress: bool | None = None,
) -> MaximizationResult:
    """Optimise an input image so that ``channel`` of ``layer`` responds as strongly as possible.

    Args:
        model: the network (run in eval mode; its parameters are not changed, no ``.grad`` set).
        layer: module name (see ``layer_names``). Prefer the layer *before* a ReLU6 (``"_bn0"``,
            ``"_blocks.5._bn1"``): a ReLU6 passes no gradient where it is 0 or 6.
        channel: the channel of that layer's output to maximise (its spatial mean).
        steps: gradient-ascent steps.
        lr: step size, in input units per pixel (the step's average size; the gradient is
            normalised by its mean absolute value).
        size: height = width of the image in pixels (convolutions accept any size).
        jitter: each step rolls the image by up to this many pixels (0: no jitter).
        smoothness: weight of the total-variation penalty (0: none; larger: smoother, blurrier).
        seed: seeds the starting noise and the jitter: the same seed gives the same image.
        start: ``None`` (grey plus seeded noise), an RGB ``uint8`` image (resized to ``size``) or a
            float input ``[size, size, C]`` already scaled for the model.
        preprocessing: the model's pixel scaling (a :func:`utils.preprocess.preprocess` name), used
            to start from pixels, to keep them in 0-255 and to turn the result back into pixels.
        progress: show a tqdm bar (``None``: only for ``steps >= 100``).

    Returns:
        :class:`utils.maximize.MaximizationResult` ``(image uint8 [size, size, C], history)``.
    """
    check_settings(channel, steps, lr, size, jitter, smoothness)
    module = get_module(model, layer)
    scaling = pixel_scaling(preprocessing)
    device = next(model.parameters(), torch.empty(0)).device
    image = _image_tensor(starting_image(size, seed, start, preprocessing), device).requires_grad_(True)
    low, high = (torch.from_numpy(b).to(device).view(1, -1, 1, 1) for b in scaling.bounds)
    shifts = jitter_shifts(steps, jitter, seed)
    history = np.zeros(steps, dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        bar = progress_bar(range(steps), show_progress(progress, steps), desc=f"{layer}[{channel}]", leave=False)
        for step in bar:
            with torch.enable_grad():
                moved = torch.roll(image, shifts=tuple(int(s) for s in shifts[step]), dims=(2, 3))
                maps = _output_of(model, module, moved)
                if channel >= maps.shape[1]:
                    raise ValueError(f"layer {layer!r} has {maps.shape[1]} channels; got channel={channel}")
                activation = maps[:, channel].mean()
                objective = activation - smoothness * _total_variation(image)
                (grad,) = torch.autograd.grad(objective, image)
            with torch.no_grad():
                image += lr * grad / (grad.abs().mean() + 1e-12)
                image.copy_(torch.maximum(torch.minimum(image, high), low))  # pixels stay in 0-255
            history[step] = activation.item()
    finally:
        model.train(was_training)
    pixels = scaling.to_pixels(image.detach().cpu().numpy()[0].transpose(1, 2, 0))
    return MaximizationResult(pixels, history)


def channel_activation(model: nn.Module, layer: str, channel: int, image,
                       preprocessing: str = "efficientnet_lite0") -> float:
    """Mean activation of ``channel`` of ``layer`` for one image at its own size.

    ``image``: RGB ``uint8 [H, W, 3]`` (scaled with ``preprocessing``, not resized) or a float
    input ``[H, W, C]`` already scaled. Use it to compare a maximisation result with a photo.
    """
    module = get_module(model, layer)
    array = np.asarray(image)
    x = pixel_scaling(preprocessing).to_input(array) if array.dtype == np.uint8 else array.astype(np.float32)
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = _output_of(model, module, _image_tensor(x, device))
    finally:
        model.train(was_training)
    if channel >= maps.shape[1]:
        raise ValueError(f"layer {layer!r} has {maps.shape[1]} channels; got channel={channel}")
    return float(maps[0, channel].mean())
