"""Forward-hook capture on a real torchvision ResNet18 (random weights: the mechanism is what is
tested here; pretrained behaviour is tested with the course's models)."""

import numpy as np
import pytest
import torch
import torchvision
from _hooks import hooked_reference

from utils.layers import UnknownLayerError
from utils.pytorch import ActivationCapture, conv_filters, feature_maps, layer_names, to_input
from utils.pytorch.capture import CaptureOverwrittenError


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    return model


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(1)
    return torch.randn(2, 3, 64, 64)


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_layer_names_lists_all_twenty_convs(resnet):
    convs = layer_names(resnet, kind="conv")
    assert len(convs) == 20  # 1 stem + 8 blocks x 2 + 3 downsample
    assert convs[0] == "conv1" and "layer4.1.conv2" in convs
    assert "layer1.0.relu" in layer_names(resnet, kind="leaf")
    assert "layer1" in layer_names(resnet) and "layer1" not in layer_names(resnet, kind="leaf")


def test_captured_output_equals_the_layer_output(resnet, x):
    with ActivationCapture(resnet, ["conv1", "layer2"]) as cap, torch.no_grad():
        resnet(x)
    with torch.no_grad():
        direct = resnet.conv1(x)
    torch.testing.assert_close(cap["conv1"], direct)
    assert cap["layer2"].shape == (2, 128, 8, 8)


def test_clone_protects_against_inplace_relu(resnet, x):
    # torchvision's ReLU(inplace=True) overwrites bn1's output right after bn1 runs.
    with ActivationCapture(resnet, "bn1") as safe, torch.no_grad():
        resnet(x)
    with ActivationCapture(resnet, "bn1", clone=False) as unsafe, torch.no_grad():
        resnet(x)
    assert (safe["bn1"] < 0).any(), "BatchNorm output must contain negatives"
    assert not (unsafe["bn1"] < 0).any(), "without clone the in-place ReLU overwrites the capture"


def test_reused_relu_yields_one_result_per_call_in_order(resnet, x):
    block = resnet.layer1[0]
    names = ["maxpool", "layer1.0.relu", "layer1.0.bn1", "layer1.0.bn2"]
    # bn2's output is changed by `out += identity` in forward(): only a copy keeps it
    with ActivationCapture(resnet, names, clone=["layer1.0.bn2"]) as cap, torch.no_grad():
        resnet(x)
    first, second = cap.calls["layer1.0.relu"]
    assert torch.equal(first, torch.relu(cap["layer1.0.bn1"]))
    # second call: relu(bn2(conv2(...)) + identity), identity being the block's input
    assert torch.equal(second, torch.relu(cap["layer1.0.bn2"] + cap["maxpool"]))
    assert not torch.equal(first, second)
    with pytest.raises(LookupError, match="ran 2 times"):
        cap["layer1.0.relu"]
    keys = list(cap.as_dict())
    assert keys[1:3] == ["layer1.0.relu", "layer1.0.relu_1"]
    assert block.relu.inplace  # the reason the clone matters


def test_hooks_removed_when_forward_raises(resnet, x):
    before = _hook_count(resnet)

    def boom(module, inputs):
        raise RuntimeError("boom")

    handle = resnet.layer3.register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with ActivationCapture(resnet, ["conv1", "layer1.0.relu", "layer4"]):
                resnet(x)
    finally:
        handle.remove()
    assert _hook_count(resnet) == before == 0


def test_unknown_layer_lists_valid_names_and_closest_match(resnet):
    with pytest.raises(UnknownLayerError) as info:
        ActivationCapture(resnet, ["layer1.0.conv3"])
    message = str(info.value)
    assert "Did you mean 'layer1.0.conv1'" in message or "Did you mean 'layer1.0.conv2'" in message
    assert "layer4.1.bn2" in message  # the list of valid names
    assert info.value.suggestion in layer_names(resnet)
    assert _hook_count(resnet) == 0




def _hook_ptrs(model, name, x):
    """data_ptr of every output of ``name`` in one forward pass (hook order is call order)."""
    ptrs = []
    handle = model.get_submodule(name).register_forward_hook(lambda m, i, out: ptrs.append(out.data_ptr()))
    return ptrs, handle


def test_default_copies_only_what_an_inplace_module_would_overwrite(resnet, x):
    # conv1 feeds bn1 (nothing in place): stored as is. bn1 feeds ReLU(inplace=True): copied.
    conv_ptrs, h1 = _hook_ptrs(resnet, "conv1", x)
    bn_ptrs, h2 = _hook_ptrs(resnet, "bn1", x)
    try:
        with ActivationCapture(resnet, ["conv1", "bn1"]) as cap, torch.no_grad():
            resnet(x)
    finally:
        h1.remove()
        h2.remove()
    assert cap["conv1"].data_ptr() == conv_ptrs[0], "conv1's output must not be copied"
    assert cap["bn1"].data_ptr() != bn_ptrs[0], "bn1's output must be copied before the ReLU"
    reference, _ = hooked_reference(resnet, ["conv1", "bn1"], x)
    assert torch.equal(cap["conv1"], reference["conv1"][0])
    assert torch.equal(cap["bn1"], reference["bn1"][0]) and (cap["bn1"] < 0).any()


