"""The weight-randomisation sanity check (issue 12): the cascade's order, randomised copies that
leave the original alone and change only the chosen layers, twins that stay twins, and Grad-CAM
that changes once the weights do (Spearman's rank correlation, as in the paper)."""

import copy

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from utils import sanity
from utils.agreement import check_agreement
from utils.images import load_sample
from utils.layers import UnknownLayerError
from utils.layout import torch_kernel_to_keras
from utils.preprocess import preprocess
from utils.pytorch import feature_maps
from utils.pytorch import sanity as torch_sanity
from utils.pytorch.gradcam import gradcam

EGYPTIAN_CAT = 285
BLOCK_15_AND_FC = [f"_blocks.15.{name}" for name in ("_expand_conv", "_bn0", "_depthwise_conv", "_bn1",
                                                    "_project_conv", "_bn2")] + ["_fc"]
TOP = ["_fc", "_conv_head", *[f"_blocks.{i}" for i in range(15, -1, -1)], "_conv_stem"]


@pytest.fixture(scope="module")
def keras_sanity():
    from utils.tensorflow import sanity as keras_sanity

    return keras_sanity


@pytest.fixture(scope="module")
def cat():
    return preprocess(load_sample("cat"), crop=False)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- the cascade's order ---------------------------------------------------------------------------
def test_stages_go_from_the_output_to_the_input(torch_lite0, keras_lite0, keras_sanity):
    stages = torch_sanity.cascade_stages(torch_lite0)
    assert [group for group, _ in stages] == TOP
    assert stages[0][1] == ["_fc"] and stages[1][1] == ["_fc", "_conv_head", "_bn1"]
    assert stages[-1][1][-2:] == ["_conv_stem", "_bn0"]  # the stem's BatchNorm goes with the stem
    for (_, before), (_, after) in zip(stages, stages[1:]):
        assert after[: len(before)] == before  # cascading: each stage adds to the one above
    weighted = {name.rpartition(".")[0] for name in torch_lite0.state_dict()}
    assert sorted(stages[-1][1]) == sorted(weighted)  # the last stage: every layer with weights
    assert keras_sanity.cascade_stages(keras_lite0) == stages  # the twin: the same names


def test_groups_of_a_resnet_like_table():
    conv, bn, fc = {"weight": (8, 3, 3, 3)}, {"weight": (8,), "bias": (8,), "running_mean": (8,),
                                             "running_var": (8,)}, {"weight": (10, 8), "bias": (10,)}
    table = {"conv1": conv, "bn1": bn, "layer1.0.conv1": conv, "layer1.0.bn1": bn,
             "layer1.0.downsample.0": conv, "layer1.0.downsample.1": bn, "layer1.1.conv1": conv,
             "fc": fc}
    stages = sanity.cascade_stages(table)
    assert [group for group, _ in stages] == ["fc", "layer1.1", "layer1.0", "conv1"]
    assert stages[2][1] == ["fc", "layer1.1.conv1", "layer1.0.conv1", "layer1.0.bn1",
                            "layer1.0.downsample.0", "layer1.0.downsample.1"]
    assert stages[3][1][-2:] == ["conv1", "bn1"]
    # a BatchNorm before any other layer is a group of its own
    assert [group for group, _ in sanity.cascade_stages({"bn0": bn, "conv1": conv})] == ["conv1", "bn0"]


