"""Grad-CAM cost: one Grad-CAM call divided by one plain forward pass (issue 5 target: <= 3x).

Both frameworks, the pretrained EfficientNet-Lite0 on the cat photo (224 x 224, CPU, float32),
median of interleaved runs (``_timing.median_times``):

* PyTorch: ``utils.pytorch.gradcam.gradcam`` (forward with autograd + ``autograd.grad`` back to
  the layer) against ``model(x)`` under ``inference_mode`` (what ``utils.pytorch.predict`` runs).
* Keras: ``utils.tensorflow.gradcam.gradcam`` (compiled with ``tf.function``) against two
  baselines: ``utils.tensorflow.predict`` (eager ``model(x, training=False)``, what the lessons
  call) and the same forward pass compiled with ``tf.function`` (the strict one). The eager
  ``GradientTape`` that lesson 9 writes by hand is timed too, to show why the helper compiles.

Layers: ``_relu1`` (the head, 7 x 7, the usual Grad-CAM layer) and ``_blocks.5`` (14 x 14: the
gradient has to travel back through 10 more blocks). Usage::

    python benchmarks/gradcam.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# A shared 2-core machine: with OpenMP's default busy-waiting, PyTorch's two threads stall for
# seconds whenever another process holds a core, which would make the timings meaningless.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _timing import median_times, print_table, write_results

import utils  # noqa: F401  (torch before TensorFlow)
from utils.images import load_sample
from utils.preprocess import preprocess
from utils.pytorch.gradcam import gradcam as torch_gradcam
from utils.pytorch.models import load_model as load_torch
from utils.tensorflow.capture import keras, tf
from utils.tensorflow.gradcam import gradcam as keras_gradcam
from utils.tensorflow.gradcam import gradcam_model
from utils.tensorflow.models import load_model as load_keras
from utils.tensorflow.models import predict as keras_predict

LAYERS = ("_relu1", "_blocks.5")
TARGET = 3.0


def _row(framework, layer, batch, variant, baseline, seconds, base_seconds, note="") -> dict:
    return {
        "framework": framework,
        "layer": layer,
        "batch": batch,
        "variant": variant,
        "baseline": baseline,
        "seconds": seconds,
        "baseline_seconds": base_seconds,
        "ratio": seconds / base_seconds,
        "meets_target": seconds / base_seconds <= TARGET,
        "note": note,
    }


def torch_rows(x: np.ndarray, repeats: int) -> list[dict]:
    model = load_torch("efficientnet_lite0")
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def forward():
        with torch.inference_mode():
            model(xt)

    fns = {"forward": forward} | {layer: (lambda layer=layer: torch_gradcam(model, layer, xt)) for layer in LAYERS}
    t = median_times(fns, repeats=repeats)
    return [_row("pytorch", layer, len(x), "gradcam", "model(x), inference_mode", t[layer], t["forward"]) for layer in LAYERS]


def keras_rows(x: np.ndarray, repeats: int) -> list[dict]:
    model = load_keras("efficientnet_lite0")
    xt = tf.constant(x)
    compiled_forward = tf.function(lambda v: model(v, training=False))

    def eager_tape(layer):  # what lesson 9 writes by hand: a sub-model under an eager GradientTape
        sub = gradcam_model(model, layer)
        with tf.GradientTape() as tape:
            maps, logits = sub(xt, training=False)
            score = tf.reduce_max(logits, axis=1)
        grads = tape.gradient(score, maps)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()

    fns = {
        "predict": lambda: keras_predict(model, xt),
        "compiled": lambda: compiled_forward(xt).numpy(),
    }
    for layer in LAYERS:
        fns[layer] = lambda layer=layer: keras_gradcam(model, layer, xt)
        fns[f"eager {layer}"] = lambda layer=layer: eager_tape(layer)
    t = median_times(fns, repeats=repeats, warmup=2)
    rows = []
    for layer in LAYERS:
        rows += [
            _row("keras", layer, len(x), "gradcam (tf.function)", "predict: model(x) eager", t[layer], t["predict"]),
            _row("keras", layer, len(x), "gradcam (tf.function)", "model(x) in tf.function", t[layer], t["compiled"],
                 "strict baseline"),
            _row("keras", layer, len(x), "eager GradientTape", "predict: model(x) eager", t[f"eager {layer}"],
                 t["predict"], "the lesson's raw version; not the helper"),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="two repeats, batch 1 only (smoke test)")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    cat = preprocess(load_sample("cat"))
    rows = []
    for batch in (1,) if args.quick else (1, 8):
        x = np.repeat(cat, batch, axis=0)
        rows += torch_rows(x, repeats)
        rows += keras_rows(x, repeats)
    print_table(rows, ["framework", "layer", "batch", "variant", "baseline", "seconds", "baseline_seconds", "ratio",
                       "meets_target", "note"])
    helper_rows = [r for r in rows if r["variant"] != "eager GradientTape"]
    print(f"\nworst helper ratio: {max(r['ratio'] for r in helper_rows):.2f} (target <= {TARGET})")
    if not args.quick:
        path = write_results("gradcam", {
            "repeats": repeats,
            "target_ratio": TARGET,
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "keras_version": keras.__version__,
            "rows": rows,
        })
        print(f"written to {path}")


if __name__ == "__main__":
    main()
