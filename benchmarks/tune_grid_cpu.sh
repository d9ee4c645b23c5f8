#!/usr/bin/env bash
# Records the 9-candidate CPU grid that tests/fixtures/tune/grid_mlp_cpu.json replays (quick vs grid):
# MLP on the CPU, instances 1,2,3 x queue delay 0,200,1000 us, p95 budget 40 ms, concurrency up to 16.
# Usage: benchmarks/tune_grid_cpu.sh OUT_DIR
set -euo pipefail
out=${1:?usage: $0 OUT_DIR}
exec python -m saturate tune -m mlp --latency-budget-ms 40 --instances 1,2,3 --max-queue-delay-us 0,200,1000 \
  --search grid -p 300 -r 3 -s 1000 --tail-confidence 0.9 --tail-margin 2.5 --max-concurrency 16 --out "$out"
