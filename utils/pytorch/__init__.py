"""The course's PyTorch helpers. :mod:`utils.tensorflow` mirrors every name and signature here.

====================================  =============================================================
``load_model(name, pretrained)``      the course's models: ``efficientnet_lite0``, ``resnet18``, ``mnist_cnn``
``predict(model, x)``                 logits as NumPy ``[N, classes]`` (inference mode)
``to_input(images)``                  NumPy ``[N, H, W, C]`` batch -> tensor ``[N, C, H, W]``
``layer_names(model, kind)``          capturable module names (``kind="conv"``: convolutions)
``ActivationCapture(model, layers)``  forward hooks in a context manager (PyTorch's mechanism)
``feature_maps(model, layers, x)``    layer outputs as NumPy ``[N, C, H, W]``
``conv_filters(model, layer)``        kernels as NumPy ``[out, in, kh, kw]``
``gradcam(model, layer, x)``         Grad-CAM heatmaps ``[N, h, w]`` and the classes explained
``maximize_activation(model, ...)``  an input optimised to excite one channel
``scan_dead_filters(model, ...)``    streamed per-channel statistics over a data set
``FilterSnapshots``                  a layer's filters recorded every epoch (training-loop helper)
====================================  =============================================================

Every helper that runs a model follows the model's device: NumPy or tensor inputs are moved to it
(a model on a GPU works as is) and results come back as NumPy arrays on the CPU; values meant for
comparison are computed with TF32 off. The helpers share one set of building blocks,
:mod:`utils.pytorch._blocks` (``eval_mode``, ``device_of``, ``run_until``...), kept internal.
"""

from utils import _import_order  # noqa: F401
from utils.pytorch.capture import ActivationCapture, feature_maps, layer_names, to_input
from utils.pytorch.diagnostics import scan_dead_filters
from utils.pytorch.filters import conv_filters
from utils.pytorch.gradcam import GradCAMResult, gradcam
from utils.pytorch.maximize import MaximizationResult, channel_activation, maximize_activation
from utils.pytorch.models import MODEL_NAMES, WeightsNotAvailableError, load_model, predict
from utils.pytorch.snapshots import FilterSnapshots

FRAMEWORK = "pytorch"
LAYOUT = "channels_first"

__all__ = [
    "FRAMEWORK",
    "LAYOUT",
    "MODEL_NAMES",
    "ActivationCapture",
    "channel_activation",
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
