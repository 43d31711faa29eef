"""Keras models that hold another model (the transfer-learning shape: a ``keras.applications``
backbone inside a classifier) work in every TensorFlow helper, with the right values.

The backbone is MobileNetV2 built with ``weights=None`` (no network) at 96 x 96 to stay fast on a
small CPU. Its moving BatchNorm statistics are set to non-trivial values so that inference-mode
numbers depend on every layer (random init leaves them 0/1). Each nested result is compared with
the same computation done directly on the backbone or by hand.
"""

import gc

import numpy as np
import pytest

import utils  # noqa: F401  (torch/torchvision before TensorFlow)
import utils.tensorflow as ut
from utils.layers import UnknownLayerError
from utils.tensorflow._blocks import _CACHE, clear_cache, get_layer, submodel
from utils.tensorflow.capture import keras, tf

SIZE = 96
INNER = "block_1_expand"  # a conv early in the backbone
LAST = "out_relu"  # the backbone's last layer (include_top=False)


def _randomise_batchnorm(model, rng):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                rng.normal(0, 0.1, beta.shape).astype("float32"),
                rng.normal(0, 0.1, mean.shape).astype("float32"),
                rng.uniform(0.5, 2.0, var.shape).astype("float32"),
            ])


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    _randomise_batchnorm(base, np.random.default_rng(0))
    return base


@pytest.fixture(scope="module")
def head():
    """Pooling and a 5-class Dense layer, shared by every wrapper so all compute the same logits."""
    return keras.layers.GlobalAveragePooling2D(name="pool"), keras.layers.Dense(5, name="logits")


@pytest.fixture(scope="module")
def wrappers(backbone, head):
    pool, dense = head
    sequential = keras.Sequential([keras.Input((SIZE, SIZE, 3)), backbone, pool, dense], name="seq")
    inputs = keras.Input((SIZE, SIZE, 3))
    # training=False on the backbone: Keras' transfer-learning recipe (frozen BatchNorm statistics)
    functional = keras.Model(inputs, dense(pool(backbone(inputs, training=False))), name="func")
    never_built = keras.Sequential([backbone, pool, dense], name="unbuilt")
    return {"sequential": sequential, "functional": functional, "never_built": never_built}


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(1)
    return rng.normal(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)


KINDS = ["sequential", "functional", "never_built"]


