"""Grad-CAM in both frameworks (issue 5): the twins agree, the heat lies on the cat, it follows the
class asked for, and the maths is the textbook one."""

import numpy as np
import pytest
import torch

from utils import gradcam as neutral
from utils.agreement import relative_error
from utils.images import load_sample
from utils.preprocess import preprocess, resize_and_crop
from utils.pytorch import feature_maps as torch_feature_maps
from utils.pytorch.gradcam import gradcam as torch_gradcam
from utils.pytorch.models import load_model as load_torch

EGYPTIAN_CAT, ESPRESSO = 285, 967

# Boxes (top, left, bottom, right) on the cat photo squeezed into 224 x 224 (cat_full), drawn by eye:
CAT_FACE_BOX = (40, 24, 216, 184)  # both eyes, nose, mouth and cheeks; 56 % of the frame
BACKGROUND_STRIP = (0, 200, 224, 224)  # the right edge: only the room behind the cat


@pytest.fixture(scope="module")
def keras_gradcam():
    from utils.tensorflow.gradcam import gradcam

    return gradcam


@pytest.fixture(scope="module")
def cat_full():
    """The whole cat photo squeezed into 224 x 224 (the frame CAT_FACE_BOX is drawn on)."""
    return preprocess(load_sample("cat"), crop=False)


@pytest.fixture(scope="module")
def cat_and_coffee():
    """The cat (left half) next to the coffee cup (right half), squeezed into 224 x 224."""
    halves = [resize_and_crop(load_sample(name), crop=True) for name in ("cat", "coffee")]
    return preprocess(np.concatenate(halves, axis=1), crop=False)


# -- the two frameworks ------------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["_relu1", "_blocks.15", "_blocks.10"])
def test_twins_agree_on_the_cat(torch_lite0, keras_lite0, keras_gradcam, cat_full, layer):
    ours = torch_gradcam(torch_lite0, layer, cat_full)
    theirs = keras_gradcam(keras_lite0, layer, cat_full)
    assert ours.heatmaps.shape == theirs.heatmaps.shape == ((1, 7, 7) if layer != "_blocks.10" else (1, 14, 14))
    assert ours.class_indices.tolist() == theirs.class_indices.tolist() == [EGYPTIAN_CAT]
    assert ours.heatmaps.max() > 0.01  # a real map, not an all-zero one that agrees trivially
    _, rel = relative_error(ours.heatmaps, theirs.heatmaps)
    assert rel <= 1e-4
    np.testing.assert_allclose(ours.logits, theirs.logits, atol=1e-4)


def test_twins_agree_for_a_batch_and_chosen_classes(torch_lite0, keras_lite0, keras_gradcam, cat_and_coffee, cat_full):
    batch = np.concatenate([cat_full, cat_and_coffee])
    ours = torch_gradcam(torch_lite0, "_relu1", batch, class_index=[ESPRESSO, ESPRESSO])
    theirs = keras_gradcam(keras_lite0, "_relu1", batch, class_index=[ESPRESSO, ESPRESSO])
    assert relative_error(ours.heatmaps, theirs.heatmaps)[1] <= 1e-4
    assert theirs.class_indices.tolist() == [ESPRESSO, ESPRESSO]


# -- where the heat is ---------------------------------------------------------------------------
def test_heat_falls_on_the_cat_face_not_the_background(torch_lite0, keras_lite0, keras_gradcam, cat_full):
    for result in (torch_gradcam(torch_lite0, "_relu1", cat_full), keras_gradcam(keras_lite0, "_relu1", cat_full)):
        assert result.class_indices[0] == EGYPTIAN_CAT
        face = neutral.heat_in_box(result.heatmaps[0], CAT_FACE_BOX)
        assert face.box_area_fraction == pytest.approx(0.561, abs=0.001)
        assert face.fraction_inside > 0.6  # an even spread would give 0.56
        assert face.ratio > 2.0  # mean heat on the face more than twice the mean elsewhere
        background = neutral.heat_in_box(result.heatmaps[0], BACKGROUND_STRIP)
        assert background.mean_inside < 0.25 * face.mean_inside


