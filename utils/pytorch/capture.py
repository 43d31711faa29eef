"""Capture intermediate activations of a PyTorch model with forward hooks.

The raw mechanism, which the lessons show first, is one line per layer::

    handle = model.conv1.register_forward_hook(lambda module, inputs, output: store(output))
    ...
    handle.remove()

:class:`ActivationCapture` wraps exactly that, and takes care of what goes wrong in practice:

* hooks are always removed, also when the forward pass raises;
* outputs are cloned, so an in-place ReLU that runs later cannot overwrite what was captured;
* a module that runs several times in one forward pass (torchvision's ResNet calls one ReLU twice
  per block) yields one result per call, in order;
* gradients flowing back through a captured output can be kept (for Grad-CAM);
* results can be moved to the CPU;
* an unknown layer name fails at once, listing valid names and the closest match.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from utils.layers import UnknownLayerError, as_name_list, call_key
from utils.layout import as_numpy

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def layer_names(model: nn.Module, kind: str | None = None) -> list[str]:
    """Names of the modules of ``model`` that can be captured, in definition order.

    Args:
        model: any ``nn.Module``.
        kind: ``None`` for every submodule, ``"conv"`` for convolutions only (depthwise included),
            ``"leaf"`` for modules without children (the layers that do the computing).

    Returns:
        Names as in ``model.named_modules()``, e.g. ``"layer1.0.conv1"``.
    """
    kinds = (None, "conv", "leaf")
    if kind not in kinds:
        raise ValueError(f"kind must be one of {kinds}, got {kind!r}")
    names = []
    for name, module in model.named_modules():
        if not name:  # the model itself
            continue
        if kind == "conv" and not isinstance(module, _CONV_TYPES):
            continue
        if kind == "leaf" and next(module.children(), None) is not None:
            continue
        names.append(name)
    return names


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule of ``model`` called ``name`` (a ``named_modules()`` name such as
    ``"layer1.0.conv1"``), or :class:`UnknownLayerError` listing the valid names."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or not name or name not in modules:
        raise UnknownLayerError(name, [n for n in modules if n], type(model).__name__)
    return modules[name]


class ActivationCapture:
    """Record the outputs of named modules during forward passes.

    Use it as a context manager; the hooks exist only inside the ``with`` block::

        with ActivationCapture(model, ["conv1", "layer1.0.relu"]) as cap:
            with torch.no_grad():
                model(x)
        cap["conv1"]                   # output of conv1, [N, C, H, W]
        cap.calls["layer1.0.relu"]     # [first call's output, second call's output]

    Args:
        model: the network.
        layers: one module name or a list of them (see :func:`layer_names`).
        keep_grad: also record the gradient that flows back into each captured output, in
            ``cap.gradients[name]`` (one per call, in the order the forward pass ran them) after
            you call ``backward()``. Needs a forward pass with gradients enabled.
        to_cpu: move captured tensors to the CPU (saves accelerator memory).
        clone: copy each output. Turn off only when no in-place operation follows the captured
            layers; otherwise an in-place ReLU silently overwrites the captured values.

    Captured tensors are always detached; gradients are recorded separately, so a capture never
    keeps the autograd graph alive.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Iterable[str],
        *,
        keep_grad: bool = False,
        to_cpu: bool = True,
        clone: bool = True,
    ):
        self.model = model
        self.layers = as_name_list(layers)
        self._modules = {name: get_module(model, name) for name in self.layers}
        self.keep_grad = keep_grad
        self.to_cpu = to_cpu
        self.clone = clone
        self.calls: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self.gradients: dict[str, list[torch.Tensor | None]] = {name: [] for name in self.layers}
        self._handles: list = []

    # -- hook management -------------------------------------------------------------------
    def __enter__(self) -> ActivationCapture:
        if self._handles:
            raise RuntimeError("this ActivationCapture is already active; do not nest it in itself")
        try:
            for name, module in self._modules.items():
                self._handles.append(module.register_forward_hook(self._make_hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()  # runs on exceptions too; the exception itself propagates

    def remove(self) -> None:
        """Remove every hook this capture registered (called automatically on exit)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def active(self) -> bool:
        """Whether hooks are currently registered."""
        return bool(self._handles)

    def _make_hook(self, name: str):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f"layer {name!r} ({type(module).__name__}) returned {type(output).__name__}, "
                    "not a tensor; capture one of its submodules instead"
                )
            saved = output.detach()
            if self.clone:
                saved = saved.clone()
            if self.to_cpu:
                saved = saved.cpu()
            self.calls[name].append(saved)
            if self.keep_grad:
                if not output.requires_grad:
                    raise RuntimeError(
                        f"keep_grad=True, but the output of {name!r} does not require grad: run the "
                        "forward pass with gradients enabled (not inside torch.no_grad())"
                    )
                slot = len(self.gradients[name])
                self.gradients[name].append(None)

                def keep(grad, name=name, slot=slot):
                    g = grad.detach()
                    self.gradients[name][slot] = g.cpu() if self.to_cpu else g

                output.register_hook(keep)

        return hook

    # -- results ---------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        """The output of ``name``. Raises if the layer did not run, or ran several times (then
        use ``cap.calls[name][i]``)."""
        if name not in self.calls:
            raise UnknownLayerError(name, self.layers, "this capture")
        outputs = self.calls[name]
        if not outputs:
            raise LookupError(
                f"layer {name!r} did not run: call the model inside the `with` block, and check that "
                "the layer is used by forward()"
            )
        if len(outputs) > 1:
            raise LookupError(
                f"layer {name!r} ran {len(outputs)} times; use cap.calls[{name!r}][i] for call i "
                "(torchvision's ResNet, for example, reuses one ReLU module twice per block)"
            )
        return outputs[0]

    def gradient(self, name: str) -> torch.Tensor:
        """The gradient with respect to the output of ``name`` (single-call layers; after
        ``backward()``)."""
        self[name]  # same checks as for the activation
        grads = self.gradients[name]
        if not grads or grads[0] is None:
            raise LookupError(
                f"no gradient recorded for {name!r}: create the capture with keep_grad=True and call "
                "backward() on a result that depends on this layer"
            )
        return grads[0]

    def clear(self) -> None:
        """Forget every recorded output and gradient (hooks stay registered)."""
        for name in self.layers:
            self.calls[name].clear()
            self.gradients[name].clear()

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Every recorded output by key; a layer that ran k times gives keys ``name``,
        ``name_1``, ..., ``name_{k-1}`` (the naming of the Keras twins)."""
        return {
            call_key(name, i): out for name in self.layers for i, out in enumerate(self.calls[name])
        }

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        counts = ", ".join(f"{n}: {len(c)}" for n, c in self.calls.items())
        return f"ActivationCapture({state}; calls per layer: {counts})"


def to_input(images) -> torch.Tensor:
    """Preprocessed images -> the model's input tensor.

    ``images`` is the course's framework-neutral batch: a float32 NumPy array ``[N, H, W, 3]``
    (see :func:`utils.preprocess.preprocess`); the result is a float32 tensor ``[N, 3, H, W]``.
    A torch tensor is passed through unchanged (it is assumed to be ``[N, C, H, W]`` already).
    """
    if isinstance(images, torch.Tensor):
        return images
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"expected images [N, H, W, C], got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def feature_maps(model: nn.Module, layers: str | Iterable[str], images) -> dict[str, np.ndarray]:
    """Run ``model`` once in inference mode (``eval()``, no autograd) and return the named layers' outputs as NumPy arrays
    in PyTorch's layout ``[N, C, H, W]``.

    ``images``: a NumPy batch ``[N, H, W, C]`` (converted with :func:`to_input`) or a tensor
    ``[N, C, H, W]``. A layer that runs several times yields keys ``name``, ``name_1``, ...
    """
    x = to_input(images)
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()  # BatchNorm and dropout in inference behaviour, like Keras' predict()
    try:
        with ActivationCapture(model, layers) as cap, torch.inference_mode():
            model(x.to(device))
    finally:
        model.train(was_training)
    return {key: as_numpy(t) for key, t in cap.as_dict().items()}
