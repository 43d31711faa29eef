"""Grad-CAM in PyTorch: a forward hook keeps a layer's output, autograd gives its gradient.

The raw mechanism, which lesson 9 shows step by step::

    kept = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, out: kept.update(a=out))
    logits = model(x)                                   # gradients enabled
    handle.remove()
    grads, = torch.autograd.grad(logits[:, c].sum(), kept["a"])
    weights = grads.mean(dim=(2, 3), keepdim=True)      # [N, C, 1, 1]
    heatmap = torch.relu((weights * kept["a"]).sum(dim=1))

:func:`gradcam` adds eval mode, the top-1 class by default and one class per image;
``autograd.grad`` differentiates only the layers after ``layer`` and sets no ``.grad``.
The neutral parts (result type, normalising, upsampling) are in :mod:`utils.gradcam`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.gradcam import GradCAMResult, check_class_index
from utils.pytorch._blocks import eval_mode, exact_float32, get_module, model_input

__all__ = ["GradCAMResult", "gradcam"]


def gradcam(model: nn.Module, layer: str, images, class_index=None) -> GradCAMResult:
    """Grad-CAM heatmaps of ``layer`` for a batch of images.

    Args:
        model: a classifier returning logits ``[N, classes]``, on any device; run in eval mode
            (restored afterwards) with TF32 off.
        layer: the module whose output ``[N, C, h, w]`` is explained, usually a late one
            (``"_relu1"``, Lite0's 7 x 7 head); it must run once per forward pass.
        images: NumPy batch ``[N, H, W, 3]`` (:func:`utils.preprocess.preprocess`) or a tensor
            ``[N, 3, H, W]``.
        class_index: ``None`` each image's top-1 class; an ``int`` for all; one per image.

    Returns:
        :class:`utils.gradcam.GradCAMResult` ``(heatmaps [N, h, w], class_indices [N], logits)``
        as NumPy: raw maps ``ReLU(sum_k w_k A_k)``, ``w_k`` the spatial mean of the class
        logit's gradient with respect to channel ``k`` of the layer's output ``A``.
    """
    module = get_module(model, layer)
    x = model_input(model, images)  # on the model's device: a model on a GPU works as is
    outputs: list[torch.Tensor] = []

    def keep_output(mod, inputs, output):
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"Grad-CAM needs a layer with feature maps [N, C, h, w]; {layer!r} gives {got}")
        if not output.requires_grad:  # frozen parameters: start the graph here instead
            output = output.detach().requires_grad_(True)
        outputs.append(output)
        # Later layers get a copy: an in-place operation after this layer (``out += identity`` in a
        # ResNet block) must not change the tensor we take the gradient for.
        return output.clone()

    handle = module.register_forward_hook(keep_output)
    try:
        with eval_mode(model), exact_float32(), torch.enable_grad():
            logits = model(x)
    finally:
        handle.remove()
    if len(outputs) != 1:
        raise ValueError(
            f"layer {layer!r} ran {len(outputs)} times in one forward pass; Grad-CAM needs a layer that "
            "runs once (e.g. a whole block such as 'layer4' instead of a shared ReLU)"
        )
    activations = outputs[0]
    chosen = check_class_index(class_index, len(logits), logits.shape[1])
    classes = logits.argmax(dim=1) if chosen is None else torch.as_tensor(chosen, device=logits.device)
    score = logits.gather(1, classes[:, None]).sum()  # images are independent: one backward for all
    with exact_float32():
        (grads,) = torch.autograd.grad(score, activations)
    with torch.no_grad():
        weights = grads.mean(dim=(2, 3), keepdim=True)  # [N, C, 1, 1]
        heatmaps = torch.relu((weights * activations).sum(dim=1))  # [N, h, w]
    return GradCAMResult(
        heatmaps.cpu().numpy().astype(np.float32),
        classes.cpu().numpy().astype(np.int64),
        logits.detach().cpu().numpy().astype(np.float32),
    )
