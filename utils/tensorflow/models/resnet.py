"""ResNet-18 as a Keras functional model, the twin of torchvision's ``resnet18`` (same names).
Where the frameworks differ, the twin is explicit:

* **Padding.** Keras' ``"same"`` pads one pixel less at the top/left than PyTorch for stride 2, so
  padded convs and the max-pool get a ``ZeroPadding2D`` (``<layer>_pad``) and ``"valid"``. (Zeros
  before the max-pool equal PyTorch's ``-inf`` there: its input comes out of a ReLU.)
* **BatchNorm epsilon** is PyTorch's 1e-5 (Keras' default is 1e-3).
* **One ReLU, two calls**: ``layerS.B.relu`` (after ``bn1``) and ``layerS.B.relu_1`` (after the
  skip addition), the keys of ``ActivationCapture.as_dict()``.
* ``Identity`` layers ``layerS.B`` and ``layerS`` stand for PyTorch's containers; Keras-only
  layers carry a suffix (``_pad``, ``layerS.B_add``, ``avgpool_flatten``).
"""

from __future__ import annotations

# (utils.tensorflow's __init__ has imported TensorFlow quietly, after torch: the safe order.)
import keras
from keras import layers

BN_EPS = 1e-5
STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the first block)
BLOCKS_PER_STAGE = 2


def resnet18_twin(
    num_classes: int = 1000, *, bn_epsilon: float = BN_EPS, explicit_padding: bool = True
) -> keras.Model:
    """The Keras ResNet-18 with random weights; input ``[N, 224, 224, 3]`` (ImageNet-normalised).
    ``bn_epsilon`` and ``explicit_padding=False`` (Keras' ``padding="same"``) build deliberately
    *wrong* twins for the lesson on porting bugs."""

    def conv(x, name, filters, kernel, stride=1, pad=0):
        if pad and explicit_padding:
            x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        padding = "same" if pad and not explicit_padding else "valid"
        return layers.Conv2D(filters, kernel, stride, padding, use_bias=False, name=name)(x)

    def bn(x, name):
        return layers.BatchNormalization(epsilon=bn_epsilon, momentum=0.9, name=name)(x)

    def basic_block(x, name, filters, stride):
        shortcut = x
        y = conv(x, f"{name}.conv1", filters, 3, stride, pad=1)
        y = layers.ReLU(name=f"{name}.relu")(bn(y, f"{name}.bn1"))
        y = bn(conv(y, f"{name}.conv2", filters, 3, 1, pad=1), f"{name}.bn2")
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = conv(x, f"{name}.downsample.0", filters, 1, stride)
            shortcut = bn(shortcut, f"{name}.downsample.1")
        y = layers.Add(name=f"{name}_add")([y, shortcut])
        y = layers.ReLU(name=f"{name}.relu_1")(y)
        return layers.Identity(name=name)(y)

    inputs = keras.Input((224, 224, 3), name="input")
    x = conv(inputs, "conv1", 64, 7, 2, pad=3)
    x = layers.ReLU(name="relu")(bn(x, "bn1"))
    if explicit_padding:
        x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = layers.MaxPooling2D(3, 2, "valid" if explicit_padding else "same", name="maxpool")(x)
    for s, (filters, stride) in enumerate(STAGES, start=1):
        for b in range(BLOCKS_PER_STAGE):
            x = basic_block(x, f"layer{s}.{b}", filters, stride if b == 0 else 1)
        x = layers.Identity(name=f"layer{s}")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avgpool")(x)
    x = layers.Flatten(name="avgpool_flatten")(x)
    outputs = layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, outputs, name="resnet18")
