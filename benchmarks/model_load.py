"""Model loading and weight porting times (issue 3 targets).

Targets: porting the Lite0 weights <= 2 s; loading the pretrained Lite0 in either framework
<= 3 s after imports. Measured in one process after ``import utils.pytorch.models,
utils.tensorflow.models``: the *first* call (what a learner's notebook pays) and the median of
interleaved repeats. Rows:

* ``torch load lite0``: ``utils.pytorch.models.load_model("efficientnet_lite0")`` (build + .pth)
* ``keras load lite0``: ``utils.tensorflow.models.load_model("efficientnet_lite0")``
  (build the twin + load the PyTorch weights + port)
* ``keras build lite0 twin``: the twin with random weights only
* ``port lite0``: ``port_to_keras(state_dict, twin)`` into an already built twin
* ``torch/keras load resnet18 (random)`` for comparison
* ``resnet18 missing weights error``: ``load_model("resnet18")`` with an empty torch hub folder
  and no network (or none that answers): how long a learner waits for the instructions (one
  call; it was a unit test's time limit before, which depended on the machine)

Usage::

    python benchmarks/model_load.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _timing import median_times, print_table, write_results

import utils  # noqa: F401  (first: torch before TensorFlow)
from utils.port import port_to_keras
from utils.pytorch import models as tm
from utils.pytorch.models.weights import efficientnet_lite0_weights_path
from utils.tensorflow import models as km

TARGETS = {"torch load lite0": 3.0, "keras load lite0": 3.0, "port lite0": 2.0,
           "resnet18 missing weights error": 5.0}


def _missing_weights_error_seconds() -> float:
    """Seconds until ``load_model("resnet18")`` gives up with its instructions (empty hub)."""
    import tempfile

    old = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as empty:
        torch.hub.set_dir(empty)
        start = time.perf_counter()
        try:
            tm.load_model("resnet18", pretrained=True)
        except tm.WeightsNotAvailableError:
            pass
        else:  # the network answered: the error path was not taken
            return float("nan")
        finally:
            torch.hub.set_dir(old)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    state = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    twin = km.efficientnet_lite0_twin()
    fns = {
        "torch load lite0": lambda: tm.load_model("efficientnet_lite0"),
        "keras load lite0": lambda: km.load_model("efficientnet_lite0"),
        "keras build lite0 twin": km.efficientnet_lite0_twin,
        "port lite0": lambda: port_to_keras(state, twin),
        "torch load resnet18 (random)": lambda: tm.load_model("resnet18", pretrained=False),
        "keras load resnet18 (random)": lambda: km.load_model("resnet18", pretrained=False),
    }
    first = {}
    for name, fn in fns.items():  # the first call, right after imports
        start = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - start
    median = median_times(fns, repeats=args.repeats, warmup=0)
    fns["resnet18 missing weights error"] = None  # one call only: it waits on the network
    first["resnet18 missing weights error"] = median["resnet18 missing weights error"] = \
        _missing_weights_error_seconds()

    rows = []
    for name in fns:
        target = TARGETS.get(name)
        ok = (
            None
            if target is None
            else ("yes" if max(first[name], median[name]) <= target else "NO")
        )
        rows.append(
            {
                "what": name,
                "first_s": first[name],
                "median_s": median[name],
                "target_s": target,
                "met": ok,
            }
        )
    print_table(rows, ["what", "first_s", "median_s", "target_s", "met"])
    path = write_results("model_load", {"repeats": args.repeats, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
