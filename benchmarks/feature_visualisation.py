"""Feature visualisation against lesson 9's activation maximisation (issue 12, addition 4).

For the same channels of one layer, the same image size and the same number of steps, both
frameworks, pretrained EfficientNet-Lite0 (CPU, float32):

* ``lesson 9``: ``maximize_activation`` (pixels, a random roll, a total-variation penalty), one
  run per channel;
* ``pixels + transforms``, ``fourier``, ``fourier + transforms``: ``visualize_channels``, all
  channels in one batch, with the transforms on or off and the parameterisation named.

Two numbers per method, means over the channels: ``reached``, the channel's mean activation on the
final ``uint8`` image (``channel_activation``, no transform), and ``robust``, its mean over 8
random shifts, scales and rotations of that image (other draws than any run used): a pattern that
only works on one pixel grid collapses there. ``fine`` is the share of an image's power (grey levels,
mean removed) above 0.25 cycles per pixel: high for speckle, low for smooth strokes (the cat: ~10 %). ``cat`` is the cat photo at the same size,
``seconds`` the wall time for all channels. Usage::

    python benchmarks/feature_visualisation.py [--steps 64] [--size 64] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/gradcam.py
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _timing import print_table, write_results

import utils  # noqa: F401  (torch before TensorFlow)
from utils import maximize as neutral
from utils.images import load_sample
from utils.preprocess import resize_and_crop
from utils.pytorch import maximize as torch_side
from utils.pytorch.models import load_model as load_torch
from utils.tensorflow import maximize as keras_side
from utils.tensorflow.models import load_model as load_keras

LAYER = "_blocks.6._bn1"
CHANNELS = tuple(range(16))
METHODS = {
    "lesson 9": None,
    "pixels + transforms": {"parameterization": "pixels"},
    "fourier": {"transforms": False},
    "fourier + transforms": {},
}


def transformed(images, transform) -> np.ndarray:
    """Model inputs of ``uint8 images [N, H, W, 3]``, moved, scaled and turned by ``transform``
    with the resampling ``visualize_channels`` uses, in NumPy (outside: mid-grey)."""
    index, weights = neutral.sampling_weights(transform, images.shape[1])
    flat = neutral.pixel_scaling("efficientnet_lite0").to_input(images).reshape(len(images), -1, 3)
    return (flat[:, index] * weights[..., None]).sum(1).reshape(images.shape)


def robust_activation(side, model, images, channels, size, draws=8, seed=1000) -> np.ndarray:
    """Each channel's mean activation over ``draws`` random transforms of its image: ``[N]``."""
    runs = [[side.channel_activation(model, LAYER, c, x) for c, x in zip(channels, transformed(images, t))]
            for t in neutral.random_transforms(draws, seed, size)]
    return np.mean(runs, axis=0)


def fine_share(images) -> float:
    """Mean over the images of the share of power above 0.25 cycles per pixel (lesson 11)."""
    grey = np.asarray(images, np.float64).mean(axis=-1)
    power = np.abs(np.fft.fft2(grey - grey.mean(axis=(1, 2), keepdims=True))) ** 2
    freqs = np.hypot(*np.meshgrid(np.fft.fftfreq(grey.shape[1]), np.fft.fftfreq(grey.shape[2]), indexing="ij"))
    return float(np.mean(power[:, freqs > 0.25].sum(1) / power.sum(axis=(1, 2))))


def measure(side, model, name, kwargs, channels, steps, size) -> dict:
    start = time.perf_counter()
    if kwargs is None:
        images = np.stack([side.maximize_activation(model, LAYER, c, steps=steps, size=size).image
                           for c in channels])
    else:
        images = side.visualize_channels(model, LAYER, channels, steps=steps, size=size, **kwargs).images
    seconds = time.perf_counter() - start
    reached = [side.channel_activation(model, LAYER, c, image) for c, image in zip(channels, images)]
    robust = robust_activation(side, model, images, channels, size)
    return {"method": name, "reached": float(np.mean(reached)), "robust": float(np.mean(robust)),
            "fine": fine_share(images),
            "min_reached": float(np.min(reached)), "min_robust": float(np.min(robust)),
            "seconds": seconds, "per_channel_reached": [float(r) for r in reached],
            "per_channel_robust": [float(r) for r in robust]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="4 channels, 16 steps (a smoke test)")
    args = parser.parse_args()
    channels, steps = (CHANNELS[:4], 16) if args.quick else (CHANNELS, args.steps)
    cat = resize_and_crop(load_sample("cat"), args.size, crop=False)
    rows = []
    for framework, side, model in [("pytorch", torch_side, load_torch("efficientnet_lite0")),
                                   ("tensorflow", keras_side, load_keras("efficientnet_lite0"))]:
        side.visualize_channels(model, LAYER, channels, steps=1, size=args.size)  # compile, warm up
        on_cat = np.mean([side.channel_activation(model, LAYER, c, cat) for c in channels])
        for name, kwargs in METHODS.items():
            row = measure(side, model, name, kwargs, channels, steps, args.size)
            rows.append({"framework": framework, **row, "cat": float(on_cat)})
    print(f"{LAYER}, channels {channels[0]}-{channels[-1]}, {steps} steps, {args.size} x {args.size} px")
    print_table(rows, ["framework", "method", "reached", "robust", "fine", "min_reached", "cat", "seconds"])
    if not args.quick:
        path = write_results("feature_visualisation", {"layer": LAYER, "channels": list(channels), "steps": steps,
                                                       "size": args.size, "rows": rows})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
