#!/usr/bin/env bash
# The test suite, run after scripts/setup.sh. Two streams share the machine's cores:
#  A (in the background): the end-to-end rehearsals (paper path, own data, BP4D, DISFA, Aff-Wild2), the
#    two-node torchrun test and the runner's tests, each in its own temporary workspace;
#  B: the whole notebook pipeline with the toy `ci` profile (fresh runs/ci), the
#    README's headless command (papermill of 04_train for the 6au group), then the
#    unit tests and every notebook under nbval (--nbval-lax, this environment's kernel),
#    each notebook taking the `ci` profile through AULIB_PROFILE.
# Every process runs torch on one thread (OMP_NUM_THREADS=1): two streams of
# two-thread processes on two cores spin against each other and run several times
# slower than one thread each. Stream A's output follows stream B's; the exit status
# is non-zero when either fails. Extra arguments go to both pytest calls.
set -euo pipefail
cd "$(dirname "$0")/.."
export AULIB_PROFILE=ci MPLBACKEND=Agg PATH="$PWD/.venv/bin:$PATH" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E2E=(tests/test_rehearsal.py tests/test_owndata_rehearsal.py tests/test_benchmark_rehearsal.py tests/test_multinode.py tests/test_pipeline.py)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf runs/ci out.ipynb
# matplotlib's font cache, built once before the streams: two first imports at the same moment
# can leave a partial cache, whose missing fonts then print findfont warnings in notebooks
python -c "import matplotlib.font_manager"

python -m pytest -q -p no:cacheprovider --basetemp "$tmp/a" "${E2E[@]}" "$@" > "$tmp/a.log" 2>&1 &
stream_a=$!

status_b=0
{
  python -m aulib.pipeline --profile ci &&
  papermill notebooks/04_train.ipynb out.ipynb -p group 6au &&
  python -m pytest -q -p no:cacheprovider --basetemp "$tmp/b" tests notebooks --nbval-lax --nbval-current-env \
    $(printf -- '--ignore=%s ' "${E2E[@]}") "$@"
} || status_b=$?

status_a=0
wait "$stream_a" || status_a=$?
echo "===== end-to-end rehearsals and two-node test (ran beside the above) ====="
cat "$tmp/a.log"
echo "test.sh: stream B (pipeline, papermill, unit tests, notebooks) exit $status_b; stream A (${E2E[*]}) exit $status_a"
[ "$status_a" = 0 ] && [ "$status_b" = 0 ]
