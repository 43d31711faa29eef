"""Dead filters in Keras: stream a data set through the model and count how often each channel of
one layer fires. A sub-model ending at the layer (``submodel``) and the reduction to per-channel
means and maxima ``[B, C]`` run in one compiled function, built once per model and layer.
"""

from __future__ import annotations

from utils.stats import ChannelStats, DeadFilterScan, count_batches, dead_filters, iter_batches
from utils.tensorflow._blocks import cached, check_graph_model, get_layer, submodel
from utils.tensorflow.capture import tf, to_input

__all__ = ["scan_dead_filters"]


def _reducer(model, layer: str, input_shape: tuple):
    """A compiled function batch -> per-sample spatial (means, maxima) ``[B, C]``, cached."""

    def build():
        sub = submodel(model, [layer], input_shape=input_shape)
        rank = len(sub.outputs[0].shape)
        if rank not in (2, 4):
            raise ValueError(f"layer {layer!r} outputs rank {rank}; expected [N, H, W, C] or [N, C]")

        @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)])
        def summarise(x):
            maps = sub(x, training=False)
            if rank == 4:
                return tf.reduce_mean(maps, axis=[1, 2]), tf.reduce_max(maps, axis=[1, 2])
            return maps, maps

        return summarise

    return cached(model, ("scan_dead_filters", layer, input_shape), build)


def scan_dead_filters(model, layer: str, images, *, batch_size: int = 256,
                      fire_threshold: float = 0.0, min_fraction: float = 0.01, top_k: int = 0,
                      progress: bool = True) -> DeadFilterScan:
    """The channels of ``layer`` that (almost) never fire over ``images``: see
    :func:`utils.pytorch.diagnostics.scan_dead_filters`, same contract. ``model`` is functional
    or ``Sequential`` (run with ``training=False``); ``layer`` may be ``"backbone/layer"``;
    ``images`` NumPy ``[N, H, W, C]``, a ``tf.Tensor`` or an iterable such as a ``tf.data``
    dataset."""
    # the plain text bar: works in a terminal and a notebook, needs no widgets
    from tqdm import tqdm

    check_graph_model(model)
    get_layer(model, layer)  # a bad name fails before the first batch, with the closest match
    stats = ChannelStats(fire_threshold=fire_threshold, top_k=top_k)
    summarise = None
    batches = iter_batches(images, batch_size, to_input)
    for x in tqdm(batches, total=count_batches(images, batch_size), disable=not progress,
                  desc=f"scan {layer}", unit="batch", leave=False):
        if summarise is None:
            summarise = _reducer(model, layer, tuple(int(d) for d in x.shape[1:]))
        means, maxes = summarise(x)
        stats.update_reduced(means.numpy(), maxes.numpy())
    if not stats.count:
        raise ValueError("no images to scan: the input was empty")
    return DeadFilterScan(layer=layer, framework="tensorflow", stats=stats,
                          dead=dead_filters(stats, min_fraction=min_fraction),
                          fire_threshold=float(fire_threshold), min_fraction=float(min_fraction))
