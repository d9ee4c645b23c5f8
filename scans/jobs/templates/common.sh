# ---- shared by every saturate job template (inlined by `saturate job render`) ----
JOB=${SLURM_JOB_ID:-$$}
SRV=""; MON=""; SCAN=""
mkdir -p "$OUT"
status() { echo "$*" >"$OUT/status"; echo "[saturate job $JOB $(date +%T)] $*" >&2; }
probe() {  # HTTP GET that succeeds on 200 (curl, else python3)
  if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
  else python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; fi
}
stop_tree() {  # SIGTERM a process group (setsid leader), wait up to $2 s, then SIGKILL
  local pid=$1 limit=${2:-20} i
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < limit * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
teardown() {
  local rc=$?
  trap - EXIT TERM INT
  [ -n "$SCAN" ] && stop_tree "$SCAN" 5
  [ -n "$MON" ] && stop_tree "$MON" 5
  if [ -n "$SRV" ]; then stop_tree "$SRV" 8; echo "server stopped $(date +%s)" >"$OUT/server.stopped"; fi
  wait 2>/dev/null
  on_teardown
  echo "teardown done rc=$rc" >&2
}
on_teardown() { :; }
trap teardown EXIT
trap 'status cancelled; exit 143' TERM INT
start_server() {  # start_server BIND  -> $SRV; ports from the job id so jobs on one node do not collide
  HTTP_PORT=$((PORT_BASE + (JOB % 1000) * 3)); GRPC_PORT=$((HTTP_PORT + 1)); METRICS_PORT=$((HTTP_PORT + 2))
  TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  status "starting server on ports $HTTP_PORT/$GRPC_PORT/$METRICS_PORT"
  # the token goes in the environment (readable only by this user), not on a command line
  SATURATE_ACCESS_TOKEN="$TOKEN" setsid $RUN $SAT serve --model "$MODEL" --backend "$BACKEND" \
    --device "$DEVICE" --bind "$1" \
    --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" --metrics-port "$METRICS_PORT" \
    $SERVER_ARGS >"$OUT/server.log" 2>&1 </dev/null &
  SRV=$!
  local deadline=$(($(date +%s) + READY_TIMEOUT)) at=$1
  case "$at" in 0.0.0.0 | :: | "") at=127.0.0.1 ;; *:*) at="[$at]" ;; esac
  # the model's own ready endpoint: Triton is ready before PyTriton has bound the model
  until probe "http://$at:$HTTP_PORT/v2/models/$MODEL/ready"; do
    if ! kill -0 "$SRV" 2>/dev/null; then status "failed: server exited before ready (see server.log)"; exit 1; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then status "failed: server not ready after ${READY_TIMEOUT}s"; exit 1; fi
    sleep 1
  done
  status "server ready"
}
start_monitor() {  # sidecar beside the server: utilization CSV until teardown
  setsid $RUN $SAT monitor --interval "$MONITOR_INTERVAL" --source "$MONITOR_SOURCE" --out "$OUT/monitor.csv" \
    ${SRV:+--pid "$SRV"} >"$OUT/monitor.log" 2>&1 </dev/null &
  MON=$!
}
read_rendezvous() {  # wait for the server job's rendezvous file, then load HOST/ports/TOKEN from it
  local f=$1 deadline=$(($(date +%s) + RENDEZVOUS_TIMEOUT)) k v
  status "waiting for rendezvous $f"
  while :; do
    if [ -s "$f" ] && { [ -z "${SATURATE_SERVER_JOB:-}" ] || grep -qx "SERVER_JOB=$SATURATE_SERVER_JOB" "$f"; }; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then status "failed: no rendezvous file $f after ${RENDEZVOUS_TIMEOUT}s"; exit 1; fi
    sleep 1
  done
  while IFS='=' read -r k v; do
    case "$k" in HOST) HOST=$v ;; HTTP_PORT) HTTP_PORT=$v ;; GRPC_PORT) GRPC_PORT=$v ;;
      METRICS_PORT) METRICS_PORT=$v ;; TOKEN) TOKEN=$v ;; esac
  done <"$f"
  status "server at $HOST:$GRPC_PORT"
}
scan_batch() {  # scan_batch B HOST:GRPC_PORT -> OUT/scan_bB.{json,csv,log}; one result written per level
  local b=$1 url=$2
  if [ "$ENGINE" = perf_analyzer ]; then
    $HSAT pa $SDK_ARGS --out "$OUT/pa_b$b" --json "$OUT/scan_b$b.json" -- -m "$MODEL" -u "$url" -i grpc -b "$b" \
      --concurrency-range "$CONCURRENCY" -p "$INTERVAL_MS" -s "$STABILITY" -r "$MAX_TRIALS" \
      -H "triton-grpc-protocol-triton-access-token:$TOKEN" -f "$OUT/scan_b$b.csv" $LOAD_ARGS >"$OUT/scan_b$b.log" 2>&1 </dev/null &
  else
    SATURATE_ACCESS_TOKEN="$TOKEN" $RUN $SAT load -m "$MODEL" -u "$url" -i grpc -b "$b" \
      --concurrency-range "$CONCURRENCY" -p "$INTERVAL_MS" -s "$STABILITY" -r "$MAX_TRIALS" \
      --json "$OUT/scan_b$b.json" -f "$OUT/scan_b$b.csv" $LOAD_ARGS >"$OUT/scan_b$b.log" 2>&1 </dev/null &
  fi
  SCAN=$!
  wait "$SCAN"; local rc=$?; SCAN=""
  echo "batch $b exit $rc" >>"$OUT/scan.exits"
}
# ---- end of common part ----
