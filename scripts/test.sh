#!/usr/bin/env bash
# The test suite, run after scripts/setup.sh (about 10 minutes on 2 CPU cores):
#  1. the whole notebook pipeline with the toy `ci` profile (fresh runs/ci),
#  2. unit tests + every notebook under nbval (--nbval-lax, this environment's kernel),
#     each notebook taking the `ci` profile through AULIB_PROFILE,
#  3. the README's headless command, papermill of 04_train for the 6au group.
set -euo pipefail
cd "$(dirname "$0")/.."
export AULIB_PROFILE=ci MPLBACKEND=Agg PATH="$PWD/.venv/bin:$PATH"
rm -rf runs/ci out.ipynb
python -m aulib.pipeline --profile ci
papermill notebooks/04_train.ipynb out.ipynb -p group 6au
python -m pytest -q -p no:cacheprovider tests notebooks --nbval-lax --nbval-current-env "$@"
