#!/usr/bin/env bash
# One shared budget, two gateways: starts Redis, the demo upstream and two gateway instances with
# the repo's configs, sends the same client's login attempts through both, alternating, and
# prints what each instance admitted and limited. The auth limiter allows 10 per 300 s per
# client, so the two instances together admit exactly 10.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

scripts/setup.sh
swift build $release_flags --product ratesync-gateway >/dev/null
swift build $release_flags --product ratesync-demo-upstream >/dev/null
bin=$(swift build $release_flags --show-bin-path)

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

redis_port=$(free_port)
pids+=("$(start_redis "$redis_port" "$work/redis.log")")
wait_for_port "$redis_port"
export REDIS_URL="redis://127.0.0.1:$redis_port/0"

export UPSTREAM_PORT=$(free_port)
"$bin/ratesync-demo-upstream" --port "$UPSTREAM_PORT" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_for_port "$UPSTREAM_PORT"

ports=()
for instance in a b; do
    port=$(free_port)
    GATEWAY_PORT=$port ADMIN_PORT=$(free_port) "$bin/ratesync-gateway" --config gateway.toml \
        >"$work/gateway-$instance.log" 2>&1 &
    pids+=($!)
    wait_for_port "$port"
    ports+=("$port")
done
echo "demo: Redis on $redis_port, upstream on $UPSTREAM_PORT, gateway a on ${ports[0]}, gateway b on ${ports[1]}"

declare -A admitted=([a]=0 [b]=0) limited=([a]=0 [b]=0)
for attempt in $(seq 1 30); do
    instance=$([[ $((attempt % 2)) -eq 1 ]] && echo a || echo b)
    port=${ports[$([[ $instance == a ]] && echo 0 || echo 1)]}
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/auth/login")
    if [[ $code == 200 ]]; then admitted[$instance]=$((admitted[$instance] + 1)); else limited[$instance]=$((limited[$instance] + 1)); fi
done

printf "%-10s %9s %8s\n" instance admitted limited
for instance in a b; do printf "%-10s %9s %8s\n" "gateway $instance" "${admitted[$instance]}" "${limited[$instance]}"; done
printf "%-10s %9s %8s\n" total $((admitted[a] + admitted[b])) $((limited[a] + limited[b]))
echo "redis: $(redis-cli -p "$redis_port" ZCARD rate_limit:auth:127.0.0.1:window) admissions in rate_limit:auth:127.0.0.1:window"
