#!/usr/bin/env bash
# bench/chat-cluster.sh: the chat scenario on one node (history in the
# embedded Pebble store) and on a 2-node cluster (history and groups in
# JetStream; NATS started here: the embedded server of cluster/cmd/natsd),
# at the same offered rates, in one invocation. In the cluster run every
# group's users are spread over both nodes (--addr a,b), so deliveries
# cross nodes. Nothing is pinned (the cluster needs 3 server processes on
# this machine's 2 cores); the CPU of every server process (nodes and NATS)
# is read from /proc over warmup + window. See bench/RESULTS.md "chat in
# cluster mode".
#
#   bench/chat-cluster.sh [RATES] [USERS] [DURATION]     e.g. "1 3" 1000 20s
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${1:-"1 3"}; USERS=${2:-1000}; DUR=${3:-20s}
OUT=bench/out/$(date +%Y%m%d-%H%M%S)-chat-cluster; mkdir -p "$OUT"
SECRET=benchsecret
go build -o /tmp/partyline . && go build -o /tmp/plbench ./bench && go build -o /tmp/natsd ./cluster/cmd/natsd
pids=(); cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }   # user+sys ticks
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up"; exit 1; }

# servers_cpu LABEL START PIDS...: CPU ms of PIDS over warmup (2 s) + window.
servers_cpu() {
  local label=$1 start=$2; shift 2
  local span=$((2 + ${DUR%s})) t0=0 t1=0 p
  sleep $((start - $(date +%s)))
  for p in "$@"; do t0=$((t0 + $(cpu "$p"))); done
  sleep "$span"
  for p in "$@"; do t1=$((t1 + $(cpu "$p"))); done
  echo "$label server processes cpu $(((t1 - t0) * 10)) ms over warmup+window ($span s)" >"$OUT/$label.cpu"
}

run() { # LABEL ADDR RATE PIDS...
  local label=$1 addr=$2 rate=$3; shift 3
  local start=$(( $(date +%s) + 15 ))
  servers_cpu "$label" "$start" "$@" &
  local cpid=$!
  /tmp/plbench chat --jwt-secret "$SECRET" --addr "$addr" --conns "$USERS" --room-size 10 --rate "$rate" \
    --duration "$DUR" --start-at "$start" --timeout 110s --label "$label" --quiet --out "$OUT/$label.json" | tee "$OUT/$label.txt"
  wait "$cpid"; cat "$OUT/$label.cpu"
}

for r in $RATES; do
  echo "== single node, rate $r/user"
  /tmp/partyline --listen 127.0.0.1:9300=chat --http '' --jwt-secret "$SECRET" --data-dir "$(mktemp -d)" 2>"$OUT/single-$r.log" & s=$!; pids+=($s)
  wait_port 9300
  run "single-r$r" 127.0.0.1:9300 "$r" "$s"
  kill "$s"; wait "$s" 2>/dev/null || true

  echo "== 2-node cluster, rate $r/user"
  PORT=$((15222 + RANDOM % 1000))
  /tmp/natsd --addr 127.0.0.1:$PORT --store "$(mktemp -d)" 2>"$OUT/natsd-$r.log" & n=$!; pids+=($n)
  wait_port $PORT
  /tmp/partyline --listen 127.0.0.1:9310=chat --http '' --jwt-secret "$SECRET" --data-dir "$(mktemp -d)" \
    --nats nats://127.0.0.1:$PORT --node-id a 2>"$OUT/a-$r.log" & a=$!; pids+=($a)
  /tmp/partyline --listen 127.0.0.1:9311=chat --http '' --jwt-secret "$SECRET" --data-dir "$(mktemp -d)" \
    --nats nats://127.0.0.1:$PORT --node-id b 2>"$OUT/b-$r.log" & b=$!; pids+=($b)
  wait_port 9310; wait_port 9311
  run "cluster-r$r" 127.0.0.1:9310,127.0.0.1:9311 "$r" "$a" "$b" "$n"
  kill "$a" "$b"; wait "$a" "$b" 2>/dev/null || true
  kill "$n"; wait "$n" 2>/dev/null || true
done
echo "records: $OUT"
