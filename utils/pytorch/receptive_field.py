"""Receptive fields of a PyTorch model, from one forward pass of a blank image under a
``TorchFunctionMode`` that gives each result the field of the tensors it was computed from: padding
done in ``forward`` and skip branches that run late are followed as the data flows."""

from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from utils import receptive_field as rf
from utils.pytorch._blocks import _Stop, device_of, eval_mode, get_module

__all__ = ["ReceptiveField", "receptive_field"]
ReceptiveField = rf.ReceptiveField
_WINDOWS = {"conv2d": 3, "max_pool2d": 2, "avg_pool2d": 2}  # op -> position of its stride argument
_REDUCTIONS = {"mean", "sum", "amax", "max", "adaptive_avg_pool2d", "adaptive_max_pool2d"}


def _tensors(values):
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _tensors(value)


class _Fields(TorchFunctionMode):
    def __init__(self, input_size):
        super().__init__()
        self.whole = rf.ReceptiveField(input_size, (0, 0))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        sources = [t for t in _tensors([args, list((kwargs or {}).values())]) if hasattr(t, "_field")]
        for result in _tensors([out]) if sources else ():
            result._field = self._field(getattr(func, "__name__", ""), list(args), kwargs or {},
                                        sources, result)
        return out

    def _field(self, op, args, kwargs, sources, out) -> rf.ReceptiveField:
        src = sources[0]
        if out.ndim != 4 or (op in _REDUCTIONS and out.shape[-2:] == (1, 1)):
            return self.whole
        if op in _WINDOWS:  # positional arguments from the stride on, then keywords
            stride, padding, dilation = (args[_WINDOWS[op]:] + [None, 0, 1])[:3]
            stride, padding = kwargs.get("stride", stride), kwargs.get("padding", padding)
            dilation = 1 if op == "avg_pool2d" else kwargs.get("dilation", dilation)
            kernel = (args[1:] or [kwargs.get("kernel_size")])[0]
            kernel = kernel.shape[-2:] if op == "conv2d" else kernel
            if isinstance(padding, str):  # PyTorch's "same": the odd padding pixel at the end
                padding = [(k - 1) * d // 2 * (padding == "same") for k, d in zip(kernel, rf.pair(dilation))]
            return src._field.window(kernel, stride or kernel, dilation, padding)
        if op == "pad":  # (left, right, top, bottom); negative pads crop
            pad = tuple((args[1:] or [kwargs.get("pad")])[0]) + (0, 0)
            return src._field.window(1, 1, 1, (pad[2], pad[0]))
        if op in rf.MOVES_PIXELS or out.shape[-2:] not in {t.shape[-2:] for t in sources}:
            raise rf.unknown_operation(op, tuple(src.shape[-2:]), tuple(out.shape[-2:]))
        return rf.union(t._field for t in sources)


def receptive_field(model: nn.Module, layer: str, input_size=None) -> rf.ReceptiveField:
    """The receptive field of ``layer``'s output (its first call) for an ``input_size`` ``(H, W)``
    image (default 224 x 224: "same" padding depends on it), from a forward pass of a blank image
    (eval mode, no gradients, the model's dtype and device) that stops at ``layer``. Raises
    ``UnknownLayerError`` for a bad name, ``NotImplementedError`` naming an unknown operation."""
    module, size = get_module(model, layer), rf.pair(224 if input_size is None else input_size)
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = torch.zeros(1, conv.in_channels if conv else 3, *size, dtype=dtype, device=device_of(model))
    x._field, found = rf.ReceptiveField((1, 1)), []

    def keep(_module, _inputs, output):
        found.append(getattr(output, "_field", None))
        raise _Stop

    handle = module.register_forward_hook(keep)
    try:
        with eval_mode(model), torch.no_grad(), _Fields(size):
            model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not found or found[0] is None:
        raise RuntimeError(f"layer {layer!r} did not produce a tensor computed from the input")
    return found[0]
