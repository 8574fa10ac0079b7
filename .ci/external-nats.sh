#!/usr/bin/env bash
# The cluster tests against NATS in a separate process, as a user runs it
# (NATS_URL set), not the server the tests embed: natsd (cluster/cmd/natsd,
# the nats-server release go.mod names) on a free loopback port, stopped at
# the end. Tests that must restart NATS skip themselves under NATS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/natsd" ./cluster/cmd/natsd
"$dir/natsd" --addr 127.0.0.1:-1 --store "$dir/js" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do grep -q 'natsd ready' "$dir/log" && break; sleep 0.1; done
url=$(sed -n 's/^natsd ready url=\([^ ]*\).*/\1/p' "$dir/log")
[ -n "$url" ] || { echo "external-nats: natsd did not start"; cat "$dir/log"; exit 1; }
echo "external-nats: NATS_URL=$url"
NATS_URL=$url go test -count=1 -timeout 15m ./cluster/
