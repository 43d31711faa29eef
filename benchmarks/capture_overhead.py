"""Capture overhead: a forward pass that also captures every conv layer, divided by a plain one.

Variants, each on CPU in float32, median of interleaved runs:

* PyTorch: ``utils.pytorch.ActivationCapture`` (forward hooks, cloned outputs) and torchvision's
  ``create_feature_extractor`` (FX graph rewrite), both against ``model(x)`` under ``no_grad``.
* Keras: ``utils.tensorflow.activation_model`` (sub-model returning the logits plus every conv
  output) against plain ``predict``, and both again with eager ``model(x, training=False)``.

Models: ResNet18 at batch 16 and EfficientNet-Lite0 at batch 32, 224x224. Usage::

    python benchmarks/capture_overhead.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _timing import median_times, print_table, write_results
from torchvision.models.feature_extraction import create_feature_extractor

import utils  # noqa: F401  (torch before TensorFlow)
from utils import pytorch as pt
from utils import tensorflow as tfu
from utils.pytorch.models import load_model as load_torch
from utils.tensorflow.capture import keras
from utils.tensorflow.models import load_model as load_keras


def torch_rows(name: str, batch: int, repeats: int) -> list[dict]:
    model = load_torch(name, pretrained=False).eval()
    x = torch.randn(batch, 3, 224, 224)
    convs = pt.layer_names(model, kind="conv")
    try:
        fx = create_feature_extractor(model, return_nodes={n: n for n in convs} | {_last(model): "out"})
    except Exception as error:  # FX cannot trace Python control flow on tensor shapes
        fx, fx_error = None, f"{type(error).__name__}: not traceable"

    def plain():
        with torch.no_grad():
            model(x)

    def hooks():
        with pt.ActivationCapture(model, convs), torch.no_grad():
            model(x)

    def hooks_no_clone():
        with pt.ActivationCapture(model, convs, clone=False), torch.no_grad():
            model(x)

    def torchvision_fx():
        with torch.no_grad():
            fx(x)

    variants = {"plain": plain, "hooks": hooks, "hooks_no_clone": hooks_no_clone}
    variants |= {"fx": torchvision_fx} if fx else {}
    t = median_times(variants, repeats=repeats)
    rows = [
        _row("pytorch", name, batch, len(convs), "ActivationCapture (hooks)", "model(x), no_grad", t["hooks"], t["plain"]),
        _row("pytorch", name, batch, len(convs), "ActivationCapture(clone=False)", "model(x), no_grad",
             t["hooks_no_clone"], t["plain"]),
    ]
    fx_row = _row("pytorch", name, batch, len(convs), "torchvision create_feature_extractor", "model(x), no_grad",
                  t.get("fx"), t["plain"])
    if not fx:
        fx_row["note"] = fx_error
    return rows + [fx_row]


def _last(model) -> str:
    return [n for n, _ in model.named_modules() if n][-1]


def keras_rows(name: str, batch: int, repeats: int) -> list[dict]:
    model = load_keras(name, pretrained=False)
    x = np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype(np.float32)
    convs = tfu.layer_names(model, kind="conv")
    sub = tfu.activation_model(model, convs)
    # The capture model also returns the logits, so both sides compute the whole network.
    capture = keras.Model(model.inputs, list(sub.outputs) + list(model.outputs))
    xt = tfu.to_input(x)
    t = median_times(
        {
            "predict": lambda: model.predict(x, batch_size=batch, verbose=0),
            "capture_predict": lambda: capture.predict(x, batch_size=batch, verbose=0),
            "call": lambda: model(xt, training=False),
            "capture_call": lambda: capture(xt, training=False),
            "feature_maps": lambda: tfu.feature_maps(model, convs, x),
        },
        repeats=repeats,
    )
    return [
        _row("keras", name, batch, len(convs), "activation_model + predict", "predict", t["capture_predict"], t["predict"]),
        _row("keras", name, batch, len(convs), "activation_model, eager call", "model(x, training=False)", t["capture_call"], t["call"]),
        _row("keras", name, batch, len(convs), "activation_model + predict", "model(x, training=False)", t["capture_predict"], t["call"]),
        _row("keras", name, batch, len(convs), "feature_maps (compiled sub-model)", "predict", t["feature_maps"], t["predict"]),
    ]


def _row(framework, model, batch, layers, variant, baseline, seconds, base_seconds) -> dict:
    return {
        "framework": framework,
        "model": model,
        "batch": batch,
        "layers": layers,
        "variant": variant,
        "baseline": baseline,
        "seconds": seconds,
        "baseline_seconds": base_seconds,
        "ratio": None if seconds is None else seconds / base_seconds,
        "note": "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat and smaller batches (smoke test)")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    scale = 4 if args.quick else 1
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    for name, batch in (("resnet18", 16), ("efficientnet_lite0", 32)):
        rows += torch_rows(name, batch // scale, repeats)
        rows += keras_rows(name, batch // scale, repeats)
    print_table(rows, ["framework", "model", "batch", "layers", "variant", "baseline", "seconds", "baseline_seconds", "ratio", "note"])
    if not args.quick:
        path = write_results("capture_overhead", {"repeats": repeats, "rows": rows, "target_ratio": 1.05})
        print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
