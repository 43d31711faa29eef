"""The agreement verdict itself (issue 9), on hand-made arrays: how one layer is judged against the
float64 reference, the fallback without one, and what the report prints. No model, no TensorFlow:
these run in a second and are the focused tests of ``benchmarks/mutation.py``.

The models, the broken ports and the reference on real images are in ``test_agreement.py``.
"""

import math
import re

import numpy as np
import pytest

from utils.agreement import (
    FACTOR,
    FALLBACK_TOL,
    FLOAT32_EPS,
    FLOOR_EPS,
    AgreementReport,
    AgreementRow,
    compare_activations,
    relative_error,
)


def to_last(x):
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def test_criterion_scales_with_pytorchs_own_float32_error():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 3, 4, 5))  # PyTorch layout, float64 "truth"
    noise = rng.choice([-1.0, 1.0], size=ref.shape)
    for scale in (1e-3, 1.0, 1e4):  # the verdict does not depend on the layer's magnitude
        r = ref * scale
        torch32 = r + 1e-5 * scale * noise  # PyTorch's own float32 error: 1e-5 of the scale
        keras = {
            "as_good": to_last(r - 1e-5 * scale * noise),
            "3x_worse": to_last(r + 3e-5 * scale * noise),
            "bug": to_last(r + 2e-4 * scale * noise),
        }
        report = compare_activations(
            {k: torch32 for k in keras}, keras, reference={k: r for k in keras}
        )
        rows = {row.layer: row for row in report.rows}
        assert rows["as_good"].passed and rows["3x_worse"].passed and not rows["bug"].passed
        assert rows["3x_worse"].twin_error == pytest.approx(3 * rows["3x_worse"].torch_error)
        assert rows["as_good"].allowed == pytest.approx(
            FACTOR * 1e-5 / np.abs(ref).max() + FLOOR_EPS * FLOAT32_EPS, rel=1e-6
        )


def test_floor_covers_layers_where_pytorch_is_exact():
    ref = np.zeros((1, 2, 3, 3))
    ref[0, 0, 1, 1] = 6.0  # a ReLU6 map: mostly exact zeros, capped values exact too
    tiny = ref.copy()
    tiny[0, 0, 0, 0] = 6.0 * 4 * FLOAT32_EPS  # a few eps of the scale: rounding, not a bug
    big = ref.copy()
    big[0, 0, 0, 0] = 6.0 * 1e-3
    report = compare_activations(
        {"tiny": ref, "big": ref},
        {"tiny": to_last(tiny), "big": to_last(big)},
        reference={"tiny": ref, "big": ref},
    )
    assert [r.passed for r in report.rows] == [True, False]
    assert report.rows[0].torch_error == 0.0


def test_nan_in_the_twin_fails():
    ref = np.ones((1, 4))
    report = compare_activations(
        {"fc": ref}, {"fc": np.array([[1.0, math.nan, 1.0, 1.0]])}, reference={"fc": ref}
    )
    assert not report.passed and report.rows[0].usage == math.inf


def test_fallback_without_reference_is_a_labelled_fixed_tolerance():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)  # PyTorch [N, C, H, W]
    b = to_last(a)  # Keras [N, H, W, C]
    report = compare_activations(
        {"same": a, "off": a}, {"same": b, "off": b * (1 + 3 * FALLBACK_TOL)}
    )
    assert report.tol == FALLBACK_TOL
    assert [r.passed for r in report.rows] == [True, False]
    assert "fixed relative tolerance 1e-04, no float64 reference" in report.stable_text()
    assert compare_activations({"x": a}, {"x": b * 1.001}, tol=1e-2).passed
    with pytest.raises(ValueError, match="tol"):
        compare_activations({}, {}, tol=0)
    with pytest.raises(ValueError, match="not both"):
        compare_activations({"x": a}, {"x": b}, tol=1e-3, reference={"x": a})
    with pytest.raises(KeyError, match="reference has no map for layer 'x'"):
        compare_activations({"x": a}, {"x": b}, reference={"y": a})


def test_compare_converts_layout_and_flags_problems():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 4, 5, 6))
    b = to_last(a)
    report = compare_activations(
        {"same": a, "shape": a, "only_torch": a},
        {"same": b, "shape": b[:, :4], "only_keras": b},
        reference={"same": a, "shape": a, "only_torch": a},
    )
    rows = {r.layer: r for r in report.rows}
    assert (
        rows["same"].passed and rows["same"].twin_error == 0 and rows["same"].shape == (2, 5, 6, 4)
    )
    assert not rows["shape"].passed and "shape mismatch" in rows["shape"].note
    assert "missing in Keras" in rows["only_torch"].note
    assert "missing in PyTorch" in rows["only_keras"].note
    assert not report.passed and not report
    assert report.worst.usage == math.inf
    assert not AgreementReport([]).passed


def test_relative_error_is_not_signed():
    a = np.array([1.0, -2.0, 4.0])
    max_abs, rel = relative_error(a, a + np.array([0.1, -0.1, 0.0]))
    assert max_abs == pytest.approx(0.1) and rel == pytest.approx(0.1 / 4)
    assert relative_error(np.zeros(3), np.zeros(3)) == (0.0, 0.0)
    assert relative_error(np.zeros(3), np.ones(3))[1] == math.inf


def test_constants_are_the_documented_ones():
    assert (FACTOR, FLOOR_EPS, FALLBACK_TOL) == (16.0, 16.0, 1e-4)
    assert FLOAT32_EPS == 2.0**-23


