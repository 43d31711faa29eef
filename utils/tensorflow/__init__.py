"""The course's TensorFlow/Keras helpers. :mod:`utils.pytorch` mirrors every name and signature here.

====================================  =============================================================
``load_model(name, pretrained)``      Keras twins of the course's models, weights ported from PyTorch
``predict(model, x)``                 logits as NumPy ``[N, classes]`` (``training=False``)
``to_input(images)``                  NumPy ``[N, H, W, C]`` batch -> ``tf.Tensor``
``layer_names(model, kind)``          capturable layer names (``kind="conv"``: convolutions)
``activation_model(model, layers)``   multi-output sub-model (Keras' mechanism)
``feature_maps(model, layers, x)``    layer outputs as NumPy ``[N, H, W, C]``
``conv_filters(model, layer)``        kernels as NumPy ``[out, in, kh, kw]``
``gradcam(model, layer, x)``         Grad-CAM heatmaps ``[N, h, w]`` and the classes explained
``maximize_activation(model, ...)``  an input optimised to excite one channel
``scan_dead_filters(model, ...)``    streamed per-channel statistics over a data set
``FilterSnapshots``                  a layer's filters recorded every epoch (Keras callback)
``clear_cache(model=None)``           forget the sub-models the helpers built and compiled
====================================  =============================================================

Layer names reach into nested models (a ``keras.applications`` backbone inside a classifier) as
``"backbone/layer"``, in every helper. The building blocks behind that (``get_layer``,
``submodel``, the one cache) are in :mod:`utils.tensorflow._blocks`.

Importing this module imports TensorFlow quietly, after torch and torchvision.
"""

from utils._import_order import import_tensorflow

import_tensorflow()

from utils.tensorflow._blocks import clear_cache
from utils.tensorflow.capture import (
    activation_model,
    feature_maps,
    layer_names,
    to_input,
)
from utils.tensorflow.diagnostics import scan_dead_filters
from utils.tensorflow.filters import conv_filters
from utils.tensorflow.gradcam import GradCAMResult, gradcam
from utils.tensorflow.maximize import (
    MaximizationResult,
    channel_activation,
    maximize_activation,
)
from utils.tensorflow.models import MODEL_NAMES, WeightsNotAvailableError, load_model, predict
from utils.tensorflow.snapshots import FilterSnapshots

FRAMEWORK = "tensorflow"
LAYOUT = "channels_last"

__all__ = [
    "FRAMEWORK",
    "LAYOUT",
    "MODEL_NAMES",
    "activation_model",
    "channel_activation",
    "clear_cache",
    "conv_filters",
    "feature_maps",
    "FilterSnapshots",
    "gradcam",
    "GradCAMResult",
    "layer_names",
    "load_model",
    "MaximizationResult",
    "maximize_activation",
    "predict",
    "scan_dead_filters",
    "to_input",
    "WeightsNotAvailableError",
]
