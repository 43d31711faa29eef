"""The PyTorch building blocks (eval_mode, device_of, model_input, run_until, exact_float32) and
the device handling of every helper that runs a model.

There is no GPU on the test machines, so the device handling is tested with what a CPU has:

* a model on the ``meta`` device (shapes, no values) must fail in every helper with the same
  clear error from ``device_of``: proof that each helper asks the model where it lives;
* ``device_of`` replaced by a stub that names another device: ``model_input`` must move there;
* a float64 model fed the course's float32 NumPy images: the helpers convert the input the same
  way they move it (the path a half-precision model on a GPU takes), and return NumPy on the CPU;
* TF32 must be off while the model runs (read from inside the forward pass).

With CUDA present (Colab), one more test runs the helpers on the GPU and compares with the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from utils.layers import UnknownLayerError
from utils.pytorch import (
    FilterSnapshots,
    _blocks,
    conv_filters,
    feature_maps,
    gradcam,
    maximize_activation,
    predict,
    scan_dead_filters,
)
from utils.pytorch._blocks import device_of, eval_mode, exact_float32, model_input, run_until
from utils.pytorch.maximize import channel_activation


def small_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5),
    ).eval()


@pytest.fixture
def images():
    return np.random.default_rng(0).uniform(-1, 1, (3, 20, 20, 3)).astype(np.float32)


# -- eval_mode -------------------------------------------------------------------------------
def test_eval_mode_restores_each_modules_own_flag_also_on_error():
    model = small_cnn().train()
    model[3].eval()  # a frozen BatchNorm inside a model being trained
    with eval_mode(model) as inside:
        assert inside is model and not any(m.training for m in model.modules())
    assert model.training and not model[3].training and model[0].training
    with pytest.raises(KeyError), eval_mode(model):
        raise KeyError("boom")
    assert model.training and not model[3].training


# -- device_of / model_input -----------------------------------------------------------------
def test_device_of_parameters_buffers_and_parameterless_models():
    assert device_of(small_cnn()) == torch.device("cpu")
    assert device_of(nn.BatchNorm2d(3, affine=False).to("meta").to_empty(device="cpu")).type == "cpu"
    assert device_of(nn.ReLU()) == torch.device("cpu")
    with torch.device("meta"):
        meta = small_cnn()
    with pytest.raises(ValueError, match="'meta' device.*to_empty"):
        device_of(meta)
    with pytest.raises(ValueError, match="'meta' device"):
        device_of(nn.BatchNorm2d(3, affine=False, device="meta"))  # buffers only


def test_model_input_moves_to_the_models_device_and_dtype(images, monkeypatch):
    x = model_input(small_cnn(), images)
    assert x.shape == (3, 3, 20, 20) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert model_input(small_cnn().double(), images).dtype == torch.float64
    assert model_input(small_cnn(), torch.ones(1, 3, 4, 4, dtype=torch.int64)).dtype == torch.int64
    # a stand-in for a GPU: device_of says "meta", and the input must go there
    monkeypatch.setattr(_blocks, "device_of", lambda model: torch.device("meta"))
    assert model_input(small_cnn(), images).device.type == "meta"
    assert model_input(small_cnn(), torch.from_numpy(images)).device.type == "meta"


def test_model_input_refuses_a_tensor_without_values():
    with pytest.raises(ValueError, match="'meta' device"):
        model_input(small_cnn(), torch.empty(1, 3, 8, 8, device="meta"))


# -- run_until -------------------------------------------------------------------------------
def test_run_until_stops_after_the_module_and_keeps_the_graph():
    model = small_cnn()
    x = torch.randn(2, 3, 12, 12)
    later = []
    probe = model[7].register_forward_hook(lambda *args: later.append(1))
    try:
        out = run_until(model, model[2], x)
        by_name = run_until(model, "2", x)
    finally:
        probe.remove()
    assert not later, "the layers after the module must not run"
    assert torch.equal(out, model[2](model[1](model[0](x.clone()))))
    assert torch.equal(by_name, out) and out.requires_grad  # graph kept for gradients
    assert all(not m._forward_hooks for m in model.modules())


def test_run_until_errors_name_the_problem():
    model = small_cnn()
    with pytest.raises(RuntimeError, match="did not run"):
        run_until(model, nn.Conv2d(3, 3, 1), torch.randn(1, 3, 8, 8))
    with pytest.raises(UnknownLayerError, match="Did you mean '2'"):
        run_until(model, "22", torch.randn(1, 3, 8, 8))
    with pytest.raises(RuntimeError, match="channels"):  # the model's own errors pass through
        run_until(model, model[7], torch.randn(1, 5, 8, 8))


def test_run_until_survives_a_model_that_swallows_exceptions():
    class Careless(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            try:
                return self.conv(x)
            except Exception:  # what careless user code does
                return None

    model = Careless()
    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(run_until(model, model.conv, x), model.conv(x))


# -- TF32 ------------------------------------------------------------------------------------
def _tf32_flags():
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def test_exact_float32_restores_the_flags_also_on_error():
    saved = _tf32_flags()
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with pytest.raises(KeyError), exact_float32():
            assert _tf32_flags() == (False, False)
            raise KeyError
        assert _tf32_flags() == (True, True)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


HELPERS = {  # name -> call(model, images); each runs the model at least once
    "feature_maps": lambda m, x: feature_maps(m, ["2", "4"], x),
    "predict": lambda m, x: predict(m, x),
    "gradcam": lambda m, x: gradcam(m, "3", x),
    "scan_dead_filters": lambda m, x: scan_dead_filters(m, "4", x, progress=False),
    "maximize_activation": lambda m, x: maximize_activation(m, "3", 1, steps=2, size=16, jitter=1),
    "channel_activation": lambda m, x: channel_activation(m, "3", 1, x[0]),
    "conv_filters": lambda m, x: conv_filters(m, "2"),
    "FilterSnapshots": lambda m, x: FilterSnapshots(m, "2", warn=False).record(0),
}
TF32_EXACT = {"feature_maps", "predict", "gradcam", "scan_dead_filters"}


@pytest.mark.parametrize("helper", sorted(TF32_EXACT))
def test_models_run_with_tf32_off(helper, images):
    model = small_cnn()
    seen = []
    handle = model[0].register_forward_hook(lambda *args: seen.append(_tf32_flags()))
    saved = _tf32_flags()
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        HELPERS[helper](model, images)
        assert _tf32_flags() == (True, True), "the caller's settings must come back"
    finally:
        handle.remove()
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    assert seen and all(flags == (False, False) for flags in seen)


# -- every helper follows the model's device -------------------------------------------------
@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_every_helper_asks_the_model_where_it_lives(helper, images):
    with torch.device("meta"):
        model = small_cnn()
    with pytest.raises(ValueError, match="'meta' device"):
        HELPERS[helper](model, images)


def _arrays(result):
    if isinstance(result, dict):
        return list(result.values())
    if isinstance(result, tuple):  # named tuples: GradCAMResult, MaximizationResult
        return [v for v in result if isinstance(v, (np.ndarray, torch.Tensor))]
    if hasattr(result, "stats"):  # DeadFilterScan
        return [result.stats.mean, result.stats.max]
    return [result]


@pytest.mark.parametrize("helper", sorted(set(HELPERS) - {"channel_activation"}))
def test_float64_model_gets_float64_inputs_and_results_are_numpy(helper, images):
    model = small_cnn().double()  # float32 NumPy in, converted like a move to a GPU would be
    arrays = _arrays(HELPERS[helper](model, images))
    assert arrays and all(isinstance(a, np.ndarray) for a in arrays), [type(a) for a in arrays]


def test_channel_activation_of_a_float64_model(images):
    value = channel_activation(small_cnn().double(), "3", 1, images[0])
    assert isinstance(value, float) and np.isfinite(value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_helpers_on_cuda_match_the_cpu(images):
    cpu, gpu = small_cnn(), small_cnn().cuda()
    for name, (a, b) in {
        "feature_maps": (feature_maps(cpu, ["2"], images)["2"], feature_maps(gpu, ["2"], images)["2"]),
        "predict": (predict(cpu, images), predict(gpu, images)),
        "gradcam": (gradcam(cpu, "3", images).heatmaps, gradcam(gpu, "3", images).heatmaps),
        "conv_filters": (conv_filters(cpu, "2"), conv_filters(gpu, "2")),
    }.items():
        assert isinstance(b, np.ndarray), name
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=name)
    scan = scan_dead_filters(gpu, "4", images, progress=False)
    assert isinstance(scan.stats.mean, np.ndarray)
