#!/usr/bin/env bash
# The test suite: unit tests, then every notebook under nbval with the `ci`
# profile, then the README's papermill smoke run of 04_train for the 6au group.
# Run after scripts/setup.sh. Takes about 20 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export AULIB_PROFILE=ci          # notebooks' default profile -> the toy-sized `ci` profile
export MPLBACKEND=Agg
rm -rf runs/ci
.venv/bin/python -m pytest -q tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
# The literal headless command from the README, ci-sized through AULIB_PROFILE.
PATH="$PWD/.venv/bin:$PATH" papermill notebooks/04_train.ipynb out.ipynb -p group 6au
echo "papermill smoke run of 04_train (group 6au): ok"
