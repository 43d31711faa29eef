"""Do a PyTorch model and its Keras twin compute the same thing? Compare them layer by layer.

For each layer: bring both activations to one layout (channels last), then report

* the shape (a mismatch fails at once),
* ``max |a - b|``, the largest absolute difference, and
* ``max |a - b| / max |a|``, the same *relative to the layer's scale* (``a`` is PyTorch's output).
  Activations grow and shrink from layer to layer, so only the relative error can be held to one
  tolerance. It is never a signed difference: errors of opposite sign must not cancel.

A layer passes when its relative error is at most ``tol`` (1e-5 by default: float32 twins that
compute the same function differ by a few 1e-6 through rounding; a porting bug gives 1e-3 or more).
Everything runs in float32 with TF32 disabled (on a GPU TF32 alone would cost ~1e-3).

Two entry points::

    report = check_agreement(torch_model, keras_model, ["_conv_stem", "_blocks.3"], images)
    report = compare_activations(torch_maps, keras_maps)       # maps you captured yourself
    report.passed          # True / False
    print(report)          # table with the numbers
    print(report.stable_text())   # PASS/FAIL per layer, no raw floats (for notebook tests)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from utils._import_order import import_tensorflow
from utils.layers import as_name_list, call_key
from utils.layout import as_numpy, to_channels_last

DEFAULT_TOL = 1e-5


@dataclass(frozen=True)
class AgreementRow:
    """One compared layer. ``shape`` is channels-last; errors are NaN when the shapes differ
    or a side is missing (``note`` says which)."""

    layer: str
    shape: tuple
    max_abs_error: float
    rel_error: float
    passed: bool
    note: str = ""


def _bucket(value: float, tol: float) -> str:
    """A jitter-free label for a relative error: ``"< tol"`` when it passes, else the decade."""
    if value <= tol:
        return f"<= {tol:.0e}"
    if not math.isfinite(value):
        return "n/a"
    return f">= 1e{math.floor(math.log10(value)):+03d}"


class AgreementReport:
    """Per-layer comparison of two frameworks' activations.

    Attributes:
        rows: list of :class:`AgreementRow`, in the order the layers were given.
        tol: the relative-error tolerance each layer was held to.
        passed: ``True`` when every layer passed (and there is at least one).
    """

    def __init__(self, rows: list[AgreementRow], tol: float):
        self.rows = list(rows)
        self.tol = tol

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(row.passed for row in self.rows)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def worst(self) -> AgreementRow | None:
        """The row with the largest relative error (failed shape/missing rows first)."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda r: math.inf if math.isnan(r.rel_error) else r.rel_error)

    def _width(self) -> int:
        return max([len("layer")] + [len(r.layer) for r in self.rows])

    def __str__(self) -> str:
        w = self._width()
        lines = [
            f"{'layer':<{w}}  {'shape (channels last)':<22} {'max abs err':>11} {'rel err':>9}  result",
            "-" * (w + 59),
        ]
        for r in self.rows:
            result = "PASS" if r.passed else "FAIL"
            note = f"  ({r.note})" if r.note else ""
            lines.append(
                f"{r.layer:<{w}}  {r.shape!s:<22} {r.max_abs_error:>11.2e} {r.rel_error:>9.2e}"
                f"  {result}{note}"
            )
        lines.append(self._summary())
        return "\n".join(lines)

    def _summary(self) -> str:
        bad = sum(not r.passed for r in self.rows)
        verdict = "all agree" if self.passed else f"{bad} of {len(self.rows)} disagree"
        return f"{len(self.rows)} layers, tolerance {self.tol:.0e} (relative): {verdict}"

    def stable_text(self) -> str:
        """The report without raw floats, identical across machines and runs: per layer its
        shape, PASS/FAIL and the relative error as a bucket (``<= 1e-05`` or ``>= 1e-03``).
        Use it in notebook cells whose output is checked (nbval)."""
        w = self._width()
        lines = []
        for r in self.rows:
            result = "PASS" if r.passed else "FAIL"
            lines.append(
                f"{r.layer:<{w}}  {r.shape!s:<22} {result}  rel {_bucket(r.rel_error, self.tol)}"
            )
        lines.append(self._summary())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<AgreementReport: {self._summary()}>"

    def _repr_pretty_(self, p, cycle):  # IPython shows the table
        p.text(str(self))


