"""EfficientNet-Lite0 as a Keras functional model, the twin of
:mod:`utils.pytorch.models.efficientnet_lite` from the same block table, with exactly its module
names; each block ends in a layer named after it (``_blocks.3``: the skip ``Add``, else an
``Identity``). Keras' ``padding="same"`` is the checkpoint's own.
"""

from __future__ import annotations

# (utils.tensorflow's __init__ has imported TensorFlow quietly, after torch: the safe order.)
import keras
from keras import layers

from utils.pytorch.models.efficientnet_lite import (
    BN_EPS,
    BN_MOMENTUM,
    DROPOUT,
    HEAD_CHANNELS,
    LITE0_STAGES,
    STEM_CHANNELS,
    block_configs,
)


def _bn(name: str):
    # Keras' momentum is the decay of the running statistics: 1 - PyTorch's momentum.
    return layers.BatchNormalization(epsilon=BN_EPS, momentum=1.0 - BN_MOMENTUM, name=name)


def _mbconv(x, name, kernel_size, stride, expand_ratio, in_channels, out_channels):
    """One inverted-residual block; ``name`` is the PyTorch block name, e.g. ``"_blocks.3"``."""
    inputs = x
    mid = in_channels * expand_ratio
    if expand_ratio != 1:
        x = layers.Conv2D(mid, 1, use_bias=False, name=f"{name}._expand_conv")(x)
        x = _bn(f"{name}._bn0")(x)
        x = layers.ReLU(6.0, name=f"{name}._relu0")(x)
    x = layers.DepthwiseConv2D(
        kernel_size, stride, padding="same", use_bias=False, name=f"{name}._depthwise_conv"
    )(x)
    x = _bn(f"{name}._bn1")(x)
    x = layers.ReLU(6.0, name=f"{name}._relu1")(x)
    x = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{name}._project_conv")(x)
    x = _bn(f"{name}._bn2")(x)
    if stride == 1 and in_channels == out_channels:
        return layers.Add(name=name)([x, inputs])
    return layers.Identity(name=name)(x)


def efficientnet_lite0_twin(num_classes: int = 1000) -> keras.Model:
    """The Keras EfficientNet-Lite0, random; input ``[N, 224, 224, 3]`` scaled as ``(x - 127) /
    128``. ``utils.tensorflow.load_model("efficientnet_lite0")`` ports the trained weights."""
    inputs = keras.Input((224, 224, 3), name="input")
    x = layers.Conv2D(STEM_CHANNELS, 3, 2, padding="same", use_bias=False, name="_conv_stem")(
        inputs
    )
    x = _bn("_bn0")(x)
    x = layers.ReLU(6.0, name="_relu0")(x)
    for i, cfg in enumerate(block_configs(LITE0_STAGES)):
        x = _mbconv(x, f"_blocks.{i}", **cfg)
    x = layers.Conv2D(HEAD_CHANNELS, 1, use_bias=False, name="_conv_head")(x)
    x = _bn("_bn1")(x)
    x = layers.ReLU(6.0, name="_relu1")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="_avg_pooling")(x)
    x = layers.Flatten(name="_flatten")(x)
    x = layers.Dropout(DROPOUT, name="_dropout")(x)
    outputs = layers.Dense(num_classes, name="_fc")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")
