"""Mutation testing of the modules whose logic is pure and fast to test (issue 13).

``make mutation`` runs this with the small tool environment ``$(VENV)-mutation`` (mutmut plus a
``.pth`` link to the course environment's packages; requirements.txt is not changed). For each
module below, mutmut 3 makes one-line changes ("mutants": ``<`` for ``<=``, another constant, a
dropped argument, ...) and runs the module's focused tests against each; a mutant that no test
notices *survives*. Each module runs in its own scratch copy of the checkout under
``_build/mutation/<module>/`` (mutmut works on a ``mutants/`` copy next to its configuration), so
the working tree is never touched.

Score = killed / (killed + survived), timeouts counted as killed, with the mutants listed in
``benchmarks/results/mutation_equivalent.md`` (they cannot change behaviour; each has its reason)
left out. Prints the score per module and writes ``benchmarks/results/mutation.json``.

Usage::

    python benchmarks/mutation.py                 # every module
    python benchmarks/mutation.py values results  # some (by short name)
    python benchmarks/mutation.py --keep          # keep the scratch copies (``mutmut show`` there)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "_build" / "mutation"
RESULTS = ROOT / "benchmarks" / "results"
EQUIVALENT = RESULTS / "mutation_equivalent.md"
TARGET = 0.85

# short name -> (module file, focused test files or test ids, mutant name patterns or None for all).
# The selections import neither TensorFlow nor Keras: mutmut forks a child per mutant, and
# TensorFlow's thread pools hang in a forked child (the mutant would count as a false "timeout").
MODULES: dict[str, tuple[str, list[str], list[str] | None]] = {
    "layout": ("utils/layout.py", ["tests/test_layout_values.py"], None),
    "stats": ("utils/stats.py", ["tests/test_stats.py"], None),
    "values": ("coursekit/grade/values.py", ["tests/test_grader_units.py"], None),
    "scoring": ("coursekit/grade/scoring.py", ["tests/test_grade_scoring.py"], None),
    "results": ("coursekit/grade/results.py", ["tests/test_grader_units.py"], None),
    "plan": ("coursekit/grade/plan.py", ["tests/test_grade_plan.py", "tests/test_grader_units.py"], None),
    "source": ("coursekit/grade/source.py", ["tests/test_grade_source.py", "tests/test_grader_units.py"], None),
    # the verdict only (how a layer is judged, and the report's summary of its rows), not the
    # model-running code around it, which test_agreement.py covers with real models
    "agreement": ("utils/agreement.py", ["tests/test_agreement_verdict.py", "tests/test_verdict_details.py"], [
        "utils.agreement.x_relative_error__mutmut_*", "utils.agreement.x__judge__mutmut_*",
        "utils.agreement.x_compare_activations__mutmut_*", "utils.agreement.x__bucket__mutmut_*",
        "utils.agreement.xǁAgreementRowǁ*", "utils.agreement.xǁAgreementReportǁ*"]),
    # issue 12's geometry: the tests that check it without a model (the framework walkers, which
    # need TensorFlow or real models, are covered by the rest of test_receptive_field.py)
    "receptive_field": ("utils/receptive_field.py", [
        f"tests/test_receptive_field.py::test_{name}" for name in (
            "the_arithmetic_alone_gives_vggs_textbook_fields", "window_per_axis_with_dilation",
            "union_of_branches", "same_padding_is_tensorflows", "pair_names_what_it_expected",
            "box_is_clipped_and_whole_input_is_everywhere")], [
        "utils.receptive_field.x_pair__mutmut_*", "utils.receptive_field.x_union__mutmut_*",
        "utils.receptive_field.x_same_padding__mutmut_*", "utils.receptive_field.xǁReceptiveFieldǁ*"]),
    # the experiment on a NumPy model; the framework wrappers only pass their predict
    "occlusion": ("utils/occlusion.py", [
        f"tests/test_occlusion.py::test_{name}" for name in (
            "patch_positions_cover_every_pixel", "pixel_map_averages_the_patches_covering_each_pixel",
            "rank_correlation", "run_occlusion_is_the_hand_loop_on_a_linear_model",
            "run_occlusion_fill_per_image_and_predicted_class",
            "probability_drops_below_float32_resolution_are_kept", "pixel_map_of_a_wide_image",
            "the_default_patch_is_mid_grey_after_preprocessing", "run_occlusion_names_what_it_expected",
            "run_occlusion_names_the_batch_it_expected", "long_runs_show_a_progress_bar")], None),
    # the cascade's order and the new weights (the copies of real models: the rest of test_sanity.py)
    "sanity": ("utils/sanity.py", [
        f"tests/test_sanity.py::test_{name}" for name in (
            "groups_of_a_resnet_like_table", "random_tensors_he_normal_and_fresh_batchnorm",
            "layer_names_are_checked_against_the_weighted_layers")], None),
    # the streamed top k per channel, on a NumPy layer
    "dataset_examples": ("utils/dataset_examples.py", [
        f"tests/test_dataset_examples.py::test_{name}" for name in (
            "crops_are_deterministic_and_lazy", "crops_of_a_square_photo_at_full_scale_are_the_photo",
            "collect_equals_a_brute_force_search", "statistics_accumulate_in_float64",
            "collect_reports_the_chosen_channels_and_refuses_what_it_cannot_use",
            "collect_shows_a_progress_bar_named_after_the_layer")], None),
}
# Test helpers every selection may import.
HELPERS = ["tests/conftest.py", "tests/_ci.py", "tests/_notebooks.py"]


def _mutmut_config(module: str, tests: list[str]) -> str:
    lines = ["", "[tool.mutmut]", 'source_paths = ["utils", "coursekit"]',
             f"only_mutate = [{json.dumps(module)}]",
             f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
             'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"]',
             "use_git_change_detection = false", ""]
    return "\n".join(lines)


def _pyproject_without_mutmut() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.sub(r"\n\[tool\.mutmut\].*?(?=\n\[|\Z)", "\n", text, flags=re.S)


def _prepare(name: str, module: str, tests: list[str]) -> Path:
    folder = SCRATCH / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("utils", "coursekit"):
        shutil.copytree(ROOT / package, folder / package, ignore=ignore)
    (folder / "tests").mkdir()
    for path in {*HELPERS, *(test.split("::")[0] for test in tests)}:  # a file or a test in it
        shutil.copy(ROOT / path, folder / path)
    (folder / "pyproject.toml").write_text(_pyproject_without_mutmut() +
                                           _mutmut_config(module, tests), encoding="utf-8")
    return folder


def _equivalent() -> dict[str, str]:
    """Mutant name -> why it is equivalent, from the table in mutation_equivalent.md."""
    found = {}
    if EQUIVALENT.is_file():
        for line in EQUIVALENT.read_text(encoding="utf-8").splitlines():
            match = re.match(r"\|\s*`([^`]+)`\s*\|\s*(.+?)\s*\|\s*$", line)
            if match:
                found[match.group(1)] = match.group(2)
    return found


def _statuses(folder: Path) -> dict[str, str]:
    done = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                          cwd=folder, capture_output=True, text=True, check=False)
    statuses = {}
    for line in done.stdout.splitlines():
        if ": " in line:
            key, status = line.strip().rsplit(": ", 1)
            statuses[key] = status
    return statuses


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, names = sys.argv[1], sys.argv[2:]
print(json.dumps({name: get_diff_for_mutant(name, path=path) for name in names}))
"""