def test_heat_follows_the_class_asked_for(torch_lite0, keras_lite0, keras_gradcam, cat_and_coffee):
    left, right = (0, 0, 224, 112), (0, 112, 224, 224)
    for cam in (lambda c: torch_gradcam(torch_lite0, "_relu1", cat_and_coffee, c),
                lambda c: keras_gradcam(keras_lite0, "_relu1", cat_and_coffee, c)):
        on_cat = cam(EGYPTIAN_CAT).heatmaps[0]
        on_cup = cam(ESPRESSO).heatmaps[0]
        assert neutral.heat_in_box(on_cat, left).fraction_inside > 0.8
        assert neutral.heat_in_box(on_cup, right).fraction_inside > 0.8


def test_matches_class_activation_mapping_at_the_head(torch_lite0, cat_full):
    """At the head (ReLU6 -> global average pool -> linear) the gradient of logit c with respect to
    A_k[i, j] is W[c, k] / (h * w), so Grad-CAM must equal ReLU(sum_k W[c, k] A_k) / (h * w)."""
    result = torch_gradcam(torch_lite0, "_relu1", cat_full, class_index=ESPRESSO)
    maps = torch_feature_maps(torch_lite0, ["_relu1"], cat_full)["_relu1"][0]  # [1280, 7, 7]
    w = torch_lite0._fc.weight.detach().numpy()[ESPRESSO]
    expected = np.maximum(np.tensordot(w, maps, axes=1), 0) / (7 * 7)
    np.testing.assert_allclose(result.heatmaps[0], expected, rtol=1e-4, atol=1e-6 * expected.max())


def test_keras_matches_class_activation_mapping_at_the_head(keras_lite0, keras_gradcam, cat_full):
    from utils.tensorflow import feature_maps

    result = keras_gradcam(keras_lite0, "_relu1", cat_full, class_index=ESPRESSO)
    maps = feature_maps(keras_lite0, ["_relu1"], cat_full)["_relu1"][0]  # [7, 7, 1280]
    w = keras_lite0.get_layer("_fc").get_weights()[0][:, ESPRESSO]
    expected = np.maximum(maps @ w, 0) / (7 * 7)
    np.testing.assert_allclose(result.heatmaps[0], expected, rtol=1e-4, atol=1e-6 * expected.max())


# -- the class argument, batches, errors ---------------------------------------------------------
def test_class_index_forms(torch_lite0, cat_full, cat_and_coffee):
    batch = np.concatenate([cat_full, cat_and_coffee])
    top1 = torch_gradcam(torch_lite0, "_relu1", batch)
    assert top1.class_indices.tolist() == np.argmax(top1.logits, axis=1).tolist()
    assert top1.class_indices.dtype == np.int64
    same = torch_gradcam(torch_lite0, "_relu1", batch, class_index=ESPRESSO)
    assert same.class_indices.tolist() == [ESPRESSO, ESPRESSO]
    mixed = torch_gradcam(torch_lite0, "_relu1", batch, class_index=[EGYPTIAN_CAT, ESPRESSO])
    # images are explained independently: each row equals the single-image result
    alone = torch_gradcam(torch_lite0, "_relu1", cat_and_coffee, class_index=ESPRESSO)
    np.testing.assert_allclose(mixed.heatmaps[1], alone.heatmaps[0], rtol=1e-5, atol=1e-7)
    assert not np.allclose(mixed.heatmaps[0], same.heatmaps[0])
    heatmaps, classes, logits = mixed  # unpacks like a tuple
    assert heatmaps.shape == (2, 7, 7) and logits.shape == (2, 1000) and classes.shape == (2,)


