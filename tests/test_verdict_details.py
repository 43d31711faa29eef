"""The agreement verdict's details that test_agreement_verdict.py leaves open: the exact rows
(fallback, reference, empty and missing layers), the printed table and the stable text. Hand-made
arrays only; with test_agreement_verdict.py the mutation run's selection for the verdict
functions of utils/agreement.py."""

import math

import numpy as np
import pytest

from utils.agreement import (
    FLOAT32_EPS,
    AgreementReport,
    AgreementRow,
    compare_activations,
    relative_error,
)


def test_fallback_rows_hold_the_direct_errors_and_pass_at_the_tolerance():
    a = np.full((1, 2, 3, 3), 4.0)  # PyTorch layout
    b = np.moveaxis(a, 1, -1) + 0.5
    report = compare_activations({"x": a}, {"x": b}, tol=0.125)  # 0.5 / 4 exactly
    assert report.rows == [AgreementRow("x", (1, 3, 3, 2), 0.5, 0.125, True)]
    assert report.tol == 0.125 and report.passed
    assert not compare_activations({"x": a}, {"x": b}, tol=0.124).passed


def test_reference_rows_and_the_reference_shape_check():
    a = np.full((1, 2, 2, 2), 2.0)
    ref = a + 1e-7
    b = np.moveaxis(a, 1, -1) + 3e-7
    [row] = compare_activations({"x": a}, {"x": b}, reference={"x": ref}).rows
    assert (row.layer, row.shape, row.note, row.passed) == ("x", (1, 2, 2, 2), "", True)
    assert row.max_abs_error == pytest.approx(3e-7) and row.rel_error == pytest.approx(1.5e-7)
    assert row.torch_error == pytest.approx(1e-7 / (2 + 1e-7))
    assert row.twin_error == pytest.approx(2e-7 / (2 + 1e-7))
    assert row.allowed == pytest.approx(16 * row.torch_error + 16 * FLOAT32_EPS)
    report = compare_activations({"x": a}, {"x": b}, reference={"x": np.zeros((1, 2, 2, 3))})
    assert report.rows == [AgreementRow(
        "x", (1, 2, 2, 2), row.max_abs_error, row.rel_error, False,
        "reference shape (1, 2, 3, 2) differs from PyTorch's (1, 2, 2, 2)")]


def test_empty_layers():
    assert relative_error(np.zeros((0, 3)), np.zeros((0, 3))) == (0.0, 0.0)
    empty = np.zeros((0, 4))
    [row] = compare_activations({"e": empty}, {"e": empty}, reference={"e": empty}).rows
    assert (row.max_abs_error, row.rel_error, row.torch_error, row.twin_error) == (0.0, 0.0, 0.0, 0.0)
    assert row.allowed == 16 * FLOAT32_EPS and row.passed


def test_missing_and_mismatched_layers_are_failed_rows():
    a, b = np.zeros((1, 3, 2, 2)), np.zeros((1, 2, 2, 3))
    report = compare_activations({"a": a, "only_torch": a}, {"a": b[:, :1], "only_keras": b})
    assert [(r.layer, r.shape, r.passed, r.note) for r in report.rows[:2]] == [
        ("a", (1, 2, 2, 3), False, "shape mismatch: PyTorch (1, 2, 2, 3) vs Keras (1, 1, 2, 3)"),
        ("only_torch", (1, 2, 2, 3), False, "missing in Keras")]
    assert (report.rows[2].layer, report.rows[2].passed, report.rows[2].note) == \
        ("only_keras", False, "missing in PyTorch")
    assert sorted(report.rows[2].shape) == [1, 2, 2, 3]  # the Keras map's own dimensions
    for row in report.rows:  # NaN != NaN: the errors are checked one by one
        assert math.isnan(row.max_abs_error) and math.isnan(row.rel_error) and row.passed is False


def test_arguments_are_checked():
    a = np.zeros((1, 2))
    with pytest.raises(ValueError, match=r"^pass either reference= \(float64 criterion\) or tol= "
                                         r"\(fallback\), not both$"):
        compare_activations({"x": a}, {"x": a}, tol=1e-3, reference={"x": a})
    assert compare_activations({"x": a}, {"x": a}, reference={"x": a}, factor=1, floor=0).passed
    assert compare_activations({"x": a}, {"x": a}, reference={"x": a}, factor=1.5).passed


ROWS = [AgreementRow("conv", (1, 2, 2, 3), 1.5e-06, 2.5e-07, True, "", 1e-07, 2e-07, 3e-06),
        AgreementRow("fc", (1, 10), math.nan, math.nan, False, "missing in Keras")]


def test_the_table_with_a_reference():
    lines = str(AgreementReport(ROWS)).split("\n")
    assert lines[1] == "-" * len(lines[0])  # as wide as the header
    assert lines == [
        "layer  shape (channels last)  max abs err   rel err  PyTorch f32      twin   allowed  result",
        lines[1],
        "conv   (1, 2, 2, 3)              1.50e-06  2.50e-07     1.00e-07  2.00e-07  3.00e-06  PASS",
        "fc     (1, 10)                        nan       nan          nan       nan       nan  FAIL  "
        "(missing in Keras)",
        "2 layers (vs float64 PyTorch, twin error <= 16 x PyTorch float32 error + 16 eps): "
        "1 of 2 disagree",
    ]


def test_the_table_of_the_fallback_and_the_stable_text():
    report = AgreementReport(ROWS, tol=1e-4)
    lines = str(report).split("\n")
    assert lines[1] == "-" * len(lines[0])
    assert lines == [
        "layer  shape (channels last)  max abs err   rel err  result",
        lines[1],
        "conv   (1, 2, 2, 3)              1.50e-06  2.50e-07  PASS",
        "fc     (1, 10)                        nan       nan  FAIL  (missing in Keras)",
        "2 layers (fixed relative tolerance 1e-04, no float64 reference): 1 of 2 disagree",
    ]
    assert report.stable_text() == (
        "conv   (1, 2, 2, 3)" + " " * 11 + "PASS\n"
        "fc     (1, 10)" + " " * 16 + "FAIL  (missing in Keras)\n"
        "2 layers (fixed relative tolerance 1e-04, no float64 reference): 1 of 2 disagree")

    class Printer:
        def __init__(self):
            self.out = []

        def text(self, value):
            self.out.append(value)

    printer = Printer()
    report._repr_pretty_(printer, False)
    assert printer.out == [str(report)]
