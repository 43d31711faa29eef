"""The course's PyTorch helpers; :mod:`utils.tensorflow` mirrors every name and signature.

``load_model`` and ``predict`` (the course's models, logits ``[N, classes]``), ``to_input`` (NumPy
``[N, H, W, C]`` -> tensor ``[N, C, H, W]``), ``layer_names``, ``ActivationCapture`` (forward hooks
in a context manager), ``feature_maps`` (NumPy ``[N, C, H, W]``), ``conv_filters`` (``[out, in,
kh, kw]``), ``gradcam``, ``maximize_activation`` and ``visualize_channels`` (activation
maximisation, one channel or a batch of them), ``scan_dead_filters``, ``FilterSnapshots``,
``receptive_field``, ``dataset_examples`` (the patches that excite a channel most), ``occlusion``
and the weight-randomisation sanity check (``randomize_weights``, ``cascading_randomization``).
Helpers that run a model follow its device and return NumPy on the CPU, computed with TF32 off;
their building blocks are in :mod:`utils.pytorch._blocks`.
"""

from utils import _import_order  # noqa: F401
from utils.pytorch.capture import ActivationCapture, feature_maps, layer_names, to_input
from utils.pytorch.dataset_examples import DatasetExamples, PhotoCrops, dataset_examples
from utils.pytorch.diagnostics import scan_dead_filters
from utils.pytorch.filters import conv_filters
from utils.pytorch.gradcam import GradCAMResult, gradcam
from utils.pytorch.maximize import (
    FeatureVisualization,
    MaximizationResult,
    channel_activation,
    maximize_activation,
    visualization_step,
    visualize_channels,
)
from utils.pytorch.models import MODEL_NAMES, WeightsNotAvailableError, load_model, predict
from utils.pytorch.occlusion import OcclusionResult, occlusion
from utils.pytorch.receptive_field import ReceptiveField, receptive_field
from utils.pytorch.sanity import cascade_stages, cascading_randomization, randomize_weights
from utils.pytorch.snapshots import FilterSnapshots

FRAMEWORK = "pytorch"
LAYOUT = "channels_first"

__all__ = [
    "FRAMEWORK", "LAYOUT", "MODEL_NAMES", "ActivationCapture", "channel_activation",
    "conv_filters", "feature_maps", "FilterSnapshots", "gradcam", "GradCAMResult", "layer_names",
    "load_model", "MaximizationResult", "maximize_activation", "predict", "scan_dead_filters",
    "to_input", "WeightsNotAvailableError",
    # issue 12: what a channel detects, and whether an explanation explains
    "cascade_stages", "cascading_randomization", "dataset_examples", "DatasetExamples",
    "occlusion", "OcclusionResult", "PhotoCrops", "randomize_weights", "receptive_field",
    "ReceptiveField", "FeatureVisualization", "visualization_step", "visualize_channels",
]
