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
from utils.pytorch._blocks import eval_mode, get_module, model_input, run_until

__all__ = ["MaximizationResult", "channel_activation", "maximize_activation"]


def _output_of(model: nn.Module, module: nn.Module, x: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """``module``'s feature maps ``[N, C, h, w]`` for input ``x`` (with their graph); the forward
    pass stops there. Checks the shape and that ``channel`` exists."""
    out = run_until(model, module, x)
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"layer {layer!r} must give feature maps [N, C, h, w]; it gives {got}")
    if channel >= out.shape[1]:
        raise ValueError(f"layer {layer!r} has {out.shape[1]} channels; got channel={channel}")
    return out


def _total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between vertical and horizontal neighbours (``[N, C, H, W]``)."""
    down = image[:, :, 1:, :] - image[:, :, :-1, :]
    right = image[:, :, :, 1:] - image[:, :, :, :-1]
    return down.pow(2).mean() + right.pow(2).mean()


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
    image = model_input(model, starting_image(size, seed, start, preprocessing)).requires_grad_(True)
    low, high = (torch.from_numpy(b).to(image).view(1, -1, 1, 1) for b in scaling.bounds)
    shifts = jitter_shifts(steps, jitter, seed)
    history = np.zeros(steps, dtype=np.float32)
    bar = progress_bar(range(steps), show_progress(progress, steps), desc=f"{layer}[{channel}]", leave=False)
    with eval_mode(model):
        for step in bar:
            with torch.enable_grad():
                moved = torch.roll(image, shifts=tuple(int(s) for s in shifts[step]), dims=(2, 3))
                activation = _output_of(model, module, moved, layer, channel)[:, channel].mean()
                objective = activation - smoothness * _total_variation(image)
                (grad,) = torch.autograd.grad(objective, image)
            with torch.no_grad():
                image += lr * grad / (grad.abs().mean() + 1e-12)
                image.copy_(torch.maximum(torch.minimum(image, high), low))  # pixels stay in 0-255
            history[step] = activation.item()
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
    with eval_mode(model), torch.no_grad():
        maps = _output_of(model, module, model_input(model, x), layer, channel)
    return float(maps[0, channel].mean())
