"""Capture intermediate activations of a PyTorch model with forward hooks.

The raw mechanism, which the lessons show first::

    handle = model.conv1.register_forward_hook(lambda module, inputs, output: store(output))
    ...
    handle.remove()

:class:`ActivationCapture` wraps it: hooks are always removed (also on exceptions); a module that
runs several times per forward pass (torchvision's ResNet ReLU) gives one result per call; an
unknown name fails at once with the closest match; and captured values stay what the layer
produced although outputs are copied only when something could overwrite them (``clone="auto"``):

1. every module with ``inplace=True`` (``nn.ReLU(inplace=True)``, ``Dropout``...) gets a forward
   *pre*-hook that copies the stored outputs its input shares memory with, before overwriting them;
2. every stored output remembers its version counter (``tensor._version``). An in-place op no
   module announces (``out += identity``) changes it: the capture checks after each forward pass
   and when results are read, and raises :class:`CaptureOverwrittenError` naming the layer (then
   capture it with ``clone=[its name]``, as :func:`feature_maps` does; under
   ``torch.inference_mode()``, which has no version counters, every output is copied).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from utils.layers import UnknownLayerError, as_name_list, call_key
from utils.layout import as_numpy
from utils.pytorch._blocks import (
    eval_mode,
    exact_float32,
    get_module,
    model_input,
    module_table,
    resolve_modules,
    to_input,
)

__all__ = ["ActivationCapture", "CaptureOverwrittenError", "feature_maps", "get_module",
           "layer_names", "to_input"]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_COPY, _GUARD, _RAW = "copy", "guard", "raw"  # per-layer policies, from the `clone` argument


class CaptureOverwrittenError(RuntimeError):
    """An unannounced in-place operation changed a captured output; ``.layers`` names them."""

    def __init__(self, layers: list[str]):
        self.layers = list(layers)
        super().__init__(
            f"an in-place operation changed the output of {self.layers} after the layer ran (for "
            "example `out += identity` in a ResNet block, or F.relu(x, inplace=True) in forward()), "
            "so the captured values would be wrong. Capture with clone=True (copies every output) "
            f"or clone={self.layers!r} (copies only these); feature_maps() does this by itself."
        )


def layer_names(model: nn.Module, kind: str | None = None) -> list[str]:
    """Names of the capturable modules (``named_modules()`` names such as ``"layer1.0.conv1"``),
    in definition order. ``kind``: ``None`` every submodule, ``"conv"`` convolutions (depthwise
    included), ``"leaf"`` modules without children."""
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


def _policies(clone, layers: list[str]) -> dict[str, str]:
    """The ``clone`` argument -> ``{layer: _COPY | _GUARD | _RAW}``."""
    if clone is True or clone is False or clone == "auto":
        policy = {True: _COPY, False: _RAW}.get(clone, _GUARD)
        return dict.fromkeys(layers, policy)
    if isinstance(clone, str) or not isinstance(clone, Iterable):
        raise ValueError(f"clone must be 'auto', True, False or a list of layer names, got {clone!r}")
    copied = as_name_list(list(clone))
    unknown = [name for name in copied if name not in layers]
    if unknown:
        raise ValueError(f"clone names {unknown} are not among the captured layers {layers}")
    return {name: _COPY if name in copied else _GUARD for name in layers}


def _storage_key(tensor: torch.Tensor) -> int | None:
    """The memory a tensor lives in (shared by views); ``None`` without ordinary storage."""
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


def _version(tensor: torch.Tensor) -> int | None:
    """The in-place version counter, or ``None`` where there is none (inference mode)."""
    if tensor.is_inference():
        return None
    try:
        return tensor._version
    except RuntimeError:
        return None


class _Guarded:
    """A stored output not copied: where it is, and its version when stored."""

    __slots__ = ("name", "index", "tensor", "version", "copied")

    def __init__(self, name: str, index: int, tensor: torch.Tensor, version: int):
        self.name, self.index, self.tensor, self.version = name, index, tensor, version
        self.copied = False


class ActivationCapture:
    """Record the outputs of named modules during forward passes, inside the ``with`` block::

        with ActivationCapture(model, ["conv1", "layer1.0.relu"]) as cap:
            with torch.no_grad():
                model(x)
        cap["conv1"]                   # output of conv1, [N, C, H, W]
        cap.calls["layer1.0.relu"]     # [first call's output, second call's output]

    Args:
        model: the network.
        layers: one module name or a list of them (see :func:`layer_names`).
        to_cpu: move captured tensors to the CPU (the move is a copy).
        clone: ``"auto"`` (default): copy only what an in-place module is about to overwrite and
            raise :class:`CaptureOverwrittenError` if anything else changed it (module
            docstring). ``True``: copy every output. A list of names: copy those, ``"auto"`` for
            the rest. ``False``: no copy, no check (the raw hook).

    Captured tensors are detached, and checked until the ``with`` block ends.
    """

    def __init__(self, model: nn.Module, layers: str | Iterable[str], *, to_cpu: bool = True,
                 clone: bool | str | Iterable[str] = "auto"):
        self.model = model
        self.layers = as_name_list(layers)
        table = module_table(model)  # one walk of the model for every name and the in-place check
        self._modules = resolve_modules(model, self.layers, table)
        # vars(): `inplace` is a plain instance attribute; getattr() on a module without it goes
        # through nn.Module.__getattr__ and an AttributeError, 3x slower over a whole model
        self._inplace = [m for m in table.values() if vars(m).get("inplace") is True]
        self.to_cpu = to_cpu
        self._policy = _policies(clone, self.layers)
        self._calls: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self._pending: dict[int, list[_Guarded]] = {}  # storage -> outputs stored without a copy
        self._guarded: list[_Guarded] = []
        self._checked = 0  # self._guarded[:_checked] were verified at the end of a forward pass
        self._handles: list = []

    # -- hook management -------------------------------------------------------------------
    def __enter__(self) -> ActivationCapture:
        if self._handles:
            raise RuntimeError("this ActivationCapture is already active; do not nest it in itself")
        try:
            for name, module in self._modules.items():
                self._handles.append(module.register_forward_hook(self._make_hook(name)))
            if _GUARD in self._policy.values():
                self._guard_inplace_modules()
        except BaseException:
            self.remove()
            raise
        return self

    def _guard_inplace_modules(self) -> None:
        for module in self._inplace:
            self._handles.append(module.register_forward_pre_hook(self._before_inplace))
        # Checking at the end of each forward pass raises from model(x), where the user looks.
        self._handles.append(self.model.register_forward_hook(self._after_forward))

    def __exit__(self, exc_type, *exc_info) -> None:
        self.remove()  # runs on exceptions too; the exception itself propagates
        try:
            if exc_type is None:
                self._verify(0)
        finally:  # the outputs are the caller's now: no more checks, no references kept twice
            self._pending.clear()
            self._guarded.clear()
            self._checked = 0

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
        policy = self._policy[name]

        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f"layer {name!r} ({type(module).__name__}) returned {type(output).__name__}, "
                    "not a tensor; capture one of its submodules instead"
                )
            self._store(name, policy, output.detach())

        return hook

    def _store(self, name: str, policy: str, saved: torch.Tensor) -> None:
        if self.to_cpu and saved.device.type != "cpu":
            saved = saved.cpu()  # the move is a copy already: nothing can overwrite it
        elif policy == _COPY:
            saved = saved.clone()
        elif policy == _GUARD:
            saved = self._guard(name, saved)
        self._calls[name].append(saved)

    def _guard(self, name: str, saved: torch.Tensor) -> torch.Tensor:
        """Store without a copy, remembering storage and version; copy what cannot be checked."""
        version, key = _version(saved), _storage_key(saved)
        if version is None or key is None:  # inference mode: no version counter to check
            return saved.clone()
        entry = _Guarded(name, len(self._calls[name]), saved, version)
        self._guarded.append(entry)
        self._pending.setdefault(key, []).append(entry)
        return saved

    def _before_inplace(self, module, args) -> None:
        """Pre-hook of an in-place module: copy the stored outputs it is about to overwrite."""
        if not self._pending:
            return
        for arg in args:
            if isinstance(arg, torch.Tensor):
                for entry in self._pending.pop(_storage_key(arg), ()):
                    if entry.tensor._version != entry.version:
                        continue  # changed already by an unforeseen op: _verify reports it
                    self._calls[entry.name][entry.index] = entry.tensor.clone()
                    entry.copied = True

    def _after_forward(self, module, inputs, output) -> None:
        self._verify(self._checked)
        self._checked = len(self._guarded)

    def _verify(self, start: int) -> None:
        """Raise :class:`CaptureOverwrittenError` if an uncopied stored output changed."""
        changed = [e.name for e in self._guarded[start:] if not e.copied and e.tensor._version != e.version]
        if changed:
            raise CaptureOverwrittenError(list(dict.fromkeys(changed)))

    # -- results ---------------------------------------------------------------------------
    @property
    def calls(self) -> dict[str, list[torch.Tensor]]:
        """``{name: [output of call 0, output of call 1, ...]}`` (checked before it is returned)."""
        self._verify(0)
        return self._calls

    def __getitem__(self, name: str) -> torch.Tensor:
        """The output of ``name``. Raises if the layer did not run, or ran several times (then
        use ``cap.calls[name][i]``)."""
        if name not in self._calls:
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

    def clear(self) -> None:
        """Forget every recorded output (hooks stay registered)."""
        for outputs in self._calls.values():
            outputs.clear()
        self._pending.clear()
        self._guarded.clear()
        self._checked = 0

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Every recorded output by key; a layer that ran k times gives keys ``name``,
        ``name_1``, ..., ``name_{k-1}`` (the naming of the Keras twins)."""
        calls = self.calls
        return {call_key(name, i): out for name in self.layers for i, out in enumerate(calls[name])}

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        counts = ", ".join(f"{n}: {len(c)}" for n, c in self._calls.items())
        return f"ActivationCapture({state}; calls per layer: {counts})"


def feature_maps(model: nn.Module, layers: str | Iterable[str], images) -> dict[str, np.ndarray]:
    """Run ``model`` once (``eval()``, ``no_grad``, TF32 off) and return the named layers'
    outputs as NumPy ``[N, C, H, W]`` on the CPU; a layer that runs several times gives keys
    ``name``, ``name_1``, ...

    ``images``: NumPy ``[N, H, W, C]`` (see :func:`to_input`) or a tensor ``[N, C, H, W]``, moved
    to the model's device. Should an unannounced in-place op change an output, the pass is rerun
    copying those layers (``no_grad``, not ``inference_mode``, keeps the version counters).
    """
    names = as_name_list(layers)
    x = model_input(model, images)
    with eval_mode(model), exact_float32(), torch.no_grad():
        try:
            captured = _capture(model, names, x, "auto")
        except CaptureOverwrittenError as error:
            captured = _capture(model, names, x, error.layers)
    return {key: as_numpy(t) for key, t in captured.items()}


def _capture(model: nn.Module, names: list[str], x: torch.Tensor, clone) -> dict[str, torch.Tensor]:
    with ActivationCapture(model, names, clone=clone) as cap:
        model(x)
    return cap.as_dict()
