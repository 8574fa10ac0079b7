#!/usr/bin/env bash
# bench/cluster.sh: the rooms scenario on one partyline node, then on a
# 3-node cluster (NATS started here: the embedded server of
# cluster/cmd/natsd), one generator process per node. See bench/CLUSTER.md.
#
#   bench/cluster.sh [CONNS_TOTAL] [RATE] [DURATION]
#
# SPREAD=1: every generator process gets all three node addresses
# (--addr a,b,c), so each room's members are spread over the three nodes
# (member slot i on node i mod 3) and every message crosses nodes.
# SKIP_SINGLE=1 skips the single-node run. Each generator run is bounded by
# --timeout (GEN_TIMEOUT, default 110s).
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-51000}; RATE=${2:-0.2}; DUR=${3:-20s}
NODES=3; PER=$((CONNS / NODES))
OUT=bench/out/$(date +%Y%m%d-%H%M%S)-cluster${SPREAD:+-spread}; mkdir -p "$OUT"
GEN_TIMEOUT=${GEN_TIMEOUT:-110s}
ulimit -n "$(ulimit -Hn)" || true
go build -o /tmp/partyline . && go build -o /tmp/plbench ./bench && go build -o /tmp/natsd ./cluster/cmd/natsd
pids=(); cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }   # user+sys ticks
# a previous run's nodes may still be draining (--drain 10s): wait for their ports
wait_free() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 0; sleep 0.1; done; echo "port $1 still in use"; exit 1; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up"; exit 1; }

# One process holds at most ~19,000 connections (20,000 descriptors): the
# single node carries one node's share, the same load per node as below.
if [ -z "${SKIP_SINGLE:-}" ]; then
echo "== single node: $PER connections"
wait_free 9100
/tmp/partyline --listen 127.0.0.1:9100 --http '' --node-id single 2>"$OUT/single.log" & spid=$!; pids+=($spid)
wait_port 9100
/tmp/plbench rooms --addr 127.0.0.1:9100 --conns "$PER" --rate "$RATE" --duration "$DUR" --server-pid "$spid" \
  --timeout "$GEN_TIMEOUT" --label single --quiet --out "$OUT/single.json" | tee "$OUT/single.txt"
kill "$spid"; wait "$spid" 2>/dev/null || true
fi

echo "== cluster: $NODES nodes x $PER connections, NATS embedded"
PORT=$((14222 + RANDOM % 1000))
/tmp/natsd --addr 127.0.0.1:$PORT --store "$OUT/nats" 2>"$OUT/natsd.log" & npid=$!; pids+=($npid)
wait_port $PORT
for i in $(seq 0 $((NODES - 1))); do wait_free $((9200 + i)); done
npids=()
for i in $(seq 0 $((NODES - 1))); do
  /tmp/partyline --listen 127.0.0.1:$((9200 + i)) --http '' --nats nats://127.0.0.1:$PORT --node-id "n$i" 2>"$OUT/node$i.log" &
  npids+=($!); pids+=($!)
done
for i in $(seq 0 $((NODES - 1))); do wait_port $((9200 + i)); done
start=$(( $(date +%s) + 25 ))   # windows line up: every generator ramps, then measures together
gens=()
all=$(for i in $(seq 0 $((NODES - 1))); do printf '127.0.0.1:%d,' $((9200 + i)); done); all=${all%,}
for i in $(seq 0 $((NODES - 1))); do
  addr=127.0.0.1:$((9200 + i)); [ -n "${SPREAD:-}" ] && addr=$all
  /tmp/plbench rooms --addr "$addr" --timeout "$GEN_TIMEOUT" --procs $NODES --proc-index "$i" --start-at "$start" \
    --conns "$CONNS" --rate "$RATE" --duration "$DUR" --server-pid "${npids[$i]}" --label "node$i" --quiet \
    --out "$OUT/node$i.json" >"$OUT/node$i.txt" & gens+=($!)
done
# natsd's CPU over warmup (2 s) + window, sampled like the generators sample the nodes
natsd_cpu() {
  local span=$((2 + ${DUR%s})) n0 n1
  sleep $((start - $(date +%s)))
  n0=$(cpu "$npid"); sleep "$span"; n1=$(cpu "$npid")
  echo "natsd cpu $(((n1 - n0) * 10)) ms over warmup+window, $span s" >"$OUT/natsd.cpu"
}
natsd_cpu &
for g in "${gens[@]}"; do wait "$g"; done
/tmp/plbench merge --out "$OUT/cluster.json" "$OUT"/node?.json | tee "$OUT/cluster.txt"
grep -h "^server pid" "$OUT"/node?.txt
cat "$OUT/natsd.cpu" 2>/dev/null || true
echo "records: $OUT"
