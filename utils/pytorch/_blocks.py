"""The PyTorch building blocks every helper in :mod:`utils.pytorch` uses, one of each.

=================================  ================================================================
``eval_mode(model)``               context manager: ``eval()`` inside, every module's own
                                   ``training`` flag restored afterwards (also on exceptions)
``device_of(model)``               the device a model computes on (CPU for a parameterless one)
``model_input(model, images)``     images -> a tensor on the model's device, in its float dtype
``run_until(model, module, x)``    run the forward pass only until ``module`` has produced its
                                   output, and return that output
``exact_float32()``                TF32 off while the block runs (GPUs only; CPUs have no TF32)
``get_module(model, name)``        a submodule by name, or :class:`UnknownLayerError`
``to_input(images)``               NumPy ``[N, H, W, C]`` -> tensor ``[N, C, H, W]``
=================================  ================================================================

They are internal (not in ``utils.pytorch.__all__``); the lessons show the raw mechanisms instead.
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
    """Put ``model`` in eval mode (BatchNorm uses its running statistics, dropout is off) while
    the block runs, then give every submodule back its own previous ``training`` flag.

    Restoring per module rather than calling ``model.train(was_training)`` matters: a model being
    fine-tuned with a frozen backbone in eval mode must come back exactly as it was, not with the
    backbone switched to training mode. Restored on exceptions too. Yields ``model``.
    """
    saved = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in saved:
            module.training = training


def device_of(model: nn.Module) -> torch.device:
    """The device ``model`` computes on: that of its first parameter, else of its first buffer,
    else the CPU (a model without tensors, e.g. ``nn.ReLU()``, runs wherever its input is; the CPU
    is where the helpers' NumPy inputs start).

    Raises:
        ValueError: the model is on the ``meta`` device: it has shapes but no values, so nothing
            can be computed with it (load real weights first, e.g. ``model.to_empty(device="cpu")``
            then ``load_state_dict``).
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
    """Preprocessed images -> the model's input tensor.

    ``images`` is the course's framework-neutral batch: a float32 NumPy array ``[N, H, W, 3]``
    (see :func:`utils.preprocess.preprocess`) or one image ``[H, W, 3]``; the result is a float32
    tensor ``[N, 3, H, W]`` on the CPU. A torch tensor is passed through unchanged (it is assumed
    to be ``[N, C, H, W]`` already).
    """
    if isinstance(images, torch.Tensor):
        return images
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"expected images [N, H, W, C], got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def model_input(model: nn.Module, images) -> torch.Tensor:
    """``images`` (as for :func:`to_input`) as a tensor on :func:`device_of` ``(model)``, in the
    floating dtype of the model's parameters (float64 for a model in double precision, float16 for
    a half-precision model on a GPU); non-float tensors keep their dtype.

    Raises:
        ValueError: ``images`` is a tensor on the ``meta`` device (it holds no values).
    """
    x = to_input(images)
    if x.device.type == "meta":
        raise ValueError("the input tensor is on the 'meta' device: it has a shape but no values")
    dtype = _float_dtype_of(model) if x.is_floating_point() else None
    return x.to(device=device_of(model), dtype=dtype or x.dtype)


class _Stop(Exception):
    """Raised by :func:`run_until`'s hook to end the forward pass; caught there, never seen."""


def run_until(model: nn.Module, module: nn.Module | str, x) -> torch.Tensor:
    """Run ``model(x)`` only until ``module`` has produced its output, and return that output.

    A forward hook on ``module`` keeps the output and raises a private exception that ends the
    forward pass, so the layers after ``module`` cost nothing (a scan of a stem layer costs the
    stem only). The output keeps its autograd graph when gradients are enabled (activation
    maximisation differentiates it). A module that runs several times per forward pass stops the
    pass at its first call. Nothing else changes: no mode switch, no device move, hook removed.

    Args:
        model: the network.
        module: a submodule of ``model``, or its name (see ``layer_names``).
        x: the model's input, passed as is: ``model(x)``.

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
    """Switch PyTorch's TF32 off (cuDNN convolutions and CUDA matmuls) while the block runs,
    restoring the previous settings afterwards.

    On Ampere and newer GPUs PyTorch runs float32 convolutions in TF32 by default (10-bit
    mantissa): feature maps then differ from the CPU's and the Keras twin's by ~1e-3, and every
    agreement check fails. The helpers that return values to compare use this block; on a CPU it
    changes nothing (TF32 does not exist there).
    """
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule of ``model`` called ``name`` (a ``named_modules()`` name such as
    ``"layer1.0.conv1"``), or :class:`UnknownLayerError` listing the valid names.

    To look up many names, use :func:`resolve_modules` (one walk of the model for all of them)."""
    return resolve_modules(model, [name])[name]


def module_table(model: nn.Module) -> dict[str, nn.Module]:
    """``{name: submodule}`` of the whole model, in definition order (the model itself is ``""``).
    One walk; callers that need several lookups build it once."""
    return dict(model.named_modules())


def resolve_modules(model: nn.Module, names: list[str],
                    table: dict[str, nn.Module] | None = None) -> dict[str, nn.Module]:
    """``{name: submodule}`` for every name in ``names``, from one walk of ``model`` (or from
    ``table``, a :func:`module_table` of it).

    Raises :class:`UnknownLayerError` (valid names, closest match) for the first unknown name.
    """
    table = module_table(model) if table is None else table
    for name in names:
        if not isinstance(name, str) or not name or name not in table:
            raise UnknownLayerError(name, [n for n in table if n], type(model).__name__)
    return {name: table[name] for name in names}