def test_boundary_exactly_at_the_allowance_passes():
    # powers of two: every error and the allowance are exact, so "at" sits exactly on the line
    ref = np.array([[1.0, 0.0]])
    torch32 = np.array([[1.0 + 2.0**-20, 0.0]])
    allowed = FACTOR * 2.0**-20 + FLOOR_EPS * FLOAT32_EPS
    at = np.array([[1.0 + allowed, 0.0]])
    over = np.array([[1.0 + allowed + 2.0**-30, 0.0]])
    report = compare_activations(
        {"at": torch32, "over": torch32},
        {"at": at, "over": over},
        reference={"at": ref, "over": ref},
    )
    rows = {r.layer: r for r in report.rows}
    assert rows["at"].allowed == allowed and rows["at"].twin_error == allowed
    assert rows["at"].passed and rows["at"].usage == 1.0
    assert not rows["over"].passed and rows["over"].usage > 1.0
    assert rows["at"].torch_error == 2.0**-20


def test_errors_are_relative_to_the_references_scale():
    ref = np.array([[-8.0, 2.0]])  # scale max|ref| = 8, from the negative side
    report = compare_activations(
        {"x": ref + [[0.0, 8e-6]]}, {"x": ref + [[0.0, -1.6e-5]]}, reference={"x": ref}
    )
    row = report.rows[0]
    assert row.torch_error == pytest.approx(1e-6) and row.twin_error == pytest.approx(2e-6)
    assert row.max_abs_error == pytest.approx(2.4e-5) and row.rel_error == pytest.approx(3e-6)
    assert row.passed and row.note == ""


def test_an_all_zero_layer_keeps_absolute_errors():
    zeros = np.zeros((1, 3))
    ok = compare_activations(
        {"z": zeros}, {"z": zeros + [[0.0, 1e-6, 0.0]]}, reference={"z": zeros}
    )
    bad = compare_activations(
        {"z": zeros}, {"z": zeros + [[0.0, 1e-3, 0.0]]}, reference={"z": zeros}
    )
    assert ok.passed and ok.rows[0].twin_error == pytest.approx(1e-6)
    assert not bad.passed


def test_factor_and_floor_are_arguments_and_checked():
    ref = np.ones((1, 2))
    torch32 = ref + [[1e-6, 0.0]]
    twin = ref + [[5e-6, 0.0]]  # 5 x PyTorch's error
    assert compare_activations({"x": torch32}, {"x": twin}, reference={"x": ref}).passed
    strict = compare_activations(
        {"x": torch32}, {"x": twin}, reference={"x": ref}, factor=2, floor=0
    )
    assert not strict.passed and strict.rows[0].allowed == pytest.approx(2e-6)
    assert "twin error <= 2 x PyTorch float32 error + 0 eps" in strict.stable_text()
    with pytest.raises(ValueError, match="factor >= 1"):
        compare_activations({"x": torch32}, {"x": twin}, reference={"x": ref}, factor=0.5)
    with pytest.raises(ValueError, match="floor >= 0"):
        compare_activations({"x": torch32}, {"x": twin}, reference={"x": ref}, floor=-1)


def test_reference_with_another_shape_fails_the_layer():
    a = np.ones((1, 2, 3, 3))
    report = compare_activations(
        {"x": a}, {"x": to_last(a)}, reference={"x": np.ones((1, 2, 3, 4))}
    )
    assert not report.passed and "reference shape" in report.rows[0].note
    assert report.rows[0].usage == math.inf


def test_worst_row_and_empty_report():
    rows = [
        AgreementRow("a", (1,), 0.0, 0.0, True, "", 1e-7, 1e-7, 1e-5),
        AgreementRow("b", (1,), 0.0, 0.0, True, "", 1e-7, 5e-6, 1e-5),
        AgreementRow("c", (1,), 0.0, 0.0, True, "", 1e-7, 2e-6, 1e-5),
    ]
    report = AgreementReport(rows)
    assert report.worst.layer == "b" and report.worst.usage == pytest.approx(0.5)
    assert report.passed and bool(report)
    fallback = AgreementReport(
        [AgreementRow("a", (1,), 1.0, 1e-6, True), AgreementRow("b", (1,), 1.0, 3e-6, True)],
        tol=1e-5,
    )
    assert fallback.worst.layer == "b"
    empty = AgreementReport([])
    assert not empty.passed and empty.worst is None
    assert "0 layers" in repr(empty)


def test_table_and_stable_text():
    ref = np.ones((1, 3))
    good = compare_activations({"fc": ref}, {"fc": ref}, reference={"fc": ref})
    failing = compare_activations({"fc": ref}, {"fc": ref * 1.01}, reference={"fc": ref})
    table = str(failing)
    for column in ("max abs err", "rel err", "PyTorch f32", "twin", "allowed", "FAIL"):
        assert column in table
    assert "1.00e-02" in table  # the twin's error, shown as information
    lines = failing.stable_text().splitlines()
    assert re.fullmatch(r"fc +\(1, 3\) +FAIL", lines[0])
    assert lines[1] == (
        f"1 layer (vs float64 PyTorch, twin error <= {FACTOR:g} x PyTorch float32 "
        f"error + {FLOOR_EPS:g} eps): 1 of 1 disagree"
    )
    assert good.stable_text().endswith(": all agree") and "PASS" in good.stable_text()
    assert not re.search(r"\d\.\d+e", good.stable_text() + failing.stable_text())
    missing = compare_activations({"fc": ref}, {}, reference={"fc": ref}).stable_text()
    assert "FAIL  (missing in Keras)" in missing
