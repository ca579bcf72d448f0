#!/usr/bin/env bash
# Everything CI checks after the install: notebooks ↔ package in sync, README ↔ index.ipynb, notebook tests, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
echo "== nbdev-export: attattr/ must match nbs/"
nbdev-export
if [ -n "$(git status --porcelain -- attattr)" ]; then
  echo "attattr/ is out of sync with nbs/ (run nbdev-export and commit):"; git status --short -- attattr; exit 1
fi
python tools/make_readme.py --check
echo "== console scripts: attattr/_cli_spec.py must match their signatures"
python tools/make_cli.py --check
echo "== nbdev-test (cells flagged slow/gpu skipped)"
OMP_NUM_THREADS=1 nbdev-test --n-workers 2  # two notebooks at a time, one thread each (2 cores)
echo "== pytest"
python -m pytest -q -p no:cacheprovider "$@"
