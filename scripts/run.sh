#!/usr/bin/env bash
# Sets up and runs the gateway with the repo's gateway.toml and rate-sync.toml, in front of the
# demo upstream (and a local Redis when the config uses one and none answers). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

scripts/setup.sh
swift build $release_flags --product ratesync-gateway
swift build $release_flags --product ratesync-demo-upstream
bin=$(swift build $release_flags --show-bin-path)

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

export UPSTREAM_PORT=${UPSTREAM_PORT:-8081}
"$bin/ratesync-demo-upstream" --port "$UPSTREAM_PORT" &
pids+=($!)
wait_for_port "$UPSTREAM_PORT"

# The default rate-sync.toml points at redis://127.0.0.1:6379/0; start one if nothing answers.
if grep -Eq '^\s*(engine|strategy)\s*=\s*"redis"' "${RATE_SYNC_CONFIG:-rate-sync.toml}" && [[ -z "${REDIS_URL:-}" ]]; then
    if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
        echo "run: starting a local redis-server on 127.0.0.1:6379 (no persistence)"
        pids+=("$(start_redis 6379 /tmp/ratesync-run-redis.log)")
        wait_for_port 6379
    fi
fi

echo "run: gateway on http://127.0.0.1:${GATEWAY_PORT:-8080}, admin on http://127.0.0.1:${ADMIN_PORT:-9901}"
"$bin/ratesync-gateway" --config gateway.toml &
pids+=($!)
wait "${pids[-1]}"
