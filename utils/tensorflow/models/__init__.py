"""The course's models in Keras: one loader, one input converter, one predict.

Same names and signatures as :mod:`utils.pytorch.models`. Each Keras model is a *twin* of the
PyTorch one: the same layers under the same names, with the trained weights ported from PyTorch
(:func:`utils.port.port_to_keras`)::

    model = load_model("efficientnet_lite0")            # ImageNet weights, inference only
    logits = predict(model, preprocess(images))         # NumPy [N, 1000]
"""

from __future__ import annotations

from utils import _import_order  # noqa: F401  (torch before TensorFlow)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402

from utils.port import port_to_keras  # noqa: E402
from utils.pytorch.models import MODEL_NAMES, WeightsNotAvailableError, check_model_name  # noqa: E402
from utils.pytorch.models import load_model as load_torch_model  # noqa: E402
from utils.tensorflow.models.efficientnet_lite import efficientnet_lite0_twin  # noqa: E402
from utils.tensorflow.models.mnist import mnist_cnn_twin  # noqa: E402
from utils.tensorflow.models.resnet import resnet18_twin  # noqa: E402

_TWINS = {
    "efficientnet_lite0": efficientnet_lite0_twin,
    "resnet18": resnet18_twin,
    "mnist_cnn": mnist_cnn_twin,
}

__all__ = [
    "MODEL_NAMES",
    "WeightsNotAvailableError",
    "efficientnet_lite0_twin",
    "load_model",
    "mnist_cnn_twin",
    "predict",
    "resnet18_twin",
    "to_input",
]


def load_model(name: str, pretrained: bool = True) -> keras.Model:
    """Build one of the course's models in Keras.

    Args:
        name: ``"efficientnet_lite0"``, ``"resnet18"`` or ``"mnist_cnn"`` (see
            :func:`utils.pytorch.load_model`).
        pretrained: ``True`` ports the trained PyTorch weights into the Keras twin (the same
            source as the PyTorch tab, so both tabs compute the same numbers); ``False`` keeps
            Keras' own random initialisation.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid names).
        WeightsNotAvailableError: pretrained weights cannot be found or fetched.
    """
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be True or False, got {pretrained!r}")
    check_model_name(name)
    if pretrained:
        source = load_torch_model(name, pretrained=True)  # raises before the twin is built
        return port_to_keras(source, _TWINS[name]())
    return _TWINS[name]()


def to_input(images) -> tf.Tensor:
    """Preprocessed images -> the model's input tensor.

    ``images``: the course's framework-neutral batch, a float32 NumPy array ``[N, H, W, C]`` from
    :func:`utils.preprocess.preprocess` (one image ``[H, W, C]`` gets a batch axis). Keras uses
    that layout too, so this only makes a float32 ``tf.Tensor``. A TensorFlow tensor is returned
    unchanged.
    """
    if isinstance(images, tf.Tensor):
        return images
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"expected images [N, H, W, C] or [H, W, C], got shape {array.shape}")
    return tf.convert_to_tensor(array)


def predict(model: keras.Model, images) -> np.ndarray:
    """Run ``model`` in inference mode (``training=False``: BatchNorm uses its moving statistics,
    dropout is off) and return its outputs (logits) as NumPy ``[N, classes]``.

    ``images`` as for :func:`to_input`.
    """
    return np.asarray(model(to_input(images), training=False))
