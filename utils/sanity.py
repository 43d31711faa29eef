"""The weight-randomisation sanity check (Adebayo et al., 2018), framework-neutral parts. An
explanation of a *model* must change when its weights do; one that does not explains the image
(an edge detector), not what the model learnt. The *cascade* re-initialises layers from the output
back: Lite0's ``_fc``, then also ``_conv_head`` + ``_bn1``, ``_blocks.15`` ... ``_conv_stem``.
Kernels are drawn He-normal, ``N(0, 2 / fan_in)``, which keeps the activations' scale through conv
+ ReLU; biases 0; BatchNorms as new (the identity in eval mode): their running statistics describe
the *pretrained* kernels' outputs. On the cat, all layers random: block outputs' rms 0.8-5.6
(pretrained 3.1-8.3); kept statistics give 12-34, PyTorch's default init ~1e-8. Tensors are drawn
in PyTorch's layout, seeded by ``(seed, "layer.tensor")``: twins randomised alike stay twins.
Compare the heatmaps with :func:`utils.occlusion.rank_correlation` (Spearman), as the paper does.
"""

import zlib
from collections.abc import Iterable, Mapping

import numpy as np

from utils.layers import UnknownLayerError, as_name_list


def cascade_stages(shapes: Mapping[str, Mapping[str, tuple]]) -> list[tuple[str, list[str]]]:
    """``[(group, layers random at this stage), ...]`` from the output down, each list extending
    the one before, for ``shapes`` = ``{layer: {tensor: PyTorch shape}}`` in model order. A group
    is a block (``_blocks.3``, ``layer1.0``: up to the first number in the name), a layer with the
    BatchNorm after it (``_conv_head``, ``_bn1``) or one layer (``_fc``)."""
    groups: dict[str, list[str]] = {}
    key = None
    for name, tensors in shapes.items():
        parts = name.split(".")
        number = next((i for i, part in enumerate(parts) if part.isdigit()), None)
        if number is not None:
            key = ".".join(parts[: number + 1])
        elif "running_mean" not in tensors or key is None:
            key = name
        groups.setdefault(key, []).append(name)
    stages = []
    for group, members in reversed(groups.items()):
        stages.append((group, (stages[-1][1] if stages else []) + members))
    return stages


def check_layers(shapes: Mapping, layers: str | Iterable[str], model_name: str) -> list[str]:
    """``layers`` as a list of names of layers with weights, else :class:`UnknownLayerError`."""
    names = as_name_list(layers)
    for name in names:
        if name not in shapes:
            hint = "counting layers with weights; cascade_stages() lists each group's"
            raise UnknownLayerError(name, list(shapes), f"{model_name} ({hint})")
    return names


def random_tensors(layer: str, shapes: Mapping[str, tuple], seed: int = 0) -> dict[str, np.ndarray]:
    """New float32 ``{tensor: array}`` for ``layer`` from PyTorch's names and shapes: a kernel
    (``weight`` ``[out, in, ...]``) He-normal, the rest as in a new layer (``weight`` and
    ``running_var`` 1, ``bias`` and ``running_mean`` 0)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    new = {}
    for tensor, shape in shapes.items():
        if tensor == "weight" and len(shape) >= 2:
            rng = np.random.default_rng([int(seed), zlib.crc32(f"{layer}.{tensor}".encode())])
            std = np.sqrt(2.0 / np.prod(shape[1:]))  # fan_in: every axis but the output one
            new[tensor] = (rng.standard_normal(tuple(shape)) * std).astype(np.float32)
        elif tensor in ("weight", "running_var", "bias", "running_mean"):
            new[tensor] = np.full(shape, float(tensor in ("weight", "running_var")), np.float32)
        else:
            raise ValueError(f"layer {layer!r}: no rule to re-initialise tensor {tensor!r}")
    return new
