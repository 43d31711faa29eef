"""Activation maximisation in PyTorch: gradient ascent on the pixels of an input image, the loop of
lesson 9 (``torch.autograd.grad`` of the channel's mean minus a smoothness penalty, a step of fixed
average size) with a seeded start, jitter, pixels kept within 0-255 and a progress bar; and
``visualize_channels``, lesson 11's recipe: one image per channel in one batch, a Fourier and
colour-decorrelated parameterisation, random shifts, scales and rotations per step
(``visualization_step`` is one step). Each forward pass stops at ``layer``. The shared parts (the
update, the transforms, the spectrum) are in :mod:`utils.maximize`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils import maximize as shared
from utils.maximize import (
    DEFAULTS,
    FeatureVisualization,
    MaximizationResult,
    check_settings,
    jitter_shifts,
    pixel_scaling,
    progress_bar,
    show_progress,
    starting_image,
)
from utils.pytorch._blocks import device_of, eval_mode, get_module, model_input, run_until

__all__ = ["FeatureVisualization", "MaximizationResult", "channel_activation", "maximize_activation",
           "visualization_step", "visualize_channels"]


def _output_of(model: nn.Module, module: nn.Module, x: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """``module``'s maps ``[N, C, h, w]`` for ``x`` (with their graph), shape and channel checked."""
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
    model: nn.Module, layer: str, channel: int, *, steps: int = DEFAULTS["steps"],
    lr: float = DEFAULTS["lr"], size: int = DEFAULTS["size"], jitter: int = DEFAULTS["jitter"],
    smoothness: float = DEFAULTS["smoothness"], seed: int = DEFAULTS["seed"], start=None,
    preprocessing: str = "efficientnet_lite0", progress: bool | None = None,
) -> MaximizationResult:
    """Optimise an input image so that ``channel`` of ``layer`` responds as strongly as possible.

    Args:
        model: the network (run in eval mode; parameters unchanged, no ``.grad`` set).
        layer: module name. Prefer the layer *before* a ReLU6 (``"_bn0"``): a ReLU6 passes no
            gradient where it is 0 or 6.
        channel: the output channel whose spatial mean is maximised.
        steps, lr: gradient-ascent steps, and their average size per pixel in input units (the
            gradient is divided by its mean absolute value).
        size: height = width of the image in pixels.
        jitter: each step rolls the image by up to this many pixels (0: none).
        smoothness: weight of the total-variation penalty (0: none).
        seed: seeds the starting noise and the jitter.
        start: ``None`` (grey plus noise), an RGB ``uint8`` image or a scaled float input
            (see :func:`utils.maximize.starting_image`).
        preprocessing: the model's pixel scaling (a ``preprocess`` model name).
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
    """Mean activation of ``channel`` of ``layer`` for one image at its own size: RGB ``uint8
    [H, W, 3]`` (scaled with ``preprocessing``) or a scaled float input ``[H, W, C]``."""
    module = get_module(model, layer)
    array = np.asarray(image)
    x = pixel_scaling(preprocessing).to_input(array) if array.dtype == np.uint8 else array.astype(np.float32)
    with eval_mode(model), torch.no_grad():
        maps = _output_of(model, module, model_input(model, x), layer, channel)
    return float(maps[0, channel].mean())


def _to_input(params: torch.Tensor, parameterization: str, preprocessing: str) -> torch.Tensor:
    """The model input ``[N, 3, H, W]`` that ``params`` stand for (see ``initial_parameters``)."""
    v, size = params, params.shape[2]
    if parameterization == "fourier":
        scale = torch.from_numpy(shared.spectrum_scale(size)).to(params)
        v = torch.fft.irfft2(torch.view_as_complex(params) * scale, s=(size, size))
    rgb = torch.einsum("dc,nchw->ndhw", torch.from_numpy(shared.COLOR_CORRELATION).to(params), v)
    offset, scale = (torch.from_numpy(a).to(params).view(1, -1, 1, 1) for a in pixel_scaling(preprocessing))
    return (255 * torch.sigmoid(rgb) - offset) / scale


def visualization_step(model: nn.Module, layer: str, channels, params, *, transform=None,
                       parameterization: str = "fourier", preprocessing: str = "efficientnet_lite0") -> tuple:
    """One step of :func:`visualize_channels` from NumPy ``params``, in the model's dtype: ``(model
    inputs [N, H, W, 3], each image's mean activation of its own channel [N], gradient [like params])``."""
    channels = shared.check_visualize(channels, parameterization, preprocessing)
    dtype = next(model.parameters()).dtype  # a float64 copy of the model: float64 parameters
    p = torch.as_tensor(np.asarray(params), device=device_of(model), dtype=dtype).requires_grad_()
    with eval_mode(model), torch.enable_grad():
        x = moved = _to_input(p, parameterization, preprocessing)
        if transform is not None:  # bilinear resampling as 4 gathers, the same in both frameworks
            index, weights = (torch.from_numpy(a).to(x.device) for a in shared.sampling_weights(transform, x.shape[-1]))
            # gather, not x[..., index]: on a CPU, that one's backward adds in a varying order
            gathered = x.flatten(2).gather(2, index.view(1, 1, -1).expand(*x.shape[:2], -1))
            moved = (gathered.unflatten(2, weights.shape) * weights.to(dtype)).sum(2).view_as(x)
        maps = run_until(model, layer, moved)
        shared.check_visualize(channels, parameterization, preprocessing, maps.shape[1], layer)
        act = maps.mean(dim=(2, 3))[torch.arange(len(channels)), channels]
        (grad,) = torch.autograd.grad(act.sum(), p)
    return x.detach().permute(0, 2, 3, 1).cpu().numpy(), act.detach().cpu().numpy(), grad.cpu().numpy()


def visualize_channels(
    model: nn.Module, layer: str, channels, *, steps: int = 64, size: int = 64, lr: float = 0.05,
    parameterization: str = "fourier", transforms: bool = True, seed: int = 0,
    preprocessing: str = "efficientnet_lite0", progress: bool | None = None,
) -> FeatureVisualization:
    """Optimise one image per channel of ``layer``, all in one batch (image ``i``'s objective:
    the mean activation of ``channels[i]``), after Olah et al.'s "Feature Visualization"; returns
    :class:`utils.maximize.FeatureVisualization` ``(images, history, channels, settings, parameters)``.

    Args:
        model, layer, size, seed, preprocessing, progress: as for :func:`maximize_activation`.
        channels: the channels to show, one image each. steps, lr: as for :func:`maximize_activation`.
        parameterization: ``"fourier"`` (a spectrum scaled by 1 / frequency) or ``"pixels"``; both with
            decorrelated colours and a sigmoid to 0-255 (see :func:`utils.maximize.initial_parameters`).
        transforms: each step sees the images shifted, scaled and turned at random
            (:func:`utils.maximize.random_transforms`): a pattern must survive all three.
    """
    return shared.visualize(visualization_step, model, layer, channels, progress, steps=steps, size=size, lr=lr,
                            parameterization=parameterization, transforms=transforms, seed=seed,
                            preprocessing=preprocessing)