@pytest.mark.parametrize("bad, error", [(1000, ValueError), (-1, ValueError), ([1, 2, 3], ValueError), (2.5, TypeError)])
def test_bad_class_index(torch_lite0, keras_lite0, keras_gradcam, cat_full, bad, error):
    with pytest.raises(error):
        torch_gradcam(torch_lite0, "_relu1", cat_full, class_index=bad)
    with pytest.raises(error):
        keras_gradcam(keras_lite0, "_relu1", cat_full, class_index=bad)


def test_bad_layers(torch_lite0, keras_lite0, keras_gradcam, cat_full):
    from utils.layers import UnknownLayerError

    for cam, model in ((torch_gradcam, torch_lite0), (keras_gradcam, keras_lite0)):
        with pytest.raises(UnknownLayerError, match="_relu1"):
            cam(model, "_relu_1", cat_full)
        with pytest.raises(ValueError, match="feature maps"):
            cam(model, "_fc", cat_full)


def test_torch_model_is_left_as_it_was(cat_full):
    model = load_torch("efficientnet_lite0").train()
    before = torch_gradcam(load_torch("efficientnet_lite0"), "_blocks.15", cat_full)
    result = torch_gradcam(model, "_blocks.15", cat_full)
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # autograd.grad: no .grad written
    np.testing.assert_allclose(result.heatmaps, before.heatmaps, rtol=1e-6)  # ran in eval mode
    for p in model.parameters():  # frozen weights: the graph starts at the layer instead
        p.requires_grad_(False)
    frozen = torch_gradcam(model, "_blocks.15", cat_full)
    np.testing.assert_allclose(frozen.heatmaps, before.heatmaps, rtol=1e-6)


def test_torch_in_place_operation_after_the_layer_is_harmless():
    """torchvision's ResNet adds the skip in place right after ``bn2``; the gradient must still be
    taken for bn2's own output (checked against a copy of the block without in-place ops)."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, in_place):
            super().__init__()
            torch.manual_seed(0)
            self.conv, self.bn2 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.head = nn.Linear(4, 3)
            self.in_place = in_place

        def forward(self, x):
            out = self.bn2(self.conv(x))
            if self.in_place:
                out += 1.0
                out = torch.relu_(out)
            else:
                out = torch.relu(out + 1.0)
            return self.head(out.mean(dim=(2, 3)))

    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    a = torch_gradcam(Block(True).eval(), "bn2", x, class_index=1)
    b = torch_gradcam(Block(False).eval(), "bn2", x, class_index=1)
    np.testing.assert_allclose(a.heatmaps, b.heatmaps, rtol=1e-5, atol=1e-7)
    assert a.heatmaps.max() > 0


# -- neutral helpers -------------------------------------------------------------------------------
def test_normalize_and_upsample():
    maps = np.array([[[0.0, 2.0], [1.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]], dtype=np.float32)
    norm = neutral.normalize_heatmap(maps)
    np.testing.assert_allclose(norm[0], [[0, 0.5], [0.25, 1]])
    assert not norm[1].any()  # all-zero stays zero, no division by zero
    np.testing.assert_allclose(neutral.normalize_heatmap(maps[0]), norm[0])
    big = neutral.upsample_heatmap(maps[0], 8)
    assert big.shape == (8, 8) and big.max() == pytest.approx(4.0) and big.min() == pytest.approx(0.0)
    assert neutral.upsample_heatmap(maps, (4, 6)).shape == (2, 4, 6)
    with pytest.raises(ValueError):
        neutral.normalize_heatmap(np.zeros(5))


def test_heat_in_box():
    even = neutral.heat_in_box(np.ones((7, 7)), CAT_FACE_BOX)
    assert even.fraction_inside == pytest.approx(even.box_area_fraction)
    assert even.ratio == pytest.approx(1.0)
    corner = np.zeros((7, 7))
    corner[0, 6] = 1.0  # all heat top right, in the background
    hot_corner = neutral.heat_in_box(corner, CAT_FACE_BOX)
    assert hot_corner.fraction_inside < 0.05 and hot_corner.ratio < 0.1
    with pytest.raises(ValueError):
        neutral.heat_in_box(np.ones((7, 7)), (0, 0, 300, 10))