@pytest.mark.parametrize("kind", KINDS)
def test_feature_maps_of_nested_layers_equal_the_backbone_s_own(kind, wrappers, backbone, x):
    model = wrappers[kind]
    maps = ut.feature_maps(model, [f"{backbone.name}/{INNER}", backbone.name, "logits"], x)
    direct = keras.Model(backbone.inputs[0], backbone.get_layer(INNER).output)(x, training=False)
    np.testing.assert_allclose(maps[f"{backbone.name}/{INNER}"], np.asarray(direct), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps[backbone.name], np.asarray(backbone(x, training=False)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps["logits"], np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-5)
    assert maps[f"{backbone.name}/{INNER}"].shape == (2, SIZE // 2, SIZE // 2, 96)
    assert np.abs(maps[f"{backbone.name}/{INNER}"]).max() > 0.1  # real values, not an empty map


def _hand_gradcam(backbone, head, x):
    """Grad-CAM of each image's top-1 class at the backbone's output, written out with a
    GradientTape (lesson 9's recipe)."""
    pool, dense = head
    with tf.GradientTape() as tape:
        maps = backbone(tf.constant(x), training=False)
        tape.watch(maps)
        logits = dense(pool(maps))
        score = tf.reduce_sum(tf.reduce_max(logits, axis=1))
    grads = tape.gradient(score, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    return np.asarray(tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))), np.asarray(logits)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("inside", [True, False], ids=["backbone/out_relu", "backbone"])
def test_gradcam_through_the_wrapper_equals_a_hand_computed_one(kind, inside, wrappers, backbone, head, x):
    layer = f"{backbone.name}/{LAST}" if inside else backbone.name
    result = ut.gradcam(wrappers[kind], layer, x)
    expected, logits = _hand_gradcam(backbone, head, x)
    assert result.heatmaps.shape == (2, 3, 3) and expected.max() > 0
    np.testing.assert_allclose(result.heatmaps, expected, rtol=1e-4, atol=1e-6 * expected.max())
    np.testing.assert_allclose(result.logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(result.class_indices, logits.argmax(axis=1))


def test_gradcam_deep_inside_the_backbone_equals_the_flat_model(wrappers, backbone, head, x):
    """An inner layer: the nested model must give the gradient of the logits that were computed
    *from* that layer. A flat model (the backbone's layers at the top level) is the reference."""
    pool, dense = head
    flat = keras.Model(backbone.inputs[0], dense(pool(backbone.outputs[0])), name="flat")
    layer = "block_13_expand_relu"
    expected = ut.gradcam(flat, layer, x).heatmaps
    assert expected.max() > 0
    for model in wrappers.values():
        got = ut.gradcam(model, f"{backbone.name}/{layer}", x).heatmaps
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * expected.max())


@pytest.mark.parametrize("kind", KINDS)
def test_maximize_activation_inside_the_backbone_equals_the_backbone_itself(kind, wrappers, backbone):
    kwargs = dict(steps=3, size=48, seed=2, progress=False)
    nested = ut.maximize_activation(wrappers[kind], f"{backbone.name}/block_3_expand", 5, **kwargs)
    direct = ut.maximize_activation(backbone, "block_3_expand", 5, **kwargs)
    np.testing.assert_array_equal(nested.image, direct.image)
    np.testing.assert_allclose(nested.history, direct.history, rtol=1e-5)
    assert nested.history[-1] > nested.history[0]  # the ascent went up


@pytest.mark.parametrize("kind", KINDS)
def test_scan_dead_filters_inside_the_backbone_equals_the_backbone_itself(kind, wrappers, backbone, x):
    layer = "block_2_expand_relu"
    nested = ut.scan_dead_filters(wrappers[kind], f"{backbone.name}/{layer}", x, batch_size=1, progress=False)
    direct = ut.scan_dead_filters(backbone, layer, x, batch_size=1, progress=False)
    assert nested.stats.count == 2 and nested.stats.num_channels == 144
    np.testing.assert_allclose(nested.stats.mean, direct.stats.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nested.stats.max, direct.stats.max, rtol=1e-5, atol=1e-6)
    assert list(nested.dead) == list(direct.dead)


@pytest.mark.parametrize("kind", KINDS)
def test_conv_filters_inside_the_backbone(kind, wrappers, backbone):
    model = wrappers[kind]
    conv = ut.conv_filters(model, f"{backbone.name}/Conv1")
    np.testing.assert_array_equal(conv, np.asarray(backbone.get_layer("Conv1").kernel).transpose(3, 2, 0, 1))
    depthwise = ut.conv_filters(model, f"{backbone.name}/expanded_conv_depthwise")
    assert depthwise.shape == (32, 1, 3, 3)
    with pytest.raises(UnknownLayerError, match=f"Did you mean '{backbone.name}/block_1_expand'"):
        ut.conv_filters(model, f"{backbone.name}/block_1_expnd")


def test_filter_snapshots_follow_a_conv_inside_the_backbone(wrappers, backbone, x):
    # A fresh wrapper around a small backbone: training must not change the shared fixtures.
    keras.utils.set_random_seed(3)
    small = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3),
                                           alpha=0.35)
    model = keras.Sequential([keras.Input((32, 32, 3)), small, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    snaps = ut.FilterSnapshots(f"{small.name}/Conv1", warn=False)
    model.fit(x[:, :32, :32], np.array([0, 1]), epochs=2, verbose=0, callbacks=[snaps])
    assert snaps.epochs == [0, 1, 2]
    np.testing.assert_array_equal(snaps.snapshots[-1], ut.conv_filters(model, f"{small.name}/Conv1"))
    moved = np.abs(snaps.snapshots[-1] - snaps.snapshots[0])
    assert np.isfinite(moved).all() and moved.max() > 0  # it saw the training
    with pytest.raises(UnknownLayerError):
        model.fit(x[:, :32, :32], np.array([0, 1]), epochs=1, verbose=0,
                  callbacks=[ut.FilterSnapshots(f"{small.name}/nope")])


def test_layer_names_are_exactly_the_names_that_work(wrappers, backbone):
    for model in wrappers.values():
        names = ut.layer_names(model)
        assert f"{backbone.name}/{INNER}" in names and backbone.name in names and "logits" in names
        sub = submodel(model, names, input_shape=(SIZE, SIZE, 3))  # every listed name, one graph
        assert len(sub.outputs) == len(names)
        for name in names:
            assert get_layer(model, name).name == name.rpartition("/")[2]
    inner_input = backbone.layers[0].name  # an InputLayer: not listed, so not accepted
    with pytest.raises(UnknownLayerError):
        get_layer(wrappers["functional"], f"{backbone.name}/{inner_input}")
    convs = ut.layer_names(wrappers["functional"], kind="conv")
    conv_types = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    assert convs and all(isinstance(get_layer(wrappers["functional"], n), conv_types) for n in convs)


def test_unknown_nested_names_suggest_the_closest(wrappers, backbone, x):
    model = wrappers["sequential"]
    typo = f"{backbone.name}/block_1_expnd"
    for call in (lambda: ut.feature_maps(model, [typo], x), lambda: ut.gradcam(model, typo, x),
                 lambda: ut.scan_dead_filters(model, typo, x, progress=False),
                 lambda: ut.maximize_activation(model, typo, 0, steps=1)):
        with pytest.raises(UnknownLayerError) as err:
            call()
        assert err.value.suggestion == f"{backbone.name}/{INNER}"
    with pytest.raises(UnknownLayerError) as err:
        get_layer(model, "logits/kernel")  # a Dense layer has no layers inside
    assert err.value.suggestion == "logits"


def test_three_levels_of_nesting():
    """Sequential -> functional -> Sequential (the innermost one first in its parent)."""
    keras.utils.set_random_seed(4)
    block = keras.Sequential([keras.layers.Conv2D(4, 3, name="c"), keras.layers.ReLU(name="r")], name="block")
    inputs = keras.Input((12, 12, 3))
    mid = keras.Model(inputs, keras.layers.Conv2D(6, 3, name="head")(block(inputs)), name="mid")
    outer = keras.Sequential([keras.Input((12, 12, 3)), mid, keras.layers.Flatten(), keras.layers.Dense(2)])
    images = np.random.default_rng(4).normal(size=(3, 12, 12, 3)).astype(np.float32)
    maps = ut.feature_maps(outer, ["mid/block/c", "mid/block/r", "mid/head"], images)
    conv = block.get_layer("c")
    np.testing.assert_allclose(maps["mid/block/c"], np.asarray(conv(images)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps["mid/block/r"], np.maximum(maps["mid/block/c"], 0))
    np.testing.assert_allclose(maps["mid/head"], np.asarray(mid(images)), rtol=1e-5, atol=1e-6)
    assert "mid/block/c" in ut.layer_names(outer, kind="conv")


def test_a_layer_that_runs_twice_is_refused_with_the_reason():
    inputs = keras.Input((8,))
    shared = keras.layers.Dense(8, name="shared")
    model = keras.Model(inputs, shared(shared(inputs)))
    with pytest.raises(ValueError, match="runs 2 times"):
        submodel(model, ["shared"])


def test_a_subclassed_nested_model_says_what_to_do():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.conv = keras.layers.Conv2D(2, 3, name="conv")

        def call(self, x):
            return self.conv(x)

    net = Net()
    outer = keras.Sequential([keras.Input((8, 8, 3)), net, keras.layers.Flatten()])
    x = np.zeros((1, 8, 8, 3), np.float32)
    assert ut.feature_maps(outer, ["net"], x)["net"].shape == (1, 6, 6, 2)  # the model as a whole works
    assert "net/conv" not in ut.layer_names(outer)  # no graph to take it from...
    with pytest.raises(TypeError, match="subclassed"):  # ...and asking for it says what to do
        ut.feature_maps(outer, ["net/conv"], x)


def test_one_cache_cleared_on_request_and_dropped_with_the_model(x):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(3, 3, name="c1"),
                              keras.layers.Conv2D(2, 3, name="c2")])
    first = ut.feature_maps(model, ["c2"], x)["c2"]
    assert model in _CACHE
    clear_cache(model)
    assert model not in _CACHE
    np.testing.assert_array_equal(ut.feature_maps(model, ["c2"], x)["c2"], first)  # rebuilt, same
    # Changing the layers drops the stale entries instead of answering from the old graph.
    model.pop()
    model.add(keras.layers.Conv2D(5, 3, name="c3"))
    assert ut.feature_maps(model, ["c3"], x)["c3"].shape[-1] == 5
    with pytest.raises(UnknownLayerError):
        ut.feature_maps(model, ["c2"], x)
    ref = __import__("weakref").ref(model)
    del model
    gc.collect()
    assert ref() is None  # the cache did not keep the model alive
    clear_cache()
    assert len(_CACHE) == 0
