#!/usr/bin/env bash
# Counts the heap allocations one proxied HTTP/1.1 request costs the gateway.
#
# The release gateway runs under valgrind (memcheck counts every malloc, whatever the machine is
# doing) in front of the leanest upstream (nginx `return 200`), with a memory limiter that admits
# everything and the access log off, then on. curl sends N requests on one kept-alive connection;
# the gateway is stopped with SIGTERM and valgrind's "total heap usage" read. Two runs, with
# $small and $large requests, are subtracted, so that start-up and the connection's own setup
# cancel out: what remains, divided by the difference, is allocations per request.
#
# Usage: scripts/bench-allocations.sh [small (default 200)] [large (default 1200)]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

small=${1:-200}
large=${2:-1200}

scripts/setup.sh --bench
command -v valgrind >/dev/null || { apt-get install -y -qq valgrind >/dev/null; }
swift build $release_flags --product ratesync-gateway >/dev/null
bin=$(swift build $release_flags --show-bin-path)

work=$(mktemp -d)
# valgrind 3.19 cannot read the DWARF 5 debug info of Swift 6 binaries: count on a stripped copy.
strip -o "$work/ratesync-gateway" "$bin/ratesync-gateway"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

upstream_port=$(free_port)
upstream_pids=($(start_lean_upstream "$upstream_port" "$work/upstream"))
pids+=("${upstream_pids[0]}")

# Prints the allocations of a gateway run that served $1 requests; $2: access log on or off.
allocations() {
    local count=$1 log=$2 port admin
    port=$(free_port)
    admin=$(free_port)
    write_bench_gateway_config "$work" "$port" "$admin" "$upstream_port" "$log"
    valgrind --tool=memcheck --leak-check=no "$work/ratesync-gateway" --config "$work/gateway.toml" \
        --log-level error >/dev/null 2>"$work/valgrind.log" &
    local pid=$!
    wait_for_port "$port" 120
    curl -s -o /dev/null "http://127.0.0.1:$port/warm-up"
    curl -s -o /dev/null "http://127.0.0.1:$port/bench[1-$count]"
    kill -TERM "$pid"
    wait "$pid" || true
    sed -nE 's/.*total heap usage: ([0-9,]+) allocs.*/\1/p' "$work/valgrind.log" | tr -d ,
}

for log in false true; do
    a=$(allocations "$small" "$log")
    b=$(allocations "$large" "$log")
    awk -v a="$a" -v b="$b" -v n=$((large - small)) -v logs="$log" 'BEGIN {
        printf "access log %-5s: %d and %d allocations in the two runs: %.1f allocations per request\n", logs, a, b, (b - a) / n
    }'
done
