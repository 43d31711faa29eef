"""The course's TensorFlow/Keras helpers: the names and signatures of :mod:`utils.pytorch`, for
the Keras twins. Two names differ on purpose: ``activation_model`` (a
multi-output sub-model, Keras' capture mechanism, instead of ``ActivationCapture``) and
``clear_cache(model=None)`` (forget the sub-models the helpers built and compiled).

Activations are ``[N, H, W, C]``; kernels come back as ``[out, in, kh, kw]`` like PyTorch's.
Layer names reach into nested models (a backbone inside a classifier) as ``"backbone/layer"``
in every helper; the building blocks behind that are in :mod:`utils.tensorflow._blocks`.
Importing this module imports TensorFlow quietly, after torch and torchvision.
"""

from utils._import_order import import_tensorflow

import_tensorflow()

from utils.tensorflow._blocks import clear_cache
from utils.tensorflow.capture import activation_model, feature_maps, layer_names, to_input
from utils.tensorflow.dataset_examples import DatasetExamples, PhotoCrops, dataset_examples
from utils.tensorflow.diagnostics import scan_dead_filters
from utils.tensorflow.filters import conv_filters
from utils.tensorflow.gradcam import GradCAMResult, gradcam
from utils.tensorflow.maximize import (
    FeatureVisualization,
    MaximizationResult,
    channel_activation,
    maximize_activation,
    visualization_step,
    visualize_channels,
)
from utils.tensorflow.models import MODEL_NAMES, WeightsNotAvailableError, load_model, predict
from utils.tensorflow.occlusion import OcclusionResult, occlusion
from utils.tensorflow.receptive_field import ReceptiveField, receptive_field
from utils.tensorflow.sanity import cascade_stages, cascading_randomization, randomize_weights
from utils.tensorflow.snapshots import FilterSnapshots

FRAMEWORK = "tensorflow"
LAYOUT = "channels_last"

__all__ = [
    "FRAMEWORK", "LAYOUT", "MODEL_NAMES", "activation_model", "channel_activation", "clear_cache",
    "conv_filters", "feature_maps", "FilterSnapshots", "gradcam", "GradCAMResult", "layer_names",
    "load_model", "MaximizationResult", "maximize_activation", "predict", "scan_dead_filters",
    "to_input", "WeightsNotAvailableError",
    # issue 12: what a channel detects, and whether an explanation explains
    "cascade_stages", "cascading_randomization", "dataset_examples", "DatasetExamples",
    "occlusion", "OcclusionResult", "PhotoCrops", "randomize_weights", "receptive_field",
    "ReceptiveField", "FeatureVisualization", "visualization_step", "visualize_channels",
]
