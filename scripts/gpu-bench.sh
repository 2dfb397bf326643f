#!/usr/bin/env bash
# The GPU figures (issue 34): the real-size twins of SD1.5, SDXL and FLUX.1 (random weights, built here from the
# configs in shared/method/models/realsize.py, nothing downloaded) at batch 1-16, float16/bfloat16, 512² and 1024²:
# images/s and peak memory for the student and the teacher, into data/results/gpu.json. One command, under 10
# minutes (a 540 s budget keeps what it measured); run it where a CUDA device is. The tests never need one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/adq ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet -e .
fi
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device is visible')"
.venv/bin/adq bench gpu --json data/results/gpu.json "$@"
