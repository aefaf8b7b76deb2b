#!/bin/bash
# The README's excerpts of `dvc metrics diff` and `dvc exp show --only-changed`, from a real experiment on the
# committed run: deploy fine-tuned with 3 QAT epochs instead of 2 (it reruns deploy, evaluate-deploy, micro, report
# and firmware; ~10 minutes on 2 cores).
# Usage, from the repository root after `dvc repro`:
#   bash benchmarks/dashboard.sh > benchmarks/results/dashboard.txt && python tools/readme_results.py
set -euo pipefail
dvc exp remove qat3 > /dev/null 2>&1 || true
dvc exp run --temp -n qat3 -S deploy.qat_epochs=3 > /dev/null 2>&1
echo '$ dvc metrics diff HEAD qat3'
dvc metrics diff HEAD qat3
echo
echo '$ dvc exp show --only-changed   # a 200-column terminal'
COLUMNS=200 dvc exp show --only-changed --no-pager
