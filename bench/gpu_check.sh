#!/usr/bin/env bash
# The GPU checks of issues #21 (item 7) and #22 (item 5) as one prepared script, for a session that is lent a GPU
# machine (the `device` tool: one command of at most 10 minutes, 15 minutes of device time in all).
#
# Preparation, on the development machine, once: the device image has torch and transformers but not fastcore.
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 --platform any -d .whl fastcore
# Then one call, carrying the wheels (the parts can also run one per call: tests, bench, decoders):
#   run(command="bash bench/gpu_check.sh all", carry=[".whl"], timeout_s=570)
# What comes back under $OUT: env.txt, tests.txt, bench.txt, decoders.txt; copy the numbers into bench/RESULTS.md.
set -uo pipefail
part=${1:-all}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else export PYTHONPATH=$PWD; fi
python3 -c "import torch, transformers, attattr; print('torch', torch.__version__, 'transformers', transformers.__version__,
            torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA')" 2>&1 | tee "$OUT/env.txt"
start=$(date +%s)
if [[ $part == all || $part == tests ]]; then  # the kernel on CUDA: equal to the CPU and the reference (≈ 1 min)
  timeout 180 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/tests.txt"
fi
if [[ $part == all || $part == bench ]]; then  # bert-base-sized random classifier: ms per example, bf16, 'auto' (≈ 2 min)
  timeout 240 python3 bench/attribution.py --random_bert --device cuda 2>&1 | tee "$OUT/bench.txt"
fi
if [[ $part == all || $part == decoders ]]; then  # Qwen2.5-0.5B / Llama-3.2-1B shapes, bf16, 128–2,048 tokens (≈ 5 min)
  timeout 330 python3 bench/decoders.py --sections memory --device cuda 2>&1 | tee "$OUT/decoders.txt"
fi
echo "gpu_check $part: $(( $(date +%s) - start )) s" | tee -a "$OUT/env.txt"