# -- the new weights -------------------------------------------------------------------------------
def test_random_tensors_he_normal_and_fresh_batchnorm():
    new = sanity.random_tensors("_conv_head", {"weight": (1280, 320, 1, 1)}, seed=0)["weight"]
    assert new.dtype == np.float32 and new.shape == (1280, 320, 1, 1)
    assert new.std() == pytest.approx(np.sqrt(2 / 320), rel=0.01) and abs(new.mean()) < 1e-3
    bn = sanity.random_tensors("_bn1", dict.fromkeys(["weight", "bias", "running_mean", "running_var"], (4,)))
    assert [bn[k].tolist() for k in ("weight", "bias", "running_mean", "running_var")] == [[1] * 4, [0] * 4,
                                                                                          [0] * 4, [1] * 4]
    assert all(t.dtype == np.float32 for t in bn.values())
    dense = sanity.random_tensors("_fc", {"weight": (1000, 1280), "bias": (1000,)})  # 2-D: He-normal too
    assert dense["weight"].std() == pytest.approx(np.sqrt(2 / 1280), rel=0.01) and not dense["bias"].any()
    np.testing.assert_array_equal(dense["weight"], sanity.random_tensors("_fc", {"weight": (1000, 1280)},
                                                                         seed=0)["weight"])  # seed 0 by default
    again = sanity.random_tensors("_conv_head", {"weight": (1280, 320, 1, 1)}, seed=0)["weight"]
    np.testing.assert_array_equal(new, again)  # same seed and name: same weights
    for other in (sanity.random_tensors("_conv_head", {"weight": (1280, 320, 1, 1)}, seed=1)["weight"],
                  sanity.random_tensors("_blocks.15._project_conv", {"weight": (1280, 320, 1, 1)})["weight"]):
        assert np.corrcoef(new.ravel(), other.ravel())[0, 1] < 0.01  # another seed or layer: new draw
    for seed in (-1, 1.5):
        with pytest.raises(ValueError, match=f"seed must be a non-negative int, got {seed}"):
            sanity.random_tensors("_fc", {"weight": (2, 2)}, seed=seed)
    with pytest.raises(ValueError, match="'scale'"):
        sanity.random_tensors("_fc", {"scale": (2,)})


def test_layer_names_are_checked_against_the_weighted_layers():
    shapes = {"conv1": {"weight": (8, 3, 3, 3)}, "fc": {"weight": (10, 8)}}
    assert sanity.check_layers(shapes, "fc", "net") == ["fc"]
    assert sanity.check_layers(shapes, ["fc", "conv1"], "net") == ["fc", "conv1"]
    with pytest.raises(UnknownLayerError, match=r"net \(counting layers with weights; cascade_stages\(\) "
                                                r"lists each group's\) has no layer 'conv2'.*Did you mean 'conv1'"):
        sanity.check_layers(shapes, ["fc", "conv2"], "net")


def test_torch_copy_changes_only_the_chosen_layers(torch_lite0):
    before = _state(torch_lite0)
    randomized = torch_sanity.randomize_weights(torch_lite0, BLOCK_15_AND_FC, seed=0)
    for key, value in torch_lite0.state_dict().items():
        assert torch.equal(value, before[key]), f"the original's {key} changed"
    changed = {key for key, value in randomized.state_dict().items()
               if not torch.equal(value, before[key]) and not key.endswith("num_batches_tracked")}
    chosen = {key for key in before if key.startswith(("_blocks.15.", "_fc."))
              and not key.endswith("num_batches_tracked")}
    assert changed == chosen
    block = randomized._blocks[15]
    assert torch.equal(block._bn1.running_var, torch.ones(1152))  # BatchNorm as new
    assert torch.equal(block._bn1.bias, torch.zeros(1152)) and torch.equal(randomized._fc.bias, torch.zeros(1000))
    # fan-in of a depthwise 3 x 3 kernel is 9, not 9 x 1152
    assert float(block._depthwise_conv.weight.detach().std()) == pytest.approx(np.sqrt(2 / 9), rel=0.05)
    again = torch_sanity.randomize_weights(torch_lite0, BLOCK_15_AND_FC, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), randomized.state_dict().values()))
    as_float64 = torch_sanity.randomize_weights(copy.deepcopy(torch_lite0).double(), ["_fc"], seed=0)
    assert as_float64._fc.weight.dtype == torch.float64
    assert torch.equal(as_float64._fc.weight.float(), randomized._fc.weight)


def test_keras_copy_changes_only_the_chosen_layers(keras_lite0, keras_sanity, torch_lite0):
    before = {layer.name: layer.get_weights() for layer in keras_lite0.layers if layer.weights}
    randomized = keras_sanity.randomize_weights(keras_lite0, BLOCK_15_AND_FC, seed=0)
    assert randomized is not keras_lite0
    for layer in keras_lite0.layers:
        for got, was in zip(layer.get_weights(), before.get(layer.name, [])):
            np.testing.assert_array_equal(got, was, err_msg=f"the original's {layer.name} changed")
    changed = {layer.name for layer in randomized.layers if layer.weights and not all(
        np.array_equal(a, b) for a, b in zip(layer.get_weights(), before[layer.name]))}
    assert changed == {name for name in before if name.startswith(("_blocks.15.", "_fc"))}
    # the same numbers as PyTorch's copy, converted (the weights of twins)
    ours = torch_sanity.randomize_weights(torch_lite0, BLOCK_15_AND_FC, seed=0)
    np.testing.assert_array_equal(randomized.get_layer("_blocks.15._depthwise_conv").get_weights()[0],
                                  torch_kernel_to_keras(ours._blocks[15]._depthwise_conv.weight, depthwise=True))
    np.testing.assert_array_equal(randomized.get_layer("_fc").get_weights()[0], ours._fc.weight.detach().numpy().T)


