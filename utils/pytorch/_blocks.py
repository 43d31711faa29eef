"""The PyTorch building blocks every helper in :mod:`utils.pytorch` uses, one of each:
:func:`eval_mode`, :func:`device_of`, :func:`model_input`, :func:`run_until`,
:func:`exact_float32`, :func:`get_module` / :func:`resolve_modules` and :func:`to_input`.
Internal (not in ``utils.pytorch.__all__``); the lessons show the raw mechanisms instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from utils.layers import UnknownLayerError


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model.eval()`` while the block runs, then every submodule gets its own previous
    ``training`` flag back (also on exceptions): a fine-tuned model whose frozen backbone was in
    eval mode comes back exactly as it was, which ``model.train(was_training)`` would not do."""
    saved = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in saved:
            module.training = training


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter, else of its first buffer, else the CPU.

    Raises:
        ValueError: the model is on the ``meta`` device (shapes but no values).
    """
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    device = torch.device("cpu") if tensor is None else tensor.device
    if device.type == "meta":
        raise ValueError(
            f"{type(model).__name__} is on the 'meta' device: its tensors have shapes but no values, "
            "so it cannot be run. Materialise it first, e.g. model.to_empty(device='cpu') and then "
            "model.load_state_dict(...)"
        )
    return device


def _float_dtype_of(model: nn.Module) -> torch.dtype | None:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def to_input(images) -> torch.Tensor:
    """A NumPy batch ``[N, H, W, C]`` (or one image ``[H, W, C]``), as from
    :func:`utils.preprocess.preprocess` -> a float32 CPU tensor ``[N, C, H, W]``. A torch tensor
    is returned unchanged (assumed ``[N, C, H, W]``)."""
    if isinstance(images, torch.Tensor):
        return images
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"expected images [N, H, W, C], got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def model_input(model: nn.Module, images) -> torch.Tensor:
    """:func:`to_input` ``(images)`` on the model's device, in the float dtype of its parameters
    (non-float tensors keep theirs). Raises ``ValueError`` for a tensor on the ``meta`` device."""
    x = to_input(images)
    if x.device.type == "meta":
        raise ValueError("the input tensor is on the 'meta' device: it has a shape but no values")
    dtype = _float_dtype_of(model) if x.is_floating_point() else None
    return x.to(device=device_of(model), dtype=dtype or x.dtype)


class _Stop(Exception):
    """Raised by :func:`run_until`'s hook to end the forward pass; caught there, never seen."""


def run_until(model: nn.Module, module: nn.Module | str, x) -> torch.Tensor:
    """Run ``model(x)`` only until ``module`` (a submodule or its name) has produced its output
    (its first call), and return that output, with its autograd graph when gradients are on: a
    forward hook keeps it and raises to end the pass, so later layers cost nothing.

    Raises:
        UnknownLayerError: ``module`` is a name the model does not have.
        RuntimeError: the forward pass ended without running ``module``.
    """
    if isinstance(module, str):
        name, module = module, get_module(model, module)
    else:
        name = type(module).__name__
    kept: list = []

    def stop(_module, _inputs, output):
        kept.append(output)
        raise _Stop

    handle = module.register_forward_hook(stop)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not kept:  # also when the model's own code swallowed _Stop: then kept is filled
        raise RuntimeError(f"layer {name!r} did not run in the forward pass of {type(model).__name__}")
    return kept[0]


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """PyTorch's TF32 off (cuDNN convolutions, CUDA matmuls) while the block runs, then restored.
    On recent GPUs TF32 (10-bit mantissa) would move feature maps by ~1e-3 and fail every
    agreement check; on a CPU this changes nothing."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (``"layer1.0.conv1"``), or :class:`UnknownLayerError`
    listing the valid names. Many names: :func:`resolve_modules` (one walk for all)."""
    return resolve_modules(model, [name])[name]


def module_table(model: nn.Module) -> dict[str, nn.Module]:
    """``{name: submodule}`` of the whole model (the model itself is ``""``), from one walk."""
    return dict(model.named_modules())


def resolve_modules(model: nn.Module, names: list[str],
                    table: dict[str, nn.Module] | None = None) -> dict[str, nn.Module]:
    """``{name: submodule}`` for ``names``, from one walk of ``model`` (or from ``table``, its
    :func:`module_table`). Raises :class:`UnknownLayerError` for the first unknown name."""
    table = module_table(model) if table is None else table
    for name in names:
        if not isinstance(name, str) or not name or name not in table:
            raise UnknownLayerError(name, [n for n in table if n], type(model).__name__)
    return {name: table[name] for name in names}
