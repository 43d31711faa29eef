"""Tensor layouts of the two frameworks, and conversions between them.

=====================  ==========================  ==========================
what                   PyTorch                     TensorFlow / Keras
=====================  ==========================  ==========================
activations            ``[N, C, H, W]``            ``[N, H, W, C]``
conv kernel            ``[out, in, kh, kw]``       ``[kh, kw, in, out]``
depthwise kernel       ``[C * m, 1, kh, kw]``      ``[kh, kw, C, m]``
dense (linear) weight  ``[out, in]``               ``[in, out]``
=====================  ==========================  ==========================

``m`` is the depth multiplier (1 in the course's models). The *canonical* kernel layout is
PyTorch's: both ``conv_filters`` return it. Everything here works on NumPy arrays
(:func:`as_numpy` converts a tensor).
"""

from __future__ import annotations

import numpy as np


def as_numpy(x) -> np.ndarray:
    """``x`` as a NumPy array (torch tensors detached and on the CPU; arrays unchanged)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy"):  # tf.Tensor, tf.Variable, keras Variable
        return np.asarray(x.numpy())
    return np.asarray(x)


def _check_ndim(x: np.ndarray, ndim: int, expected: str, what: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{what}: expected a {ndim}-D array {expected}, got shape {tuple(x.shape)}")


def to_channels_last(x) -> np.ndarray:
    """PyTorch activations ``[N, C, H, W]`` (or one map ``[C, H, W]``) -> Keras ``[N, H, W, C]``."""
    x = as_numpy(x)
    if x.ndim == 3:
        return np.ascontiguousarray(np.transpose(x, (1, 2, 0)))
    _check_ndim(x, 4, "[N, C, H, W] or [C, H, W]", "to_channels_last")
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def to_channels_first(x) -> np.ndarray:
    """Keras activations ``[N, H, W, C]`` (or one map ``[H, W, C]``) -> PyTorch ``[N, C, H, W]``."""
    x = as_numpy(x)
    if x.ndim == 3:
        return np.ascontiguousarray(np.transpose(x, (2, 0, 1)))
    _check_ndim(x, 4, "[N, H, W, C] or [H, W, C]", "to_channels_first")
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def torch_kernel_to_keras(w, depthwise: bool = False) -> np.ndarray:
    """A PyTorch conv weight -> the Keras kernel of the same layer.

    Regular: ``[out, in, kh, kw]`` -> ``[kh, kw, in, out]``.
    Depthwise (``groups == channels``, depth multiplier 1, as in every model of the course):
    ``[C, 1, kh, kw]`` -> ``[kh, kw, C, 1]``.
    """
    w = as_numpy(w)
    _check_ndim(w, 4, "[out, in, kh, kw]", "torch_kernel_to_keras")
    if not depthwise:
        return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))
    if w.shape[1] != 1:
        raise ValueError(
            f"torch_kernel_to_keras(depthwise=True): expected [C*m, 1, kh, kw], got {w.shape}; "
            "a depthwise PyTorch weight has one input channel per group"
        )
    # A multiplier m > 1 cannot be told from the weight alone ([C*m, 1, kh, kw] looks like m = 1
    # with C*m channels), so this is the m = 1 case; keras_kernel_to_torch handles any m.
    kh, kw = w.shape[2:]
    return np.ascontiguousarray(np.transpose(w[:, 0], (1, 2, 0)).reshape(kh, kw, -1, 1))


def keras_kernel_to_torch(w, depthwise: bool = False) -> np.ndarray:
    """A Keras conv kernel -> the PyTorch weight of the same layer (inverse of
    :func:`torch_kernel_to_keras`).

    Regular: ``[kh, kw, in, out]`` -> ``[out, in, kh, kw]``.
    Depthwise: ``[kh, kw, C, m]`` -> ``[C * m, 1, kh, kw]``.
    """
    w = as_numpy(w)
    _check_ndim(w, 4, "[kh, kw, in, out]", "keras_kernel_to_torch")
    if not depthwise:
        return np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1)))
    kh, kw, c, m = w.shape
    return np.ascontiguousarray(np.transpose(w.reshape(kh, kw, c * m), (2, 0, 1))[:, None])


def torch_dense_to_keras(w) -> np.ndarray:
    """``nn.Linear.weight`` ``[out, in]`` -> ``keras.layers.Dense`` kernel ``[in, out]``."""
    w = as_numpy(w)
    _check_ndim(w, 2, "[out, in]", "torch_dense_to_keras")
    return np.ascontiguousarray(w.T)


def guess_layout(x, channels: int | None = None) -> str:
    """``"channels_first"`` or ``"channels_last"`` for activations ``[N, ., ., .]`` or one map:
    from ``channels`` when given, else the axis beside two equal (square) ones; ``ValueError``
    when ambiguous."""
    shape = as_numpy(x).shape
    if len(shape) not in (3, 4):
        raise ValueError(f"expected [N, C, H, W], [N, H, W, C] or a single map, got shape {shape}")
    dims = shape[-3:]
    if channels is not None:
        if dims[0] == channels and dims[-1] != channels:
            return "channels_first"
        if dims[-1] == channels and dims[0] != channels:
            return "channels_last"
    if dims[1] == dims[2] and dims[0] != dims[1]:
        return "channels_first"
    if dims[0] == dims[1] and dims[2] != dims[1]:
        return "channels_last"
    raise ValueError(f"cannot tell whether shape {shape} is channels-first or channels-last; "
                     "pass layout='channels_first' (PyTorch) or layout='channels_last' (Keras)")
