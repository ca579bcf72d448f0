#!/usr/bin/env bash
# Whole set-up in a fresh virtual environment (.venv/): torch first (CPU build), then attattr with its dev tools.
# PYTHON picks the interpreter (default python3); TORCH_SPEC the torch requirement (default torch==2.13.0, the CPU
# build this machine has: anything else can pull a multi-GB CUDA build from the registry).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install -q "$TORCH_SPEC" 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import torch, transformers, attattr; print(f'attattr {attattr.__version__} | torch {torch.__version__} | transformers {transformers.__version__}')"
