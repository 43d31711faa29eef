"""Capture overhead: a forward pass that also captures every conv layer, divided by a plain one.

Variants, each on CPU in float32, median of interleaved runs:

* PyTorch: ``utils.pytorch.ActivationCapture`` with its default ``clone="auto"`` (copies only
  what an in-place module would overwrite, checks the rest with version counters), with
  ``clone=True`` (copies every output) and ``clone=False`` (no copies, no checks); bare forward
  hooks that keep every output (no library: the floor for any capture that returns the outputs);
  torchvision's ``create_feature_extractor`` (FX graph rewrite). All against ``model(x)`` under
  ``no_grad``; the capture's construction is inside the timed call, as in real use.
* Keras: ``utils.tensorflow.activation_model`` (sub-model returning the logits plus every conv
  output) against plain ``predict``, and both again with eager ``model(x, training=False)``.

PyTorch models: ResNet18 and EfficientNet-Lite0 at batch 16 (target <= 1.05x), ResNet18,
MobileNetV2 and RegNetY-400MF at batch 2 (target <= 1.15x), 224x224, random weights. Keras:
ResNet18 at batch 16, Lite0 at batch 32. Usage::

    python benchmarks/capture_overhead.py [--repeats 7] [--quick] [--threads N] [--clock wall|cpu]

On a busy shared machine wall times of the same forward pass vary several-fold (other programs
take the cores away mid-pass); ``--threads 1 --clock cpu`` times the PyTorch rows in this
process's CPU time (user + system, so page faults count) with one compute thread, which such
interruptions do not inflate. The Keras rows always use wall time (TensorFlow's own threads).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
import torchvision
from _timing import median_times, print_table, write_results
from torchvision.models import feature_extraction
from torchvision.models.feature_extraction import create_feature_extractor

import utils  # noqa: F401  (torch before TensorFlow)
from utils import pytorch as pt
from utils import tensorflow as tfu
from utils.pytorch.models import load_model as load_torch
from utils.tensorflow.models import load_model as load_keras

TORCH_CASES = [  # (model, batch, target ratio of the default capture), issue 10
    ("resnet18", 16, 1.05),
    ("efficientnet_lite0", 16, 1.05),
    ("resnet18", 2, 1.15),
    ("mobilenet_v2", 2, 1.15),
    ("regnet_y_400mf", 2, 1.15),
]
KERAS_CASES = [("resnet18", 16), ("efficientnet_lite0", 32)]
BASELINE = "model(x), no_grad"


def _torch_model(name: str) -> torch.nn.Module:
    if name in pt.MODEL_NAMES:
        return load_torch(name, pretrained=False).eval()
    return getattr(torchvision.models, name)(weights=None).eval()


def _fx_extractor(model, convs):
    nodes = {n: n for n in convs} | {_last(model): "out"}
    try:
        return create_feature_extractor(model, return_nodes=nodes), ""
    except ValueError:  # convs inside torchvision.ops blocks (Conv2dNormActivation...): no node
        pass
    except Exception as error:  # FX cannot trace Python control flow on tensor shapes
        return None, f"{type(error).__name__}: not traceable"
    # torchvision traces its own ops blocks as leaves and merges any leaf list given into that
    # default; emptying the default is the only way to reach the convs inside them.
    default = feature_extraction._get_leaf_modules_for_ops
    feature_extraction._get_leaf_modules_for_ops = list
    try:
        return create_feature_extractor(model, return_nodes=nodes), "traced through torchvision.ops blocks"
    except Exception as error:
        return None, f"{type(error).__name__}: not traceable"
    finally:
        feature_extraction._get_leaf_modules_for_ops = default


def torch_rows(name: str, batch: int, target: float, repeats: int, clock=time.perf_counter) -> list[dict]:
    model = _torch_model(name)
    x = torch.randn(batch, 3, 224, 224)
    convs = pt.layer_names(model, kind="conv")
    modules = [model.get_submodule(n) for n in convs]
    fx, fx_error = _fx_extractor(model, convs)

    def plain():
        with torch.no_grad():
            model(x)

    def capture(clone):
        with pt.ActivationCapture(model, convs, clone=clone), torch.no_grad():
            model(x)

    def bare_hooks():  # keeps every output, copies nothing, checks nothing: the floor
        kept = []
        handles = [m.register_forward_hook(lambda m, i, out: kept.append(out)) for m in modules]
        with torch.no_grad():
            model(x)
        for handle in handles:
            handle.remove()

    def torchvision_fx():
        with torch.no_grad():
            fx(x)

    variants = {"plain": plain, "auto": lambda: capture("auto"), "copy": lambda: capture(True),
                "raw": lambda: capture(False), "bare": bare_hooks} | ({"fx": torchvision_fx} if fx else {})
    t = median_times(variants, repeats=repeats, clock=clock)
    labels = {
        "auto": "ActivationCapture (default clone='auto')",
        "copy": "ActivationCapture(clone=True)",
        "raw": "ActivationCapture(clone=False)",
        "bare": "bare hooks keeping outputs (floor)",
        "fx": "torchvision create_feature_extractor",
    }
    rows = [_row("pytorch", name, batch, len(convs), label, BASELINE, t.get(key), t["plain"])
            for key, label in labels.items()]
    rows[0]["target"] = target
    rows[-1]["note"] = fx_error
    return rows


def _last(model) -> str:
    return [n for n, _ in model.named_modules() if n][-1]


def keras_rows(name: str, batch: int, repeats: int) -> list[dict]:
    model = load_keras(name, pretrained=False)
    x = np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype(np.float32)
    convs = tfu.layer_names(model, kind="conv")
    # The capture model also returns the logits (the last layer), so both sides compute the
    # whole network. One activation_model call, whatever inputs it builds the sub-model on.
    capture = tfu.activation_model(model, convs + [model.layers[-1].name])
    xt = tfu.to_input(x)
    import tensorflow as tf

    compiled = tf.function(lambda inputs: model(inputs, training=False))  # the target's baseline
    t = median_times(
        {
            "compiled_call": lambda: np.asarray(compiled(xt)),
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
        {**_row("keras", name, batch, len(convs), "feature_maps (compiled sub-model)",
                "compiled model call (tf.function)", t["feature_maps"], t["compiled_call"]),
         "target": 1.05},
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
        "target": None,
        "note": "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one repeat and smaller batches (smoke test)")
    parser.add_argument("--threads", type=int, default=0, help="torch compute threads (0: torch's default)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this process's CPU time, robust on a busy shared machine with --threads 1")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    repeats = 1 if args.quick else args.repeats
    scale = 4 if args.quick else 1
    rows = []
    for name, batch, target in TORCH_CASES:
        # batch 2 runs in a few tens of ms: more repeats for the same robustness against noise
        rows += torch_rows(name, max(1, batch // scale), target, repeats * (3 if batch <= 2 else 1), clock)
    for name, batch in KERAS_CASES:
        rows += keras_rows(name, batch // scale, repeats)  # wall time: TensorFlow runs its own threads
    for row in rows:
        if row["target"] is not None:
            row["note"] = "meets target" if row["ratio"] <= row["target"] else "MISSES target"
    columns = ["framework", "model", "batch", "layers", "variant", "baseline", "seconds",
               "baseline_seconds", "ratio", "target", "note"]
    print_table(rows, columns)
    if not args.quick:
        settings = {"repeats": repeats, "torch_threads": torch.get_num_threads(), "torch_clock": args.clock,
                    "load_average_at_end": list(os.getloadavg())}
        path = write_results("capture_overhead", settings | {"rows": rows})
        print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
