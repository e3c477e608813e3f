#!/usr/bin/env bash
# `make demo`: a controller on SQLite in a throwaway data dir, driven through the CLI, then stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
DATA="$(mktemp -d -t modelctl-demo-XXXXXX)"
LOG="$DATA/server.log"
SERVER_PID=""

cleanup() {
  if [ -n "${FEEDER_PID:-}" ]; then kill "$FEEDER_PID" 2>/dev/null || true; fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "start modelctl-server (SQLite in $DATA, a free port)"
MODELCTL_SERVER_DATA_DIR="$DATA" MODELCTL_SERVER_GRPC_ADDRESS=127.0.0.1:0 \
MODELCTL_SERVER_METRICS_ADDRESS=127.0.0.1:0 MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL=100ms \
"$BIN/modelctl-server" >"$DATA/stdout" 2>"$LOG" &
SERVER_PID=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$DATA/stdout" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG"; echo "server failed to start"; exit 1; }
  sleep 0.1
done
ADDR="$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$DATA/stdout")"
export MODELCTL_ADDR="$ADDR"
export MODELCTL_TOKEN="$(cat "$DATA/admin.token")"
echo "listening on $ADDR; admin token read from $DATA/admin.token"

step "register two versions: one uploaded from a local file, one recorded by URI"
head -c 2000000 /dev/urandom > "$DATA/fraud-1.0.0.bin"
run "$BIN/modelctl" models register fraud-detector --version 1.0.0 --artifact "$DATA/fraud-1.0.0.bin" \
    --framework sklearn --metric auc=0.91 --tag team=risk
run "$BIN/modelctl" models register fraud-detector --version 1.1.0 \
    --artifact s3://models/fraud-detector/1.1.0/model.pkl --framework sklearn --metric auc=0.93 --tag team=risk
run "$BIN/modelctl" models register churn --version 2026.11.1 --artifact gs://ml/churn/model.onnx --tag team=growth

step "list and inspect"
run "$BIN/modelctl" models list
run "$BIN/modelctl" models show fraud-detector
run "$BIN/modelctl" -o json models show fraud-detector

step "least privilege: a viewer token can read but not write"
VIEWER="$("$BIN/modelctl" -q tokens create --role viewer --name demo-viewer)"
run "$BIN/modelctl" --token "$VIEWER" models list -q
if "$BIN/modelctl" --token "$VIEWER" models archive churn 2026.11.1; then
  echo "a viewer should not be able to archive"; exit 1
fi

# Stands in for the serving fleet: reports healthy (or failing) traffic for a version until stopped.
FEEDER_PID=""
feed() {  # feed VERSION ERRORS_PER_10
  ( while true; do
      "$BIN/modelctl" metrics report fraud-detector "$1" --requests 10 --errors "$2" --latency-ms 20 --latency-ms 45 >/dev/null 2>&1 || true
      sleep 0.1
    done ) &
  FEEDER_PID=$!
}
stop_feed() { kill "$FEEDER_PID" 2>/dev/null; wait "$FEEDER_PID" 2>/dev/null || true; FEEDER_PID=""; }

step "first deployment: 1.0.0 goes live at once"
run "$BIN/modelctl" deploy fraud-detector 1.0.0 --strategy immediate --bake-time 0s --watch

step "canary 1.1.0 with healthy traffic: 20% -> 50% -> 100%, gates checked at every step"
feed 1.1.0 0
run "$BIN/modelctl" deploy fraud-detector 1.1.0 --strategy canary --steps 20,50,100 --interval 500ms \
    --min-samples 20 --watch
stop_feed
run "$BIN/modelctl" traffic show fraud-detector

step "a bad model: 1.2.0 fails half its requests and is rolled back on the breaching report"
run "$BIN/modelctl" models register fraud-detector --version 1.2.0 --artifact s3://models/fraud-detector/1.2.0/model.pkl
feed 1.2.0 5
if "$BIN/modelctl" deploy fraud-detector 1.2.0 --strategy canary --steps 20,50,100 --interval 30s \
    --min-samples 20 --watch; then
  echo "the bad canary should have been rolled back"; exit 1
fi
stop_feed
run "$BIN/modelctl" traffic show fraud-detector
run "$BIN/modelctl" deployments list --model fraud-detector

step "status and the audit log"
run "$BIN/modelctl" status
run "$BIN/modelctl" audit list

step "stop the server (SIGTERM: health NOT_SERVING, in-flight calls drain)"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; SERVER_PID=""
echo "demo finished"
