#!/usr/bin/env bash
# Runs one load-generator scenario against partyline, the gorilla peer and
# the gws peer, one after the other, each server pinned to CPU 0 and the
# generator to CPU 1, then prints the three records side by side with
# ratios to partyline.
#
#   bench/compare.sh [SCENARIO [GENERATOR FLAGS...]]
#   bench/compare.sh rooms --conns 10000 --room-size 20 --rate 3
#   bench/compare.sh rooms --conns 10000 --room-size 20 --rate 1 --find-max
#
# Default: rooms --conns 10000 --room-size 20 --rate 3 (500 rooms of 20).
# Environment: OUT (record directory, default bench/out/<date>-<scenario>),
# SERVERS (default "partyline gorilla gws"; also partyline-nopersist: rooms
# not kept on disk, partyline-nohistory: neither history nor persistence,
# partyline-compression: --compression, for the generator's --compression, partyline-v2: the
# generator speaks the party-v2 dialect, which has neither; partyline-base: partyline as
# built from the commit BASE, to measure a change against its base in one run),
# PORT (first port, default 19100),
# SERVER_CPU / GEN_CPU (default 0 / 1), QUIET_MAX (how long to wait for an
# idle machine before each run, default 2m; NO_WAIT_QUIET=1 skips the wait).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scenario=${1:-rooms}
shift || true
if [ $# -eq 0 ] && [ "$scenario" = rooms ]; then
	set -- --conns 10000 --room-size 20 --rate 3
fi
servers=${SERVERS:-partyline gorilla gws}
port=${PORT:-19100}
scpu=${SERVER_CPU:-0}
gcpu=${GEN_CPU:-1}
out=${OUT:-bench/out/$(date -u +%Y%m%dT%H%M%SZ)-$scenario}
mkdir -p "$out"

echo "== building"
go build -o /tmp/partyline .
go build -o /tmp/bench-gorilla ./bench/peers/gorilla
go build -o /tmp/bench-gws ./bench/peers/gws
go build -o /tmp/bench-gen ./bench
if [ -n "${BASE:-}" ]; then
	basedir=$(mktemp -d)
	git archive "$BASE" | tar -x -C "$basedir"
	(cd "$basedir" && go build -o /tmp/partyline-base .)
	rm -rf "$basedir"
fi

records=()
for name in $servers; do
	addr=127.0.0.1:$port
	gen_flags=()
	case $name in
	partyline) cmd="/tmp/partyline --listen $addr --http '' --party-max-clients 20000 --data-dir $(mktemp -d)" ;;
	partyline-base) cmd="/tmp/partyline-base --listen $addr --http '' --party-max-clients 20000 --data-dir $(mktemp -d)" ;;
	partyline-compression) cmd="/tmp/partyline --listen $addr --http '' --party-max-clients 20000 --data-dir $(mktemp -d) --compression" ;;
	partyline-nopersist) cmd="/tmp/partyline --listen $addr --http '' --party-max-clients 20000 --party-persist=false" ;;
	partyline-nohistory) cmd="/tmp/partyline --listen $addr --http '' --party-max-clients 20000 --party-persist=false --party-history-size 0" ;;
	partyline-v2) cmd="/tmp/partyline --listen $addr --http '' --party-persist=false"; gen_flags=(--dialect party-v2) ;;
	gorilla) cmd="/tmp/bench-gorilla --listen $addr --party-max-clients 20000" ;;
	gws) cmd="/tmp/bench-gws --listen $addr --party-max-clients 20000" ;;
	*) echo "unknown server $name" >&2; exit 2 ;;
	esac
	if [ -z "${NO_WAIT_QUIET:-}" ]; then
		/tmp/bench-gen wait-quiet --max "${QUIET_MAX:-2m}" || true
	fi
	echo "== $scenario against $name ($addr), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	# The generator starts the server (taskset execs, so the pid it samples
	# is the server's), samples it and stops it with SIGTERM at the end.
	taskset -c "$gcpu" /tmp/bench-gen "$scenario" --addr "$addr" --label "$name" \
		--server-cmd "taskset -c $scpu $cmd" --server-log "$out/$name.log" \
		--out "$out/$name.json" ${gen_flags[@]+"${gen_flags[@]}"} "$@" | tee "$out/$name.txt" || echo "!! $name: generator exited with $?"
	if [ -f "$out/$name.json" ]; then
		records+=("$out/$name.json")
	fi
	port=$((port + 1))
	sleep 2
done

echo
echo "== $scenario: ratios to the first server (records in $out)"
if [ ${#records[@]} -ge 2 ]; then
	/tmp/bench-gen compare "${records[@]}" | tee "$out/compare.txt"
fi
