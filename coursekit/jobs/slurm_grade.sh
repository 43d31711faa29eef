#!/usr/bin/env bash
# Grade a class on a Slurm cluster: one array task per shard, then one job that combines them.
#
#   coursekit/jobs/slurm_grade.sh SUBMISSIONS OUTDIR [SHARDS]      (run it on the login node)
#
# Submits `sbatch --array=1-SHARDS` of this same script in "shard" mode (each task grades every
# SHARDS-th student: `python -m coursekit.grade --shard i/SHARDS`) and a "combine" job that
# starts when every task succeeded and writes OUTDIR/grades.csv. All tasks share one state
# folder (OUTDIR/grades.state: one file per student), so a failed task can simply be resubmitted
# and hand grading (`sheets`, `merge`) works on the combined grades as on a single machine.
# Set PYTHON to the course environment's interpreter if `python` is not it, pass sbatch options
# (partition, account, time) in SBATCH_OPTIONS, e.g. SBATCH_OPTIONS="-p short -t 1:00:00", and
# grader options in GRADE_OPTIONS, e.g. GRADE_OPTIONS="--memory-mb 6000 --timeout 900".
set -euo pipefail
PYTHON=${PYTHON:-python}

case "${1:-}" in
  --shard)    # inside an array task: $2 SUBMISSIONS, $3 OUTDIR
    # shellcheck disable=SC2086  # GRADE_OPTIONS is a list of options
    exec "$PYTHON" -m coursekit.grade "$2" --quiet ${GRADE_OPTIONS:-} \
      --shard "${SLURM_ARRAY_TASK_ID:?not an array task}/${SLURM_ARRAY_TASK_COUNT}" \
      --jobs "${SLURM_CPUS_PER_TASK:-1}" \
      --out "$3/part-${SLURM_ARRAY_TASK_ID}.csv" --state "$3/grades.state" \
      --feedback "$3/feedback" ;;
  --combine)  # after the array: $2 OUTDIR
    shopt -s nullglob
    parts=("$2"/part-*.csv)
    exec "$PYTHON" -m coursekit.grade combine "${parts[@]}" --out "$2/grades.csv" ;;
esac

if [ $# -lt 2 ]; then
  echo "usage: $0 SUBMISSIONS OUTDIR [SHARDS]" >&2
  exit 2
fi
submissions=$(realpath "$1"); outdir=$(realpath -m "$2"); shards=${3:-4}
mkdir -p "$outdir"
script=$(realpath "$0")
# shellcheck disable=SC2086  # SBATCH_OPTIONS is a list of options
array=$(sbatch --parsable ${SBATCH_OPTIONS:-} --job-name=grade --array="1-$shards" \
  --chdir="$PWD" --output="$outdir/slurm-%A_%a.log" --export=ALL \
  "$script" --shard "$submissions" "$outdir")
array=${array%%;*}
# shellcheck disable=SC2086
combine=$(sbatch --parsable ${SBATCH_OPTIONS:-} --job-name=grade-combine \
  --dependency="afterok:$array" --chdir="$PWD" --output="$outdir/slurm-%j-combine.log" \
  --export=ALL "$script" --combine "$outdir")
echo "submitted array job $array ($shards shards) and combine job ${combine%%;*}:" \
     "grades will be in $outdir/grades.csv"
