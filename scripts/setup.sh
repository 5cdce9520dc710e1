#!/usr/bin/env bash
# Set up aulib in a virtual environment at .venv (idempotent; about 2 minutes).
# Usage: bash scripts/setup.sh        (PYTHON=python3.11 bash scripts/setup.sh to pick an interpreter)
# Every package is installed at the version in constraints.txt, the environment CI and results/ ran
# with; AULIB_FLOAT=1 bash scripts/setup.sh takes the newest versions pyproject.toml allows instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
pip_install() {   # quiet on success; on failure show pip's output and stop
  if ! .venv/bin/python -m pip install -q "$@" > .venv/pip.log 2>&1; then
    grep -v "^WARNING: Location" .venv/pip.log | tail -60 >&2
    echo "setup: 'pip install $*' failed (full log: .venv/pip.log)" >&2
    exit 1
  fi
}
LOCK=(-c constraints.txt)
if [ "${AULIB_FLOAT:-0}" = 1 ]; then
  LOCK=()
  echo "setup: AULIB_FLOAT=1: newest allowed versions, not constraints.txt (results may differ from results/)" >&2
fi
pip_install --upgrade pip
pip_install "${LOCK[@]}" "torch==2.14.1" "torchvision==0.29.1"     # the versions the kit is tested with
pip_install "${LOCK[@]}" -e ".[notebooks,test]"
# JupyterLab saves the kit's notebooks as committed (their last run goes to runs/notebooks/): aulib/notebook_form.py
.venv/bin/python -c "from aulib.notebook_form import install_server_config; install_server_config()"
.venv/bin/python -c "import aulib, torch, timm, facenet_pytorch, papermill, nbval; print('aulib', aulib.__version__, '| torch', torch.__version__, '| timm', timm.__version__, '| cuda', torch.cuda.is_available())"
