"""Dead-filter scan on the pretrained EfficientNet-Lite0 stem, in both frameworks (slow: builds the
Keras twin and ports the weights)."""

import copy

import numpy as np
import pytest
import torch

from utils.images import SAMPLE_IMAGES, load_sample
from utils.preprocess import preprocess

pytestmark = pytest.mark.slow

PLANTED = [3, 17, 30]


def test_zeroed_stem_filters_are_dead_in_both_frameworks():
    from utils.port import port_to_keras
    from utils.pytorch.diagnostics import scan_dead_filters as scan_torch
    from utils.pytorch.models import load_model as load_torch
    from utils.tensorflow.diagnostics import scan_dead_filters as scan_keras
    from utils.tensorflow.models import load_model as load_keras

    x = preprocess([load_sample(name) for name in SAMPLE_IMAGES])
    model = load_torch("efficientnet_lite0")
    healthy = scan_torch(model, "_conv_stem", x, batch_size=4, progress=False)
    assert healthy.dead == []
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken._conv_stem.weight[PLANTED] = 0.0  # the stem has no bias (BatchNorm follows)
    torch_scan = scan_torch(broken, "_conv_stem", x, batch_size=4, progress=False)
    assert torch_scan.dead == PLANTED
    twin = port_to_keras(broken, load_keras("efficientnet_lite0", pretrained=False))
    keras_scan = scan_keras(twin, "_conv_stem", x, batch_size=4, progress=False)
    assert keras_scan.dead == PLANTED
    np.testing.assert_allclose(keras_scan.stats.mean, torch_scan.stats.mean, rtol=1e-4, atol=1e-5)
