"""Dataset examples in Keras: each batch runs through a compiled sub-model ending at the layer
(``sub.call``: the twins' ``__call__`` insists on 224 x 224 inputs); the rest is in
:mod:`utils.dataset_examples`."""

from __future__ import annotations

from utils.dataset_examples import DatasetExamples, PhotoCrops, collect
from utils.maximize import pixel_scaling
from utils.tensorflow._blocks import cached, get_layer, shape_if_unbuilt, submodel
from utils.tensorflow.capture import tf
from utils.tensorflow.receptive_field import receptive_field

__all__ = ["DatasetExamples", "PhotoCrops", "dataset_examples"]


def dataset_examples(model, layer: str, images, channels=None, *, k: int = 9,
                     batch_size: int = 16, preprocessing: str = "efficientnet_lite0",
                     progress: bool = True) -> DatasetExamples:
    """See :func:`utils.pytorch.dataset_examples.dataset_examples`, same contract; ``model`` is
    functional or ``Sequential`` (``training=False``), ``layer`` may be ``"backbone/layer"``."""
    get_layer(model, layer)  # a bad name fails before the first batch, with the closest match
    scaling = pixel_scaling(preprocessing)

    def run(batch):
        def build():
            sub = submodel(model, [layer], input_shape=shape_if_unbuilt(model, batch.shape[1:]))

            @tf.function(reduce_retracing=True)
            def call(x):
                with tf.name_scope("examples"):  # graph scopes may not start with "_" (_conv_stem)
                    return sub.call(x, training=False)

            return call

        maps = cached(model, ("dataset_examples", layer), build)(scaling.to_input(batch)).numpy()
        return maps.transpose(0, 3, 1, 2) if maps.ndim == 4 else maps

    return collect(images, layer, "tensorflow", run, lambda size: receptive_field(model, layer, size),
                   channels, k, batch_size, progress)
