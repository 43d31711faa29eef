"""How long each lesson notebook takes to run, top to bottom, as a learner runs it.

    python benchmarks/notebook_times.py                  # every notebook in book/
    python benchmarks/notebook_times.py book/02_*.ipynb  # some of them

Each notebook runs once, in a fresh kernel started for it (kernel start-up, imports and model
loading are included, as a learner pays them), with nbclient, in the notebook's own folder, in
the same kernel environment as the book build. The notebook files are not modified.

Budget (issue 4): <= 60 s per lesson, <= 90 s for lessons 07-09 (debugging, training,
Grad-CAM: they train models or run hundreds of passes). Prints a table, writes
benchmarks/results/notebook_times.json and exits 1 when a notebook fails or is over its budget.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbformat
from _timing import print_table, write_results
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from coursekit.notebooks import kernel_env

DEFAULT_BUDGET_S = 60.0
LONG_BUDGET_S = 90.0
# debugging, filters during training, Grad-CAM / activation maximisation
LONG_LESSONS = {7, 8, 9}


def budget_for(path: Path) -> float:
    match = re.match(r"(\d+)_", path.name)
    return LONG_BUDGET_S if match and int(match.group(1)) in LONG_LESSONS else DEFAULT_BUDGET_S


def run_notebook(path: Path, cell_timeout: int = 600) -> tuple[float, str | None]:
    """Execute ``path`` in a fresh kernel; return (seconds incl. kernel start, error or None)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout,
                            kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute(env=kernel_env())  # starts the kernel, runs every cell, shuts it down
        error = None
    except (CellExecutionError, CellTimeoutError) as exc:
        error = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
    return time.perf_counter() - start, error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to time (default: book/*.ipynb)")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "book").glob("*.ipynb"))
    if not notebooks:
        print("no notebooks in book/")
        return 1

    rows = []
    for path in notebooks:
        print(f"running {path.relative_to(ROOT)} ...", flush=True)
        seconds, error = run_notebook(path)
        budget = budget_for(path)
        status = "FAILED" if error else ("over budget" if seconds > budget else "ok")
        rows.append({"notebook": path.relative_to(ROOT).as_posix(), "seconds": round(seconds, 1),
                     "budget_s": budget, "status": status, "error": error})

    print()
    print_table(rows, ["notebook", "seconds", "budget_s", "status"])
    for row in rows:
        if row["error"]:
            print(f"\n{row['notebook']}: {row['error']}")
    out = write_results("notebook_times", {
        "note": "seconds per notebook, fresh kernel each, kernel start included",
        "notebooks": rows,
    })
    print(f"\nwritten to {out.relative_to(ROOT)}")
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        print(f"{len(bad)} notebook(s) failed or over budget: "
              + ", ".join(r["notebook"] for r in bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
