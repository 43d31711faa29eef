"""Do a PyTorch model and its Keras twin compute the same thing? Compare them layer by layer.

Both frameworks compute in float32 and round in different places (so do different CPUs and thread
counts): two correct programs never agree exactly. How close is close enough? A fixed tolerance on
the relative error ``max |a - b| / max |a|`` cannot say on every machine: a layer's rounding error
depends on the kernels the CPU runs and on the layer (after a ReLU6 the scale is capped at 6, the
error carried from before the clip is not; the correct Lite0 twin's worst relative error ranged
from 1.4e-5 to 2.3e-5 with the back-end).

So the verdict asks: **does the twin agree as well as float32 allows?** The yardstick is PyTorch
run a second time in float64 (a ``.double()`` copy): the *reference*. For each layer

* ``torch_error`` = ``max |PyTorch float32 - reference| / max |reference|``: what float32 costs;
* ``twin_error``  = ``max |Keras twin - reference| / max |reference|``: what the twin is off by;
* the layer passes when ``twin_error <= FACTOR * torch_error + FLOOR_EPS * eps``, with
  ``eps = 2**-23``; the floor covers layers PyTorch gets (almost) exact, e.g. all-zero maps.
  Both errors share the reference, so a layer's scale (a ReLU6 cap) cancels out.

FACTOR = FLOOR_EPS = 16, from the course's three models on the four sample images under every
numeric back-end the tests imitate: a correct twin used at most 0.26 of its allowance, each planted
porting bug (BatchNorm epsilon, reshaped kernel, symmetric padding) exceeded it at least 260 times.
The criterion assumes comparable arithmetic in both frameworks: a value one framework sums much
less exactly (the mean of a 112 x 112 map: ~1 eps in ``torch.mean``, ~40 eps in Keras'
``GlobalAveragePooling2D``) fails without a porting bug; compare such values with the fallback.
The table also shows ``max |a - b|`` and ``max |a - b| / max |a|`` (``a``: PyTorch), absolute
differences, never signed (errors of opposite sign must not cancel).

Two entry points::

    report = check_agreement(torch_model, keras_model, ["_conv_stem", "_blocks.3"], images)
    report = compare_activations(torch_maps, keras_maps, reference=reference_maps(
        torch_model, ["_conv_stem", "_blocks.3"], images))      # maps you captured yourself
    report.passed          # True / False
    print(report)          # table with the numbers
    print(report.stable_text())   # PASS/FAIL per layer, no raw floats (for notebook tests)

Without a reference, ``compare_activations`` falls back to a fixed relative tolerance
(``FALLBACK_TOL`` = 1e-4, ~4 x the worst measured for a correct twin), and says so: a quick check,
not a proof. ``check_agreement`` and ``reference_maps`` run with TF32 off.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from utils._import_order import import_tensorflow
from utils.layers import as_name_list, call_key
from utils.layout import as_numpy, to_channels_last

FACTOR = 16.0
FLOOR_EPS = 16.0
FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 2**-23 = 1.19e-07
FALLBACK_TOL = 1e-4
DEFAULT_TOL = FALLBACK_TOL  # the name used before the float64 criterion


@dataclass(frozen=True)
class AgreementRow:
    """One compared layer. ``shape`` is channels-last. ``max_abs_error`` and ``rel_error``
    compare the two float32 results directly; ``torch_error`` and ``twin_error`` are each
    framework's error against the float64 reference, relative to the layer's scale, and
    ``allowed`` the largest ``twin_error`` that passes (all three NaN without a reference).
    Errors are NaN when the shapes differ or a side is missing (``note`` says which)."""

    layer: str
    shape: tuple
    max_abs_error: float
    rel_error: float
    passed: bool
    note: str = ""
    torch_error: float = math.nan
    twin_error: float = math.nan
    allowed: float = math.nan

    @property
    def usage(self) -> float:
        """How much of its allowance the layer uses: ``twin_error / allowed`` (``<= 1``
        passes); infinite for a failed shape or a missing side."""
        if math.isnan(self.twin_error):
            return math.nan if self.passed else math.inf
        return self.twin_error / self.allowed


class AgreementReport:
    """Per-layer comparison of two frameworks' activations: ``rows`` (:class:`AgreementRow`, in
    the order the layers were given), ``tol`` (``None`` when judged against the float64
    reference, else the fallback's fixed tolerance), ``factor`` and ``floor`` (the criterion's
    constants) and ``passed`` (every layer passed, and there is at least one)."""

    def __init__(self, rows, tol: float | None = None, *, factor=FACTOR, floor=FLOOR_EPS):
        self.rows = list(rows)
        self.tol = tol
        self.factor = factor
        self.floor = floor

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(row.passed for row in self.rows)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def worst(self) -> AgreementRow | None:
        """The row closest to failing, or failing by most (failed shape/missing rows first)."""
        if not self.rows:
            return None
        if self.tol is None:
            return max(self.rows, key=lambda r: math.inf if math.isnan(r.usage) else r.usage)
        return max(self.rows, key=lambda r: math.inf if math.isnan(r.rel_error) else r.rel_error)

    def _width(self) -> int:
        return max([len("layer")] + [len(r.layer) for r in self.rows])

    def __str__(self) -> str:
        w = self._width()
        head = f"{'layer':<{w}}  {'shape (channels last)':<22} {'max abs err':>11} {'rel err':>9}"
        if self.tol is None:
            head += f"  {'PyTorch f32':>11} {'twin':>9} {'allowed':>9}"
        lines = [head + "  result", "-" * (len(head) + 8)]
        for r in self.rows:
            line = f"{r.layer:<{w}}  {r.shape!s:<22} {r.max_abs_error:>11.2e} {r.rel_error:>9.2e}"
            if self.tol is None:
                line += f"  {r.torch_error:>11.2e} {r.twin_error:>9.2e} {r.allowed:>9.2e}"
            note = f"  ({r.note})" if r.note else ""
            lines.append(f"{line}  {'PASS' if r.passed else 'FAIL'}{note}")
        lines.append(self._summary())
        return "\n".join(lines)

    def rule(self) -> str:
        """The criterion in words (stable: constants only)."""
        if self.tol is None:
            return (f"vs float64 PyTorch, twin error <= {self.factor:g} x PyTorch float32 error "
                    f"+ {self.floor:g} eps")
        return f"fixed relative tolerance {self.tol:.0e}, no float64 reference"

    def _summary(self) -> str:
        bad, n = sum(not r.passed for r in self.rows), len(self.rows)
        verdict = "all agree" if self.passed else f"{bad} of {n} disagree"
        return f"{n} layer{'' if n == 1 else 's'} ({self.rule()}): {verdict}"

    def stable_text(self) -> str:
        """The report without any number measured: per layer its shape, PASS/FAIL and a note
        (missing layer, shape mismatch), then the verdict. Identical on every machine whose
        verdicts agree, so use it in notebook cells whose output is checked (nbval)."""
        w = self._width()
        lines = []
        for r in self.rows:
            note = f"  ({r.note})" if r.note else ""
            lines.append(f"{r.layer:<{w}}  {r.shape!s:<22} {'PASS' if r.passed else 'FAIL'}{note}")
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


def _judge(key, a, b, ref, tol, factor, floor) -> AgreementRow:
    """One row for channels-last float32 maps ``a`` (PyTorch), ``b`` (Keras) and the float64
    reference ``ref`` (``None``: fallback, a fixed relative tolerance ``tol``)."""
    max_abs, rel = relative_error(a, b)
    if ref is None:
        return AgreementRow(key, tuple(a.shape), max_abs, rel, rel <= tol)
    if ref.shape != a.shape:
        note = f"reference shape {ref.shape} differs from PyTorch's {a.shape}"
        return AgreementRow(key, tuple(a.shape), max_abs, rel, False, note)
    ref = np.asarray(ref, dtype=np.float64)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    scale = scale if scale > 0 else 1.0  # an all-zero layer: errors stay absolute
    torch_error = float(np.max(np.abs(np.asarray(a, np.float64) - ref))) / scale if a.size else 0.0
    twin_error = float(np.max(np.abs(np.asarray(b, np.float64) - ref))) / scale if b.size else 0.0
    allowed = factor * torch_error + floor * FLOAT32_EPS
    return AgreementRow(key, tuple(a.shape), max_abs, rel, bool(twin_error <= allowed), "",
                        torch_error, twin_error, allowed)


def compare_activations(
    torch_maps: Mapping[str, object],
    keras_maps: Mapping[str, object],
    tol: float | None = None,
    *,
    reference: Mapping[str, object] | None = None,
    factor: float = FACTOR,
    floor: float = FLOOR_EPS,
) -> AgreementReport:
    """Compare activations captured in both frameworks, paired by key.

    Args:
        torch_maps: ``{layer: activation}`` in PyTorch's layout (``[N, C, H, W]`` or
            ``[N, features]``), e.g. from ``utils.pytorch.feature_maps`` (``name_1``: a 2nd call).
        keras_maps: ``{layer: activation}`` in Keras' layout (``[N, H, W, C]``), same keys.
        tol: only without ``reference``: a layer passes when ``max|a - b| / max|a| <= tol``
            (default :data:`FALLBACK_TOL`).
        reference: the same layers in float64 (:func:`reference_maps`): then each layer is
            judged by the module's criterion with ``factor`` and ``floor``.

    Returns:
        :class:`AgreementReport`, rows in the order of ``torch_maps`` (then keys only Keras has).
    """
    if reference is not None and tol is not None:
        raise ValueError("pass either reference= (float64 criterion) or tol= (fallback), not both")
    if reference is None:
        tol = FALLBACK_TOL if tol is None else tol
        if not tol > 0:
            raise ValueError(f"tol must be positive, got {tol}")
    elif not (factor >= 1 and floor >= 0):
        raise ValueError(f"expected factor >= 1 and floor >= 0, got {factor} and {floor}")
    rows = []
    for key in list(torch_maps) + [k for k in keras_maps if k not in torch_maps]:
        if key not in keras_maps or key not in torch_maps:
            side = "Keras" if key not in keras_maps else "PyTorch"
            only = _channels_last(torch_maps[key]) if key in torch_maps else as_numpy(keras_maps[key])
            shape = tuple(only.shape)  # channels last either way
            rows.append(AgreementRow(key, shape, math.nan, math.nan, False, f"missing in {side}"))
            continue
        a, b = _channels_last(torch_maps[key]), as_numpy(keras_maps[key])
        if a.shape != b.shape:
            note = f"shape mismatch: PyTorch {a.shape} vs Keras {b.shape}"
            rows.append(AgreementRow(key, tuple(a.shape), math.nan, math.nan, False, note))
            continue
        ref = None
        if reference is not None:
            if key not in reference:
                raise KeyError(f"reference has no map for layer {key!r}: compute it for the same "
                               f"layers, reference_maps(torch_model, {list(torch_maps)}, images)")
            ref = _channels_last(reference[key])
        rows.append(_judge(key, a, b, ref, tol, factor, floor))
    return AgreementReport(rows, None if reference is not None else tol, factor=factor, floor=floor)


@contextlib.contextmanager
def exact_float32():
    """TF32 off in PyTorch and TensorFlow while the block runs, then restored (GPUs only: a CPU
    has no TF32)."""
    from utils.pytorch._blocks import exact_float32 as torch_exact_float32

    tf = import_tensorflow()
    tf_saved = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        with torch_exact_float32():
            yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf_saved)


def reference_maps(torch_model, layers: str | Iterable[str], images) -> dict[str, np.ndarray]:
    """The criterion's reference: the named layers of a ``.double()`` deep copy of
    ``torch_model`` on ``images`` (NumPy ``[N, H, W, C]``) in float64, as ``{key: float64
    [N, C, H, W]}`` with the keys of ``utils.pytorch.feature_maps``."""
    import torch

    from utils.pytorch import feature_maps

    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"expected preprocessed images [N, H, W, C], got shape {images.shape}")
    model64 = copy.deepcopy(torch_model).double()
    x64 = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    with exact_float32():
        return feature_maps(model64, layers, x64)


def _keys_to_compare(names, wanted, torch_maps, keras_model) -> list[str]:
    """Every call of a plain module name (as many as either side has), one call of a
    ``name_k`` key."""
    from utils.port import keras_names_for

    keys = []
    for name, (module, _call) in zip(names, wanted):
        if name != module:
            keys.append(name)
            continue
        runs = 0
        while call_key(module, runs) in torch_maps:
            runs += 1
        runs = max(runs, len(keras_names_for(module, keras_model)))
        keys += [call_key(module, i) for i in range(runs)]
    return keys


def check_agreement(torch_model, keras_model, layers: str | Iterable[str], images, *,
                    factor: float = FACTOR, floor: float = FLOOR_EPS) -> AgreementReport:
    """Run a PyTorch model (with forward hooks) and its Keras twin (as a multi-output sub-model)
    on the same images, and judge each named layer against the PyTorch model run in float64
    (see the module docstring: the twin passes when it agrees as well as float32 allows).

    Args:
        torch_model: the PyTorch model (run in ``eval()`` mode, restored afterwards).
        keras_model: its Keras twin (run with ``training=False``).
        layers: PyTorch module names. A module that runs several times (torchvision's ResNet
            ``relu``) is compared once per call, against Keras layers ``name``, ``name_1``...
            (:func:`utils.port.keras_names_for`); ``"name_1"`` selects one call.
        images: preprocessed float32 batch ``[N, H, W, C]`` (:func:`utils.preprocess.preprocess`).
        factor, floor: the criterion's constants (defaults :data:`FACTOR`, :data:`FLOOR_EPS`).

    Returns:
        :class:`AgreementReport`; ``report.passed`` is the verdict.
    """
    names = as_name_list(layers)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"expected preprocessed images [N, H, W, C], got shape {images.shape}")
    keys, torch_maps, reference, keras_maps, reordered = _run_both(
        torch_model, keras_model, names, images)
    report = compare_activations(
        torch_maps, keras_maps, reference=reference, factor=factor, floor=floor
    )
    order = {k: i for i, k in enumerate(keys)}
    report.rows.sort(key=lambda r: order.get(r.layer, len(order)))
    report.rows[:] = [
        dataclasses.replace(r, note=r.note or "PyTorch's C,H,W order -> H,W,C")
        if r.layer in reordered
        else r
        for r in report.rows
    ]
    return report


def _run_both(torch_model, keras_model, names: list[str], images: np.ndarray):
    """Capture what :func:`check_agreement` compares: ``(keys, PyTorch maps, float64 reference,
    Keras maps, keys whose flattened PyTorch maps were put into Keras' order)``."""
    from utils.port import split_call_key
    from utils.pytorch import feature_maps
    from utils.tensorflow._blocks import layer_names as keras_layer_list

    torch_names = [n for n, _ in torch_model.named_modules() if n]
    wanted = [split_call_key(name, torch_names) for name in names]  # (module, call) or whole
    modules = list(dict.fromkeys(module for module, _ in wanted))
    with exact_float32():
        torch_all = feature_maps(torch_model, modules, images)
        reference_all = reference_maps(torch_model, modules, images)
        keys = _keys_to_compare(names, wanted, torch_all, keras_model)
        keras_layer_names = set(keras_layer_list(keras_model))
        present = list(dict.fromkeys(k for k in keys if k in keras_layer_names))
        keras_maps = _keras_maps(keras_model, present, images)
    torch_maps = {k: torch_all[k] for k in keys if k in torch_all}  # else: missing in PyTorch
    reference = {k: reference_all[k] for k in torch_maps}
    reordered = _reorder_flattened(torch_maps, keras_model, keras_layer_names)
    _reorder_flattened(reference, keras_model, keras_layer_names)
    return keys, torch_maps, reference, keras_maps, reordered


def _keras_maps(keras_model, names: list[str], images) -> dict[str, np.ndarray]:
    """One eager call of a fresh sub-model. Not ``feature_maps``: its cached compiled call keeps
    a layer's settings from when it was traced, and lesson 5 breaks a twin by changing them."""
    from utils.tensorflow._blocks import submodel

    outputs = submodel(keras_model, names)(images, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {name: as_numpy(out) for name, out in zip(names, outputs)}


def _reorder_flattened(torch_maps: dict, keras_model, keras_layer_names) -> set[str]:
    """Put PyTorch's ``Flatten`` outputs (C,H,W order) into Keras' H,W,C order, in place;
    return the keys reordered."""
    import_tensorflow()
    import keras

    from utils.tensorflow._blocks import get_layer

    reordered = set()
    for key, a in torch_maps.items():
        if key not in keras_layer_names or a.ndim != 2:
            continue
        layer = get_layer(keras_model, key)
        if not isinstance(layer, keras.layers.Flatten) or len(layer.input.shape) != 4:
            continue
        h, w, c = layer.input.shape[1:]
        if h * w > 1 and a.shape[1] == h * w * c:
            torch_maps[key] = a.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(a.shape[0], -1)
            reordered.add(key)
    return reordered
