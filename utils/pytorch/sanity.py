"""The weight-randomisation sanity check in PyTorch (see :mod:`utils.sanity`)."""

import copy

import torch
from torch import nn

from utils import sanity
from utils.pytorch.gradcam import gradcam

__all__ = ["cascade_stages", "cascading_randomization", "randomize_weights"]


def _shapes(model: nn.Module) -> dict[str, dict[str, tuple]]:
    """``{module: {tensor: shape}}`` of the modules holding float tensors, in registration order
    (the forward order in the course's models)."""
    shapes = {}
    for name, module in model.named_modules():
        own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
        if tensors := {key: tuple(t.shape) for key, t in own if t.is_floating_point()}:
            shapes[name] = tensors
    return shapes


def cascade_stages(model: nn.Module) -> list[tuple[str, list[str]]]:
    """The cascade: ``[("_fc", ["_fc"]), ("_conv_head", ["_fc", "_conv_head", "_bn1"]), ...]``."""
    return sanity.cascade_stages(_shapes(model))


def _randomize(model: nn.Module, layers, seed: int) -> nn.Module:
    shapes, modules = _shapes(model), dict(model.named_modules())
    with torch.no_grad():
        for name in sanity.check_layers(shapes, layers, type(model).__name__):
            for tensor, value in sanity.random_tensors(name, shapes[name], seed).items():
                getattr(modules[name], tensor).copy_(torch.from_numpy(value))  # dtype, device
    return model


def randomize_weights(model: nn.Module, layers, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with some layers re-initialised (kernels He-normal, biases 0, BatchNorms
    as new: see :mod:`utils.sanity`); ``model`` itself is left as it was.

    Args:
        model: any module, in any dtype, on any device.
        layers: names of modules with weights, e.g. ``cascade_stages(model)[i][1]`` (stage i + 1).
        seed: the same seed gives the same weights, also to the Keras twin's namesakes.
    """
    return _randomize(copy.deepcopy(model), layers, seed)


def cascading_randomization(model: nn.Module, layer: str, images, class_index=None, seed: int = 0):
    """Grad-CAM of ``layer`` for ``model`` and after each stage of :func:`cascade_stages`.

    Args and class: as :func:`utils.pytorch.gradcam.gradcam`; every stage explains the class the
    pretrained model was asked for (or predicted). ``seed``: as :func:`randomize_weights`.

    Returns:
        ``{"pretrained": heatmaps [N, h, w], "_fc": ..., "_conv_head": ..., ...}``: a key per
        stage, named after the group it randomises (the groups above it are random too).
    """
    first = gradcam(model, layer, images, class_index)
    heatmaps, randomized, done = {"pretrained": first.heatmaps}, copy.deepcopy(model), 0
    for group, layers in cascade_stages(model):  # one copy, one group more per stage
        _randomize(randomized, layers[done:], seed)
        heatmaps[group] = gradcam(randomized, layer, images, first.class_indices).heatmaps
        done = len(layers)
    return heatmaps
