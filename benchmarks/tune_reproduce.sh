#!/usr/bin/env bash
# Runs the winner of a tune (its `saturate serve` command from TUNE_DIR/tune.json) and loads it at the
# chosen batch/concurrency N times with the tune's window settings; prints each run's infer/s and p95,
# and tune's own figure, so the reproduction can be compared with the run-to-run noise.
# Usage: benchmarks/tune_reproduce.sh TUNE_DIR [N=5]
set -euo pipefail
dir=${1:?usage: $0 TUNE_DIR [N]}; n=${2:-5}
read -r serve batch conc tp p95 interval < <(python - "$dir" <<'PY'
import json, sys
d = json.load(open(f"{sys.argv[1]}/tune.json")); w = d["winner"]
print(w["commands"]["serve"].replace("saturate serve ", "").replace(" ", ","), w["batch"], w["concurrency"],
      w["throughput"], w["tail_ms"], d["config"]["load"]["measurement_interval_ms"])
PY
)
port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
g=$(port); h=$(port); m=$(port); log=$(mktemp)
IFS=, read -r -a args <<< "$serve"
setsid python -m saturate serve "${args[@]}" --bind 127.0.0.1 --grpc-port "$g" --http-port "$h" \
  --metrics-port "$m" --access-token bench > "$log" 2>&1 &
pid=$!; trap 'kill -TERM -- -$pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
until grep -q "^saturate serve: ready" "$log"; do kill -0 $pid; sleep 0.5; done
echo "tune: $tp infer/s, p95 $p95 ms (batch $batch, concurrency $conc)"
for i in $(seq "$n"); do
  j=$(mktemp --suffix .json)
  python -m saturate load -m mlp -u "127.0.0.1:$g" --access-token bench -b "$batch" \
    --concurrency-range "$conc:$conc:1" --percentile 95 -p "$interval" -r 3 -s 1000 \
    --warmup-request-count 20 --json "$j" > /dev/null 2>&1 || true
  python -c "import json,sys; l=json.load(open(sys.argv[1]))['levels'][0]; \
print(f\"run $i: {l['throughput']['infer_per_s']:.1f} infer/s, p95 {l['latency_us']['p95']/1000:.2f} ms\")" "$j"
  rm -f "$j"
done
