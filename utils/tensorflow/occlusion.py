"""Occlusion sensitivity in Keras; the shared parts are in :mod:`utils.occlusion`."""

from __future__ import annotations

from utils._import_order import import_tensorflow
from utils.occlusion import OcclusionResult, run_occlusion
from utils.tensorflow._blocks import cached
from utils.tensorflow.capture import to_input

tf = import_tensorflow()

__all__ = ["OcclusionResult", "occlusion"]


def occlusion(model, images, class_index=None, *, patch: int = 32, stride: int = 16, fill=None,
              score: str = "probability", batch_size: int = 64, preprocessing: str = "efficientnet_lite0",
              progress: bool | None = None) -> OcclusionResult:
    """See :func:`utils.pytorch.occlusion.occlusion`, same contract; runs ``training=False``,
    compiled once per input shape (``tf.function``: about half the time of an eager call)."""

    def predict(batch):
        spec = tf.TensorSpec((None, *batch.shape[1:]), tf.float32)
        build = lambda: tf.function(lambda x: model(x, training=False), input_signature=[spec])  # noqa: E731
        return cached(model, ("occlusion", spec.shape[1:]), build)(to_input(batch)).numpy()

    return run_occlusion(predict, images, class_index, patch, stride, fill, score, batch_size,
                         preprocessing, progress)