def test_unforeseen_inplace_add_is_caught_and_named(resnet, x):
    # BasicBlock: out = bn2(conv2(out)); out += identity. No module announces the +=.
    with pytest.raises(CaptureOverwrittenError, match=r"layer1\.0\.bn2.*clone=True") as info:
        with ActivationCapture(resnet, ["conv1", "layer1.0.bn2"]) as cap, torch.no_grad():
            resnet(x)
    assert info.value.layers == ["layer1.0.bn2"]
    assert _hook_count(resnet) == 0 and not cap.active
    reference, _ = hooked_reference(resnet, ["layer1.0.bn2"], x)
    for clone in (True, ["layer1.0.bn2"]):
        with ActivationCapture(resnet, "layer1.0.bn2", clone=clone) as cap, torch.no_grad():
            resnet(x)
        assert torch.equal(cap["layer1.0.bn2"], reference["layer1.0.bn2"][0])
    maps = feature_maps(resnet, ["layer1.0.bn2", "conv1"], x)  # retries with a copy by itself
    np.testing.assert_array_equal(maps["layer1.0.bn2"], reference["layer1.0.bn2"][0].numpy())


def test_inference_mode_has_no_version_counter_so_every_output_is_copied(resnet, x):
    conv_ptrs, handle = _hook_ptrs(resnet, "conv1", x)
    try:
        with ActivationCapture(resnet, ["conv1", "bn1", "layer1.0.bn2"]) as cap, torch.inference_mode():
            resnet(x)
    finally:
        handle.remove()
    assert cap["conv1"].data_ptr() != conv_ptrs[0]
    reference, _ = hooked_reference(resnet, ["conv1", "bn1", "layer1.0.bn2"], x)
    for name, outputs in reference.items():
        assert torch.equal(cap[name], outputs[0]), name


def test_outputs_are_the_callers_after_the_block(resnet, x):
    with ActivationCapture(resnet, "conv1") as cap, torch.no_grad():
        resnet(x)
    cap["conv1"].zero_()  # the user's own in-place change: no error
    assert not cap["conv1"].any()


def test_clone_argument_is_checked(resnet):
    with pytest.raises(ValueError, match="'auto', True, False"):
        ActivationCapture(resnet, "conv1", clone="always")
    with pytest.raises(ValueError, match=r"\['bn1'\] are not among the captured layers"):
        ActivationCapture(resnet, "conv1", clone=["bn1"])


def test_layer_names_are_resolved_in_one_walk(resnet, monkeypatch):
    walks = []
    original = resnet.named_modules
    monkeypatch.setattr(resnet, "named_modules", lambda *a, **k: walks.append(1) or original(*a, **k))
    ActivationCapture(resnet, layer_names(resnet, kind="conv"))
    assert len(walks) == 2  # layer_names once, the capture once (not once per layer)


def test_layer_that_did_not_run(resnet):
    with ActivationCapture(resnet, "fc") as cap:
        pass
    with pytest.raises(LookupError, match="did not run"):
        cap["fc"]


def test_feature_maps_numpy_layout_and_mode_restored(resnet):
    images = np.random.default_rng(0).random((3, 64, 64, 3), dtype=np.float32)
    resnet.train()
    try:
        maps = feature_maps(resnet, ["conv1", "layer1.0.relu"], images)
        assert resnet.training, "feature_maps must restore the caller's train/eval mode"
    finally:
        resnet.eval()
    assert maps["conv1"].shape == (3, 64, 32, 32) and isinstance(maps["conv1"], np.ndarray)
    assert set(maps) == {"conv1", "layer1.0.relu", "layer1.0.relu_1"}
    with torch.no_grad():
        direct = resnet.conv1(to_input(images)).numpy()
    np.testing.assert_allclose(maps["conv1"], direct, rtol=1e-5, atol=1e-6)


def test_conv_filters_canonical_layout(resnet):
    w = conv_filters(resnet, "conv1")
    assert w.shape == (64, 3, 7, 7)
    np.testing.assert_array_equal(w, resnet.conv1.weight.detach().numpy())
    with pytest.raises(TypeError, match="not a Conv2d"):
        conv_filters(resnet, "bn1")
    with pytest.raises(UnknownLayerError):
        conv_filters(resnet, "conv9")
