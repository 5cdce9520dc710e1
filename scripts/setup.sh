#!/usr/bin/env bash
# Set up aulib in a virtual environment at .venv (idempotent).
# Usage: bash scripts/setup.sh        (PYTHON=python3.11 bash scripts/setup.sh to pick an interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# torch first, pinned: the versions the kit is tested with.
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[notebooks,test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import aulib, torch, timm, facenet_pytorch, papermill, nbval; print('aulib', aulib.__version__, '| torch', torch.__version__, '| timm', timm.__version__, '| cuda', torch.cuda.is_available())"
