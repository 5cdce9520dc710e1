#!/usr/bin/env bash
# The test suite, run after scripts/setup.sh: ruff (pyproject.toml's rules) on aulib, tests, benchmarks
# and scripts, then three streams sharing the machine's two cores:
#  A1 (in the background): the paper-path rehearsal, the two-node torchrun test and the noisy-label
#    rehearsal (OpenFace-format machine labels of a SynthAU video, filtered);
#  A2 (in the background): the own-data rehearsal, the BP4D / DISFA / Aff-Wild2 rehearsals and the
#    runner's tests, each in its own temporary workspace; the BP4D rehearsal runs in a second
#    environment holding only the core and test dependencies (scripts/core_env.py: links into
#    .venv, made in seconds; no ipywidgets, tensorboard or JupyterLab), as on a server installed
#    with pip install -e '.[test]';
#  B: the whole notebook pipeline with the toy `ci` profile (fresh runs/ci), the
#    README's headless command (papermill of 04_train for the 6au group), then the
#    unit tests and every notebook under nbval (--nbval-lax, this environment's kernel),
#    each notebook taking the `ci` profile through AULIB_PROFILE.
# Every process runs torch on one thread (OMP_NUM_THREADS=1): streams of two-thread
# processes on two cores spin against each other and run several times slower than one
# thread each. Three single-threaded streams keep both cores busy to the end (two left one
# core idle for the last ten minutes). Streams A1 and A2's output follows stream B's; the exit
# status is non-zero when any fails. Extra arguments go to every pytest call.
set -euo pipefail
cd "$(dirname "$0")/.."
export AULIB_PROFILE=ci MPLBACKEND=Agg PATH="$PWD/.venv/bin:$PATH" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E2E_A1=(tests/e2e/test_rehearsal.py tests/e2e/test_multinode.py tests/e2e/test_noisy_labels_rehearsal.py)
E2E_A2=(tests/e2e/test_owndata_rehearsal.py tests/e2e/test_benchmark_rehearsal.py tests/pipeline/test_pipeline.py)
E2E=("${E2E_A1[@]}" "${E2E_A2[@]}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf runs/ci out.ipynb
# the linter first (rules: pyproject.toml's [tool.ruff]); any finding stops the run before a test starts
if ! python -m ruff --version > /dev/null 2>&1; then
  echo "test.sh: ruff is not installed in .venv; run bash scripts/setup.sh (the test extra installs it)" >&2
  exit 1
fi
python -m ruff check aulib tests benchmarks scripts
# matplotlib's font cache, built once before the streams: two first imports at the same moment
# can leave a partial cache, whose missing fonts then print findfont warnings in notebooks
python -c "import matplotlib.font_manager"

python -m pytest -q -p no:cacheprovider --basetemp "$tmp/a1" "${E2E_A1[@]}" "$@" > "$tmp/a1.log" 2>&1 &
stream_a1=$!
CORE_CASE="tests/e2e/test_benchmark_rehearsal.py::test_benchmark_profile_rehearsed_from_its_native_layout[bp4d]"
{
  status=0
  python -m pytest -q -p no:cacheprovider --basetemp "$tmp/a2" "${E2E_A2[@]}" --deselect "$CORE_CASE" "$@" || status=$?
  echo "----- the BP4D rehearsal without the notebooks extra (scripts/core_env.py) -----"
  { python scripts/core_env.py "$tmp/core" &&
    "$tmp/core/bin/python" -m pytest -q -p no:cacheprovider --basetemp "$tmp/a2core" "$CORE_CASE" "$@"; } || status=$?
  exit "$status"
} > "$tmp/a2.log" 2>&1 &
stream_a2=$!

status_b=0
{
  python -m aulib.pipeline --profile ci &&
  papermill notebooks/04_train.ipynb out.ipynb -p group 6au &&
  python -m pytest -q -p no:cacheprovider --basetemp "$tmp/b" tests notebooks --nbval-lax --nbval-current-env \
    $(printf -- '--ignore=%s ' "${E2E[@]}") "$@"
} || status_b=$?

status_a1=0 status_a2=0
wait "$stream_a1" || status_a1=$?
wait "$stream_a2" || status_a2=$?
echo "===== stream A1: paper-path and noisy-label rehearsals, two-node test (ran beside the above) ====="
cat "$tmp/a1.log"
echo "===== stream A2: own-data and benchmark rehearsals, runner tests (ran beside the above) ====="
cat "$tmp/a2.log"
echo "test.sh: stream B (pipeline, papermill, unit tests, notebooks) exit $status_b;" \
     "stream A1 (${E2E_A1[*]}) exit $status_a1; stream A2 (${E2E_A2[*]}) exit $status_a2"
[ "$status_a1" = 0 ] && [ "$status_a2" = 0 ] && [ "$status_b" = 0 ]
