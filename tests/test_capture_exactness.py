"""The default capture policy (copy only what an in-place module would overwrite, check the rest
with version counters) returns, bit for bit, what every conv produced, on ten real architectures.

Reference: a deep copy of the model with ``inplace=False`` set on every module that has the flag
(ReLU, ReLU6, Hardswish, SiLU, Dropout...), captured by raw forward hooks that copy each output
the moment the layer returns it. Functional in-place operations written in ``forward()`` (``out +=
identity`` in ResNet's blocks, ``result += input`` in EfficientNet's MBConv, ``F.relu(x,
inplace=True)`` in GoogLeNet and DenseNet) have no flag to switch off; the copy made inside the
hook is what makes the reference immune to them: nothing that runs later can reach a tensor that
was copied before it ran. Both models share the same weights, input and CPU kernels, so equality
must be exact (``torch.equal``), not approximate.

Random weights (``weights=None``) except Lite0, whose ImageNet weights ship with the course;
eval mode; one 64x64 image (the smallest size every model accepts), to keep the run short.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from _hooks import hooked_reference

from utils.pytorch import ActivationCapture, layer_names, load_model

BUILDERS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(weights=None),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(weights=None),
    "vgg11": lambda: torchvision.models.vgg11(weights=None),
    "squeezenet1_0": lambda: torchvision.models.squeezenet1_0(weights=None),
    "densenet121": lambda: torchvision.models.densenet121(weights=None),
    "regnet_y_400mf": lambda: torchvision.models.regnet_y_400mf(weights=None),
    "googlenet": lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False),
    "lite0": lambda: load_model("efficientnet_lite0"),
}
# Models whose every conv feeds an in-place ReLU module: each conv output must be copied.
ALL_COPIED = {"vgg11", "squeezenet1_0"}
SLOW = {"vgg11"}  # 3-4 s, most of it initialising 133 M random weights; the rest take < 1 s each


def _without_inplace(model: torch.nn.Module) -> torch.nn.Module:
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    return twin




def _output_ptrs(model, names, x):
    """Where each output lives as the layer returned it (to tell stored-as-is from copied), and
    the storages that in-place modules receive (so: the outputs that must be copied). Every tensor
    seen is kept alive in ``alive``, so that no later tensor can reuse its memory address."""
    modules = dict(model.named_modules())
    ptrs = {name: [] for name in names}
    alive, overwritten = [], set()

    def keep(n, out):
        alive.append(out)
        ptrs[n].append(out.untyped_storage().data_ptr())

    def before_inplace(module, args):
        alive.append(args[0])
        overwritten.add(args[0].untyped_storage().data_ptr())

    handles = [modules[n].register_forward_hook(lambda m, i, out, n=n: keep(n, out)) for n in names]
    handles += [m.register_forward_pre_hook(before_inplace)
                for m in model.modules() if getattr(m, "inplace", False) is True]
    return ptrs, overwritten, handles


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in BUILDERS]
)
def test_every_conv_is_captured_bit_exactly(name):
    torch.manual_seed(0)
    model = BUILDERS[name]().eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    convs = layer_names(model, kind="conv")
    expected, expected_logits = hooked_reference(_without_inplace(model), convs, x)

    ptrs, overwritten, handles = _output_ptrs(model, convs, x)
    try:
        with ActivationCapture(model, convs) as cap, torch.no_grad():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()

    assert torch.equal(logits, expected_logits), "capturing must not change the model's output"
    wrong = [
        f"{n}[{i}]" for n in convs for i, (a, b) in enumerate(zip(cap.calls[n], expected[n], strict=True))
        if not torch.equal(a, b)
    ]
    assert not wrong, f"{name}: {len(wrong)} of {len(convs)} conv outputs differ: {wrong[:5]}"
    # Cheap: copied are exactly the outputs that an in-place module later received.
    copied = {n for n in convs for t, p in zip(cap.calls[n], ptrs[n]) if t.untyped_storage().data_ptr() != p}
    must_copy = {n for n in convs if any(p in overwritten for p in ptrs[n])}
    assert copied == must_copy, f"{name}: copied {sorted(copied ^ must_copy)} wrongly"
    assert len(copied) == len(convs) if name in ALL_COPIED else len(copied) < len(convs)
    if name in ALL_COPIED:  # ... and without those copies the capture is wrong: the test can tell
        with ActivationCapture(model, convs, clone=False) as raw, torch.no_grad():
            model(x)
        assert any(not torch.equal(raw[n], expected[n][0]) for n in convs)


def test_exact_with_gradients_enabled():
    """Grad-mode forward passes (training loops, Grad-CAM style code) get the same guarantee."""
    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_0(weights=None).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    convs = layer_names(model, kind="conv")
    expected, _ = hooked_reference(_without_inplace(model), convs, x)
    with ActivationCapture(model, convs) as cap:
        model(x).sum().backward()
    for n in convs:
        assert torch.equal(cap[n], expected[n][0]), n
        assert not cap[n].requires_grad