def _diffs(folder: Path, module: str, mutants: list[str]) -> dict[str, str]:
    """The changed lines of each mutant (one process for all: ``mutmut show`` costs a start-up each)."""
    if not mutants:
        return {}
    done = subprocess.run([sys.executable, "-c", _DIFFS, module, *mutants], cwd=folder,
                          capture_output=True, text=True, check=False)
    try:
        diffs = json.loads(done.stdout)
    except ValueError:
        return {name: "(no diff: " + done.stderr.strip()[-200:] + ")" for name in mutants}
    return {name: "\n".join(line for line in text.splitlines()
                            if line.startswith(("+", "-")) and not line.startswith(("+++", "---")))
            for name, text in diffs.items()}


def run_module(name: str, jobs: int, equivalent: dict[str, str]) -> dict:
    module, tests, patterns = MODULES[name]
    folder = _prepare(name, module, tests)
    env = dict(os.environ, COURSE_NO_LINK_CHECK="1", PYTHONWARNINGS="ignore",
               TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs),
                    *(patterns or [])], cwd=folder, env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=(folder / "mutmut.log").open("w"))
    seconds = time.monotonic() - started
    statuses = _statuses(folder)
    if patterns:
        import fnmatch

        statuses = {k: v for k, v in statuses.items()
                    if any(fnmatch.fnmatch(k, p) for p in patterns)}
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    survivors = sorted(k for k, v in statuses.items() if v in ("survived", "no tests"))
    excluded = [k for k in survivors if k in equivalent]
    alive = [k for k in survivors if k not in equivalent]
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    judged = killed + len(alive)
    result = {
        "module": module, "tests": tests, "mutants": len(statuses), "killed": killed,
        "survived": len(alive), "equivalent_excluded": len(excluded),
        "other": {k: v for k, v in counts.items()
                  if k not in ("killed", "timeout", "survived", "no tests")},
        "score": round(killed / judged, 4) if judged else None,
        "seconds": round(seconds, 1),
        "surviving": _diffs(folder, module, alive),
        "equivalent": {k: equivalent[k] for k in excluded},
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], default=[],
                        help="short names (default: all)")
    parser.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    args = parser.parse_args()
    names = args.modules or list(MODULES)
    out = RESULTS / "mutation.json"
    results = {}
    equivalent = _equivalent()
    failed = []
    for name in names:
        result = run_module(name, args.jobs, equivalent)
        results[name] = result
        score = "n/a" if result["score"] is None else f"{result['score']:.1%}"
        print(f"{name:10s} {result['module']:28s} killed {result['killed']:4d}  survived "
              f"{result['survived']:3d}  equivalent {result['equivalent_excluded']:3d}  "
              f"score {score:>6s}  ({result['seconds']:.0f} s)", flush=True)
        for mutant, diff in result["surviving"].items():
            print(f"    survived: {mutant}\n        " + diff.replace("\n", "\n        "))
        if result["score"] is None or result["score"] < TARGET:
            failed.append(name)
        if not args.keep:
            shutil.rmtree(SCRATCH / name, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {}  # modules not run this time
    merged = {**previous.get("modules", {}), **results}
    merged = {name: merged[name] for name in MODULES if name in merged}
    out.write_text(json.dumps({"tool": _mutmut_version(), "target": TARGET,
                               "modules": merged}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    if failed:
        print(f"below the target of {TARGET:.0%}: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _mutmut_version() -> str:
    from importlib import metadata

    return f"mutmut {metadata.version('mutmut')}"


if __name__ == "__main__":
    sys.exit(main())