def relative_error(reference, other) -> tuple[float, float]:
    """``(max |a - b|, max |a - b| / max |a|)`` with ``a = reference`` (computed in float64).
    An all-zero reference gives relative error 0 when ``b`` is zero too, else infinity."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    if scale == 0.0:
        return max_abs, 0.0 if max_abs == 0.0 else math.inf
    return max_abs, max_abs / scale


def _channels_last(x) -> np.ndarray:
    x = as_numpy(x)
    return to_channels_last(x) if x.ndim == 4 else x


def compare_activations(
    torch_maps: Mapping[str, object], keras_maps: Mapping[str, object], tol: float = DEFAULT_TOL
) -> AgreementReport:
    """Compare activations captured in both frameworks, paired by key.

    Args:
        torch_maps: ``{layer: activation}`` in PyTorch's layout (``[N, C, H, W]`` or
            ``[N, features]``), e.g. ``utils.pytorch.feature_maps(...)`` or
            ``ActivationCapture.as_dict()`` (a second call of a module has key ``name_1``).
        keras_maps: ``{layer: activation}`` in Keras' layout (``[N, H, W, C]``), same keys.
        tol: a layer passes when ``max|a - b| / max|a| <= tol``.

    Returns:
        :class:`AgreementReport`, rows in the order of ``torch_maps`` (then keys only Keras has).
    """
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    rows = []
    for key in list(torch_maps) + [k for k in keras_maps if k not in torch_maps]:
        if key not in keras_maps or key not in torch_maps:
            side = "Keras" if key not in keras_maps else "PyTorch"
            shape = tuple(_channels_last(torch_maps.get(key, keras_maps.get(key))).shape)
            rows.append(AgreementRow(key, shape, math.nan, math.nan, False, f"missing in {side}"))
            continue
        a = _channels_last(torch_maps[key])
        b = as_numpy(keras_maps[key])
        if a.shape != b.shape:
            note = f"shape mismatch: PyTorch {a.shape} vs Keras {b.shape}"
            rows.append(AgreementRow(key, tuple(a.shape), math.nan, math.nan, False, note))
            continue
        max_abs, rel = relative_error(a, b)
        rows.append(AgreementRow(key, tuple(a.shape), max_abs, rel, rel <= tol))
    return AgreementReport(rows, tol)


@contextlib.contextmanager
def exact_float32():
    """Switch TF32 off (PyTorch and TensorFlow) while the block runs, restoring the previous
    settings afterwards. TF32 exists only on GPUs; on a CPU this changes nothing."""
    import torch

    tf = import_tensorflow()
    saved = None
    if torch.cuda.is_available():
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    tf_saved = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf_saved)
        if saved is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _keras_maps(keras_model, names: list[str], images) -> dict[str, np.ndarray]:
    """Outputs of the named layers from one multi-output sub-model call."""
    import_tensorflow()
    import keras

    outputs = [keras_model.get_layer(name).output for name in names]
    inputs = keras_model.inputs[0] if len(keras_model.inputs) == 1 else keras_model.inputs
    sub_model = keras.Model(inputs, outputs)
    results = sub_model(np.asarray(images, dtype=np.float32), training=False)
    if len(names) == 1 and not isinstance(results, (list, tuple)):
        results = [results]
    return {name: as_numpy(out) for name, out in zip(names, results)}


def check_agreement(
    torch_model, keras_model, layers: str | Iterable[str], images, tol: float = DEFAULT_TOL
) -> AgreementReport:
    """Run a PyTorch model (with forward hooks) and its Keras twin (as a multi-output sub-model)
    on the same images and compare the named layers.

    Args:
        torch_model: the PyTorch model (run in ``eval()`` mode; its mode is restored).
        keras_model: its Keras twin (run with ``training=False``).
        layers: PyTorch module names. A module that runs several times (torchvision's ResNet
            ``relu``) is compared once per call, against Keras layers ``name``, ``name_1``...
            (:func:`utils.port.keras_names_for`); ``"name_1"`` selects one call.
        images: preprocessed float32 batch ``[N, H, W, C]`` (:func:`utils.preprocess.preprocess`).
        tol: relative-error tolerance per layer.

    Returns:
        :class:`AgreementReport`; ``report.passed`` is the verdict.
    """
    import torch

    from utils.port import keras_names_for, split_call_key
    from utils.pytorch.capture import ActivationCapture

    names = as_name_list(layers)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"expected preprocessed images [N, H, W, C], got shape {images.shape}")
    torch_names = [n for n, _ in torch_model.named_modules() if n]
    wanted = [split_call_key(name, torch_names) for name in names]  # (module, call) or whole
    modules = list(dict.fromkeys(module for module, _ in wanted))

    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    device = next(torch_model.parameters(), torch.empty(0)).device
    was_training = torch_model.training
    torch_model.eval()
    try:
        with exact_float32():
            with ActivationCapture(torch_model, modules) as cap, torch.inference_mode():
                torch_model(x.to(device))
            # Which keys to compare: every call of a plain name, one call of a "name_k" key.
            keys = []
            for name, (module, _call) in zip(names, wanted):
                if name == module:
                    runs = max(len(cap.calls[module]), len(keras_names_for(module, keras_model)))
                    keys += [call_key(module, i) for i in range(runs)]
                else:
                    keys.append(name)
            torch_maps = {}
            for key in keys:
                module, call = split_call_key(key, torch_names)
                if call < len(cap.calls[module]):  # else: reported as missing in PyTorch
                    torch_maps[key] = as_numpy(cap.calls[module][call])
            keras_layer_names = {layer.name for layer in keras_model.layers}
            keras_maps = _keras_maps(
                keras_model, [k for k in keys if k in keras_layer_names], images
            )
    finally:
        torch_model.train(was_training)
    reordered = _reorder_flattened(torch_maps, keras_model, keras_layer_names)
    report = compare_activations(torch_maps, keras_maps, tol)
    order = {k: i for i, k in enumerate(keys)}
    report.rows.sort(key=lambda r: order.get(r.layer, len(order)))
    report.rows[:] = [
        dataclasses.replace(r, note=r.note or "PyTorch's C,H,W order -> H,W,C")
        if r.layer in reordered
        else r
        for r in report.rows
    ]
    return report


def _reorder_flattened(torch_maps: dict, keras_model, keras_layer_names) -> set[str]:
    """A ``Flatten`` of a ``[C, H, W]`` map lists its numbers in a different order in each
    framework (PyTorch C,H,W; Keras H,W,C). Put PyTorch's flattened outputs into Keras' order
    (in place) so the two can be compared; return the keys that were reordered."""
    import_tensorflow()
    import keras

    reordered = set()
    for key, a in torch_maps.items():
        if key not in keras_layer_names or a.ndim != 2:
            continue
        layer = keras_model.get_layer(key)
        if not isinstance(layer, keras.layers.Flatten) or len(layer.input.shape) != 4:
            continue
        h, w, c = layer.input.shape[1:]
        if h * w > 1 and a.shape[1] == h * w * c:
            torch_maps[key] = a.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(a.shape[0], -1)
            reordered.add(key)
    return reordered