@pytest.mark.slow
def test_randomized_twins_are_still_twins(torch_lite0, keras_lite0, keras_sanity, cat):
    layers = torch_sanity.cascade_stages(torch_lite0)[-1][1]  # every layer random
    ours = torch_sanity.randomize_weights(torch_lite0, layers, seed=3)
    theirs = keras_sanity.randomize_weights(keras_lite0, layers, seed=3)
    report = check_agreement(ours, theirs, ["_relu0", "_blocks.3", "_blocks.15", "_relu1", "_fc"], cat)
    assert report.passed, str(report)


def test_random_activations_neither_vanish_nor_explode(torch_lite0, cat):
    """The reason for He init with fresh BatchNorms (see utils.sanity): every block of the fully
    random model keeps an rms in 0.1-10 (measured 0.8-5.6; pretrained 3.1-8.3). Kept running
    statistics give 12-34, PyTorch's default init ~1e-8."""
    layers = [f"_blocks.{i}" for i in range(16)] + ["_relu1"]
    randomized = torch_sanity.randomize_weights(torch_lite0, torch_sanity.cascade_stages(torch_lite0)[-1][1])
    rms = [float(np.sqrt(np.mean(m.astype(np.float64) ** 2))) for m in feature_maps(randomized, layers, cat).values()]
    assert min(rms) > 0.1 and max(rms) < 10, rms


# -- Grad-CAM before and after ---------------------------------------------------------------------
@pytest.mark.slow
def test_cascade_changes_grad_cam_in_both_frameworks(torch_lite0, keras_lite0, keras_sanity, cat):
    ours = torch_sanity.cascading_randomization(torch_lite0, "_relu1", cat, EGYPTIAN_CAT)
    theirs = keras_sanity.cascading_randomization(keras_lite0, "_relu1", cat, EGYPTIAN_CAT)
    assert list(ours) == list(theirs) == ["pretrained", *TOP]
    np.testing.assert_array_equal(ours["pretrained"], gradcam(torch_lite0, "_relu1", cat).heatmaps)
    for maps in (ours, theirs):
        start = maps["pretrained"][0]
        random = [spearmanr(start.ravel(), maps[group][0].ravel())[0] for group in TOP]
        assert max(random) < 0.5 and np.mean(random) < 0.3, random  # seed 0: at most 0.40
    # stage by stage on one copy = each stage randomised from scratch
    stage = dict(torch_sanity.cascade_stages(torch_lite0))["_blocks.8"]
    fresh = gradcam(torch_sanity.randomize_weights(torch_lite0, stage), "_relu1", cat, EGYPTIAN_CAT)
    np.testing.assert_allclose(ours["_blocks.8"], fresh.heatmaps, rtol=1e-6, atol=1e-9)
    for group in ("_fc", "_blocks.8", "_conv_stem"):  # the twins' maps, as in the lesson's check
        scale = ours[group].max()
        np.testing.assert_allclose(theirs[group], ours[group], atol=1e-3 * scale)


# -- bad input -------------------------------------------------------------------------------------
def test_bad_layer_names(torch_lite0, keras_lite0, keras_sanity):
    for module, model in ((torch_sanity, torch_lite0), (keras_sanity, keras_lite0)):
        with pytest.raises(UnknownLayerError, match="Did you mean '_conv_head'") as error:
            module.randomize_weights(model, ["_fc", "_conv_hed"])
        assert "_blocks.3._bn2" in error.value.valid and "_relu1" not in error.value.valid
        with pytest.raises(UnknownLayerError, match="layers with weights; cascade_stages"):
            module.randomize_weights(model, "_relu1")  # a layer without weights: nothing to randomise
        with pytest.raises(ValueError, match="at least one layer"):
            module.randomize_weights(model, [])


def test_keras_layer_without_a_rule():
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="fc")(keras.layers.LayerNormalization(name="ln")(inputs)))
    from utils.tensorflow.sanity import randomize_weights

    with pytest.raises(TypeError, match="'ln': no rule to re-initialise a LayerNormalization"):
        randomize_weights(model, ["fc"])
